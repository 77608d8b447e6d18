"""``callstore demo``, the README's first command, as a user runs it: a process of its own that
starts the embedded stack, a worker, beat, Flower and the metrics endpoint, pushes simulated
calls through ``CallRecorder``, reports, and on Ctrl-C stops everything it started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.helpers import free_port
from worker.dev import stack
from worker.settings import ENV_PREFIX

CALLSTORE = Path(sys.executable).with_name("callstore")
READY = "Ctrl-C to stop"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_demo_persists_every_call_and_ctrl_c_stops_all_it_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    metrics_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["COLUMNS"] = "200"
    command = [
        str(CALLSTORE), "demo", "--calls", "6", "--keep-running", "--data-dir", str(data_dir),
        "--flower-port", str(free_port()), "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    demo = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    started: list[int] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if READY in line:
                break
        text = "".join(output)
        assert READY in text, text
        assert re.search(r"persisted\s*│\s*6\s", text), text
        assert re.search(r"lost\s*│\s*0\s", text), text
        started = [p.pid for p in psutil.Process(demo.pid).children(recursive=True)]
        assert len(started) >= 4, "worker, beat, Flower and the metrics endpoint"
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"callstore_queue_depth" in response.read()

        # Ctrl-C twice, as an impatient user does: the second must not cut the stopping short.
        demo.send_signal(signal.SIGINT)
        time.sleep(0.5)  # the stopping is under way (a worker's warm shutdown takes seconds)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=90) == 0, "".join(output) + demo.stdout.read()
        assert [pid for pid in started if _alive(pid)] == []
        # The embedded servers outlive the demo, and the demo says so and how to stop them.
        farewell = " ".join(demo.stdout.read().split())
        assert "PostgreSQL and Redis keep running" in farewell, farewell
        assert f"callstore stack down --data-dir {data_dir.resolve()}" in farewell, farewell
        assert stack.info(stack.paths(data_dir)).postgres_pid, "still running, as it says"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        for pid in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        if demo.stdout is not None:
            demo.stdout.close()
        stack.down(data_dir)
