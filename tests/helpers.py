"""Shared test helpers: waiting for outcomes (never sleeping) and real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from worker.settings import ENV_PREFIX, Settings

T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CELERY = Path(sys.executable).with_name("celery")


def wait_until(
    condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)
        last = condition()
    return last


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """A process environment carrying ``settings`` as ``CALLSTORE_*`` variables (and nothing
    else of ours, so a developer's own variables never leak into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[ENV_PREFIX + name.upper()] = str(value)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    """A real ``celery worker`` subprocess, with its log captured to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path
    name: str
    _log_handle: object = field(repr=False, default=None)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-4000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, what=f"worker {self.name} to be ready")

    def pool_pids(self) -> list[int]:
        """PIDs of the prefork pool processes (children of the main worker process)."""
        try:
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        except FileNotFoundError:  # pragma: no cover - ps is part of every test machine
            return []
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crash would."""
        for pid in [*self.pool_pids(), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        handle = self._log_handle
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]


def start_worker(
    settings: Settings,
    log_dir: Path,
    *,
    name: str = "w1",
    queues: Iterable[str] = ("calls",),
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
    extra_args: Iterable[str] = (),
) -> WorkerProcess:
    """Start ``celery -A worker.celery_app worker`` with ``settings``; returns once it is ready."""
    log_path = log_dir / f"worker-{name}.log"
    handle = log_path.open("wb")
    command = [
        str(CELERY), "-A", "worker.celery_app", "worker",
        "--hostname", f"{name}@%h", "--queues", ",".join(queues),
        "--concurrency", str(concurrency), "--pool", "prefork",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        *extra_args,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=settings_env(settings, **(env or {})),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(process, log_path, name, handle)
    worker.wait_ready()
    return worker
