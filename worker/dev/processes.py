"""Starting and stopping the system's own processes (worker, beat, Flower, the metrics endpoint)
for the demo, the benchmarks and the tests, with their output in log files an operator (or a
failing test) can read afterwards.

The one place that knows the command lines: a worker as production runs it (prefork pool,
no gossip or mingle, which a fleet started and stopped in seconds does not need), beat, Flower.
Each process leads its own process group, so a crash is simulated, and a stop made certain, by
killing the whole group: the main process and its pool alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from worker.settings import ENV_PREFIX, Settings

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CELERY = BIN / "celery"
#: What a worker logs once it consumes from its queues.
WORKER_READY = " ready."
#: The Celery app every process of the system loads.
APP = "worker.celery_app"


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]
    log_offset: int = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """What this process wrote (the log file may hold earlier runs before it)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self.log_offset)
            return handle.read().decode(errors="replace")

    def pool_pids(self) -> list[int]:
        """PIDs of the children of the main process (a worker's prefork pool)."""
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole process group, main process and pool alike, as a crash (an OOM
        kill, a lost host) would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the main process (a worker's warm shutdown finishes its tasks), then
        SIGKILL to whatever is left of the group after ``timeout`` seconds."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()


def process_env(values: Mapping[str, str]) -> dict[str, str]:
    """The current environment with our ``CALLSTORE_*`` variables replaced by ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """A process environment carrying ``settings`` as ``CALLSTORE_*`` variables (and nothing
    else of ours, so a developer's own variables never leak in), plus ``extra``."""
    values: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        values[ENV_PREFIX + name.upper()] = str(value)
    values.update(extra)
    return process_env(values)


def start(
    name: str, command: Sequence[str], *, env: Mapping[str, str], log_dir: Path
) -> ManagedProcess:
    """Start ``command`` (a program from this environment's bin directory) in its own group,
    its output appended to ``<log_dir>/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    handle = log_path.open("ab")
    offset = handle.tell()
    executable = BIN / command[0]
    process = subprocess.Popen(
        [str(executable), *command[1:]],
        cwd=PROJECT_ROOT,
        env=dict(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return ManagedProcess(name, process, log_path, handle, offset)


def celery(*args: str, app: str = APP) -> list[str]:
    """A ``celery`` command line for this project's app (or ``app``, one that wraps it)."""
    return ["celery", "-A", app, *args]


def start_worker(
    name: str,
    *,
    env: Mapping[str, str],
    log_dir: Path,
    queues: Iterable[str] = ("calls",),
    concurrency: int = 1,
    extra_args: Iterable[str] = (),
    ready_timeout: float | None = 120,
    app: str = APP,
) -> ManagedProcess:
    """A ``celery worker`` named ``<name>@<host>``; returns once it consumes, unless
    ``ready_timeout`` is None (then ``wait_ready`` it, e.g. after starting several at once).
    ``app`` replaces the system's app with one that wraps it (a benchmark's profiler)."""
    command = celery(
        "worker", "--hostname", f"{name}@%h", "--queues", ",".join(queues),
        "--concurrency", str(concurrency), "--pool", "prefork",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO", *extra_args, app=app,
    )  # fmt: skip
    worker = start(name, command, env=env, log_dir=log_dir)
    if ready_timeout is not None:
        try:
            wait_ready(worker, timeout=ready_timeout)
        except RuntimeError:
            worker.stop()
            raise
    return worker


def wait_ready(worker: ManagedProcess, *, timeout: float = 120) -> None:
    wait_for_log(worker, WORKER_READY, timeout=timeout)


def start_beat(
    name: str, *, env: Mapping[str, str], log_dir: Path, schedule: Path
) -> ManagedProcess:
    """``celery beat`` keeping its schedule state in ``schedule``."""
    command = celery("beat", "--schedule", str(schedule), "--loglevel", "INFO")
    return start(name, command, env=env, log_dir=log_dir)


def start_flower(name: str, *, env: Mapping[str, str], log_dir: Path, port: int) -> ManagedProcess:
    """Flower on 127.0.0.1:``port`` (its users, state file and prefix come from the settings)."""
    command = celery("flower", f"--port={port}", "--address=127.0.0.1")
    return start(name, command, env=env, log_dir=log_dir)


def wait_for_log(process: ManagedProcess, marker: str, *, timeout: float) -> None:
    """Wait until ``marker`` appears in the process's log; raise with its tail if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        text = process.log()
        if marker in text:
            return
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} not ready after {timeout:.0f}s:\n{text[-3000:]}")
        time.sleep(0.1)
