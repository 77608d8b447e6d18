"""Every command line of docker-compose.yml is accepted by its program, and every queue, task and
beat entry has a worker: ``tests/compose_probe.py`` checks them in a process of its own, with
the environment compose gives the services (the file itself is checked by
``tests/unit/test_compose.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.compose_file import PROJECT_ROOT, command, our_services
from worker.settings import ENV_PREFIX

#: Settings only Flower's service sets itself (its users are required there, its history file
#: lives on its volume); every other setting is the same for all callstore services.
FLOWER_ONLY = {"CALLSTORE_FLOWER_BASIC_AUTH", "CALLSTORE_FLOWER_DB"}


def run_probe(commands: dict[str, list[str]], cwd: Path) -> dict[str, Any]:
    """Run tests/compose_probe.py with the services' environment, from a directory without any
    .env or stack.env, as the container runs it."""
    ours = our_services()
    environments = {
        json.dumps(
            {k: v for k, v in spec["environment"].items() if k not in FLOWER_ONLY}, sort_keys=True
        )
        for spec in ours.values()
    }
    assert len(environments) == 1, "the callstore services differ in configuration"
    service_env = {
        key: str(value)
        for key, value in ours["flower"]["environment"].items()
        if value is not None  # a key without a value is passed only when set
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(service_env, PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "tests.compose_probe"],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    commands = {name: command(spec) for name, spec in our_services().items()}
    return run_probe(commands, tmp_path_factory.mktemp("probe"))


def test_every_command_line_is_accepted_by_its_program(probe: dict[str, Any]) -> None:
    assert set(probe["errors"]) == set(our_services())
    assert {name: error for name, error in probe["errors"].items() if error} == {}


def test_every_queue_task_and_beat_entry_has_a_worker(probe: dict[str, Any]) -> None:
    consumed: set[str] = set()
    for spec in our_services().values():
        argv = command(spec)
        if "worker" in argv:
            consumed.update(argv[argv.index("-Q") + 1].split(","))
    assert consumed == set(probe["queues"])
    assert "calls.finalize" in probe["tasks"]
    for task, queue in probe["tasks"].items():
        assert queue in consumed, f"task {task} goes to {queue}, which no worker consumes"
    for entry, queue in probe["beat"].items():
        assert queue in consumed, f"beat entry {entry} goes to {queue}, which no worker consumes"


def test_the_probe_finds_commands_that_would_fail(tmp_path: Path) -> None:
    app = ["celery", "-A", "worker.celery_app"]
    broken = {
        "unknown-queue": [*app, "worker", "-Q", "calls,callz"],
        "unknown-option": [*app, "beat", "--schedul=/data/x"],
        "unknown-flower-option": [*app, "flower", "--persistant=True"],
        "unknown-subcommand": [*app, "beet"],
        "unknown-module": ["celery", "-A", "worker.celery_ap", "worker"],
        "unknown-revision": ["alembic", "upgrade", "heda"],
        "unknown-command-after-and": [
            "sh",
            "-c",
            "alembic upgrade head && callstore partitions ensur",
        ],
        "shell-operator": ["sh", "-c", "alembic upgrade head; callstore partitions ensure"],
        "shell-variable": ["sh", "-c", "alembic upgrade $REVISION"],
    }
    errors = run_probe(broken, tmp_path)["errors"]
    assert {name for name, error in errors.items() if error} == set(broken)
