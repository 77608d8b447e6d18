"""Deprecated: the recorder lives in ``worker.client`` (``from worker.client import CallRecorder``).

Kept so that a runtime still importing ``worker.recorder`` goes on working, with a
``DeprecationWarning`` that says where to import from instead.
"""

from __future__ import annotations

import warnings

from worker.client.delivery import wait_for_announcements
from worker.client.recorder import CallRecorder, utc_now

__all__ = ["CallRecorder", "utc_now", "wait_for_announcements"]

warnings.warn(
    "worker.recorder is deprecated; import CallRecorder from worker.client "
    "(wait_for_announcements from worker.client.delivery, utc_now from worker.client.recorder)",
    DeprecationWarning,
    stacklevel=2,
)
