"""Decompression that stops at ``CALLSTORE_MAX_PAYLOAD_BYTES``.

kombu expands a compressed message in full as it takes it off Redis, in the worker's main
process: a 97 KiB zlib message that expands to 100 MB cost hundreds of MB before any size
limit applied. Here every decompressor kombu knows is replaced, in this process, by one that
stops one byte past the limit and raises ``PayloadTooLarge``. kombu keeps the error on the
message and hands it to the consumer's decode-error path (``worker.intake.consumer``), which
dead-letters the message with its compressed bytes. A compression this module does not know
is refused the same way (with ``MessageUndecodable``) rather than expanded unbounded.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any

from kombu import compression

from worker.errors import MessageUndecodable, PayloadTooLarge

#: A message body carries a payload and a little more: its envelope, Celery's headers.
ENVELOPE_SLACK_BYTES = 64 * 1024

_Decompressor = Callable[[], Any]
_BOUNDED: dict[str, _Decompressor] = {
    # zlib or gzip framing, whichever the header says (47 = MAX_WBITS | 32).
    "application/x-gzip": lambda: zlib.decompressobj(zlib.MAX_WBITS | 32),
    "application/x-bz2": bz2.BZ2Decompressor,
    "application/x-lzma": lzma.LZMADecompressor,
}


def bounded(make: _Decompressor, limit: int) -> Callable[[bytes], bytes]:
    def decompress(body: bytes) -> bytes:
        decompressor = make()
        try:
            expanded: bytes = decompressor.decompress(body, limit + 1)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as error:
            raise MessageUndecodable(f"the compressed body does not decompress: {error}") from error
        if len(expanded) > limit:
            raise PayloadTooLarge(
                f"the compressed message ({len(body)} bytes) expands past {limit} bytes,"
                " over CALLSTORE_MAX_PAYLOAD_BYTES"
            )
        return expanded

    return decompress


def _refused(content_type: str) -> Callable[[bytes], bytes]:
    def decompress(body: bytes) -> bytes:
        raise MessageUndecodable(f"compression {content_type} is not accepted by the workers")

    return decompress


def install(max_payload_bytes: int) -> None:
    """Bound every decompressor kombu has registered, in this process."""
    limit = max_payload_bytes + ENVELOPE_SLACK_BYTES
    for content_type in compression.encoders():  # type: ignore[no-untyped-call]
        encoder, _ = compression.get_encoder(content_type)  # type: ignore[no-untyped-call]
        make = _BOUNDED.get(content_type)
        decoder = bounded(make, limit) if make is not None else _refused(content_type)
        compression.register(encoder, decoder, content_type)  # type: ignore[no-untyped-call]
