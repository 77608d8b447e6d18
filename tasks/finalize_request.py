"""``calls.finalize``'s request in the worker's main process: the pool gets the call's bytes.

Celery hands a task to a pool process as its raw body plus the arguments it decoded in the main
process, both pickled, and the pool decodes the body once more. When the guard left the
payload undecoded (``worker.calls.raw_calls``), the arguments already are the one ``RawCall``
holding the body's bytes; this request hands the pool just those arguments (pickling bytes is
a copy), with no content type, which Celery's pool takes as "already decoded". Every other
message goes the usual way. Revoked calls are still dead-lettered (``KeepRevokedCall``).
"""

from __future__ import annotations

from typing import Any

from tasks.revoked import KeepRevokedCall
from worker.calls.raw_calls import RawCall


class FinalizeRequest(KeepRevokedCall):
    def _undecoded(self) -> bool:
        args = self._args
        return isinstance(args, list | tuple) and len(args) == 1 and isinstance(args[0], RawCall)

    @property
    def body(self) -> Any:
        if self._undecoded():
            _, _, embed = self._payload
            return (self._args, self._kwargs, embed)
        return super().body

    @property
    def content_type(self) -> Any:
        return None if self._undecoded() else super().content_type

    @property
    def content_encoding(self) -> Any:
        return None if self._undecoded() else super().content_encoding
