"""Starting and stopping the system's own processes (worker, beat, Flower) for the demo and
the benchmarks, with their output in log files an operator can read afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from worker.settings import ENV_PREFIX

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]
    log_offset: int = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        """What this process wrote (the log file may hold earlier runs before it)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self.log_offset)
            return handle.read().decode(errors="replace")

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
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


def start(
    name: str, command: Sequence[str], *, env: Mapping[str, str], log_dir: Path
) -> ManagedProcess:
    """Start ``command`` (a program from this environment's bin directory) in its own group."""
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


def wait_for_log(process: ManagedProcess, marker: str, *, timeout: float) -> None:
    """Wait until ``marker`` appears in the process's log; raise with its tail if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        text = process.log_text()
        if marker in text:
            return
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} not ready after {timeout:.0f}s:\n{text[-3000:]}")
        time.sleep(0.1)
