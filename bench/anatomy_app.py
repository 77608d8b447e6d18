"""The worker's own Celery app with a CPU sampler in every process: ``celery -A bench.anatomy_app``.

Nothing of the worker changes: the app, its settings and tasks are ``worker.celery_app``'s.
The main process starts sampling once the worker is ready (its pool already forked), each pool
process when it starts (timers are not inherited across ``fork``); each writes what it sampled
into ``$BENCH_ANATOMY_DIR`` as it shuts down. Sampling runs only while
``$BENCH_ANATOMY_DIR/window`` exists (``bench.sampler``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import signals

from bench.sampler import DIRECTORY_ENV, WINDOW, CpuSampler
from worker.celery_app import app

__all__ = ["app"]

_sampler: CpuSampler | None = None
_role = ""


def _directory() -> Path:
    return Path(os.environ[DIRECTORY_ENV])


def _start(role: str) -> None:
    global _sampler, _role
    _sampler, _role = CpuSampler(_directory() / WINDOW), role
    _sampler.start()


def _dump() -> None:
    global _sampler
    if _sampler is None:
        return
    _sampler.stop()
    _sampler.dump(_directory() / f"{_role}-{os.getpid()}.json", role=_role)
    _sampler = None


def _sample_main(**_: Any) -> None:
    _start("main")


def _sample_pool_process(**_: Any) -> None:
    _start("pool")


def _dump_pool_process(**_: Any) -> None:
    _dump()


def _dump_main(**_: Any) -> None:
    _dump()


signals.worker_ready.connect(_sample_main)
signals.worker_process_init.connect(_sample_pool_process)
signals.worker_process_shutdown.connect(_dump_pool_process)
signals.worker_shutdown.connect(_dump_main)
