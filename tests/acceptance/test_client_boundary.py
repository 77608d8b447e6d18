"""The runtime client works on a host that has only a broker: no database setting, no driver,
and, with the light install (``pip install callstore``), none of the worker side installed.

A real process, from an empty directory (no .env, no stack.env), with no ``CALLSTORE_*``
variable but the broker and the spool, records and finalizes a call against the real Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from bench import client_install
from worker.settings import ENV_PREFIX

RUNTIME = """
import asyncio, json, sys, uuid

from worker.client import CallRecorder

recorder = CallRecorder(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), agent_name="Alex", announce=False)
recorder.record_message("user", "hello", turn_number=1)
recorder.record_message("assistant", "hi, how can I help?", turn_number=1)
recorder.record_metric("llm_ttfb", 0.3, turn_number=1)
recorder.record_event("call_connected", {"codec": "PCMU"})
ok = asyncio.run(recorder.finalize_and_write(status="ended"))
drivers = sorted(m for m in ("psycopg", "sqlalchemy", "sqlmodel") if m in sys.modules)
print(json.dumps({"ok": ok, "delivery": recorder.delivery, "call_id": str(recorder.call_id),
                  "drivers": drivers}))
"""


def test_a_runtime_with_only_a_broker_hands_a_call_off_without_a_driver(
    broker_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["CALLSTORE_BROKER_URL"] = broker_url
    env["CALLSTORE_SPOOL_DIR"] = str(tmp_path / "spool")
    workdir = tmp_path / "runtime"
    workdir.mkdir()

    result = subprocess.run(
        [sys.executable, "-c", RUNTIME],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["ok"] is True
    assert outcome["delivery"] == "enqueued"
    assert outcome["drivers"] == []
    messages = redis_client.lrange("calls", 0, -1)
    assert len(messages) == 1
    headers = json.loads(messages[0])["headers"]
    assert headers["task"] == "calls.finalize"
    assert outcome["call_id"] in headers["argsrepr"]


def test_the_light_install_records_hands_off_and_runs_the_spool_commands(
    broker_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """``pip install callstore`` without extras, in a fresh virtualenv: a runtime there hands a
    call off, ``callstore spool status`` works, and a worker-side command names its extra."""
    light = client_install.install(tmp_path, client_install.build_wheel(tmp_path / "dist"))
    assert [m for m in client_install.WORKER_SIDE if light.has(m)] == []
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(CALLSTORE_BROKER_URL=broker_url, CALLSTORE_SPOOL_DIR=str(tmp_path / "spool"))
    workdir = tmp_path / "runtime"
    workdir.mkdir()

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, check=False, timeout=60
        )

    result = run(str(light.python), "-c", RUNTIME)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert (outcome["ok"], outcome["delivery"]) == (True, "enqueued")
    assert redis_client.llen("calls") == 1

    status = run(str(light.bin / "callstore"), "spool", "status")
    assert status.returncode == 0, status.stderr
    assert "0 call journal(s)" in " ".join(status.stdout.split())
    check = run(str(light.bin / "callstore"), "check")
    assert check.returncode == 2
    assert "needs the worker extra: pip install 'callstore[worker]'" in " ".join(
        check.stderr.split()
    )
