"""docker-compose.yml, checked without a Docker engine.

The file is validated against the Compose Specification (the JSON schema check-jsonschema ships
as ``vendor.compose-spec``, so no network is needed), then read the way compose reads it (YAML
merge keys, ``${VAR...}`` interpolation) and every command of our image is checked against the
installed project by ``tests/compose_probe.py``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.compose_probe import command_lines
from worker.settings import ENV_PREFIX, Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
VENV_BIN = Path(sys.executable).parent

#: Values for the variables compose requires; any secret-looking value will do.
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-0123",
    "REDIS_PASSWORD": "redis-secret-4567",
    "CALLSTORE_FLOWER_BASIC_AUTH": "admin:flower-secret",
}

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(LookupError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+other}``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        present = name in env
        filled = bool(env.get(name))
        if op in (":-", "-"):
            use_default = not filled if op == ":-" else not present
            return arg if use_default else env[name]
        if op in (":?", "?"):
            if (op == ":?" and not filled) or (op == "?" and not present):
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return arg if (filled if op == ":+" else present) else ""
        return env.get(name, "")

    return _VARIABLE.sub(replace, value)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    return node


def load_compose(env: dict[str, str]) -> dict[str, Any]:
    raw = YAML(typ="safe", pure=True).load(COMPOSE_FILE.read_text())
    tree: dict[str, Any] = _interpolate_tree(raw, env)
    return tree


@cache
def compose() -> dict[str, Any]:
    return load_compose(dict(SECRETS))


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def our_services() -> dict[str, dict[str, Any]]:
    """The services that run the callstore image (built from the Dockerfile)."""
    return {name: spec for name, spec in services().items() if "build" in spec}


def command(spec: dict[str, Any]) -> list[str]:
    value = spec["command"]
    assert isinstance(value, list), "commands are exec-form lists, never shell strings"
    return [str(part) for part in value]


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    return {_normalize(name) for name in names} | {_normalize(project["name"])}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- the Compose Specification ----------------------------------------------------------------


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_compose_file_is_valid_under_the_compose_specification() -> None:
    result = _check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("original", "broken"),
    [
        ("condition: service_completed_successfully", "condition: service_finished"),
        ("    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready", "    healthchek:\n      test: [\"CMD-SHELL\", \"pg_isready"),
        ('    restart: "no"', "    restart: 5"),
    ],
    ids=["unknown-condition", "misspelt-key", "wrong-type"],
)  # fmt: skip
def test_the_schema_check_rejects_a_broken_file(original: str, broken: str, tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    assert original in text
    path = tmp_path / "docker-compose.yml"
    path.write_text(text.replace(original, broken, 1))
    result = _check_jsonschema(path)
    assert result.returncode != 0, "the schema check accepted a broken compose file"


# -- what compose will do ---------------------------------------------------------------------


@pytest.mark.parametrize("variable", sorted(SECRETS))
def test_each_secret_is_required_and_never_written_in_the_file(variable: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != variable}
    with pytest.raises(MissingVariable, match=variable):
        load_compose(env)
    with pytest.raises(MissingVariable, match=variable):
        load_compose({**env, variable: ""})
    uses = re.findall(r"\$\{" + variable + r"(\S{0,2})", COMPOSE_FILE.read_text())
    assert uses
    assert set(uses) == {":?"}, "every use of a secret must require it"


def test_no_credentials_are_written_in_the_file() -> None:
    text = COMPOSE_FILE.read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for line in lines:
        for password in re.findall(r"://[^/\s:@]*:([^@\s]+)@", line):
            assert password.startswith("${"), line
            assert ":?" in password, line
        if re.search(r"^\s*[A-Z_]*(PASSWORD|_AUTH):\s*\S", line):
            assert re.search(r":\s*\$\{[A-Z_]+:\?", line), line
    assert "AccountKey=" not in text
    redis_command = command(services()["redis"])
    assert redis_command[redis_command.index("--requirepass") + 1] == SECRETS["REDIS_PASSWORD"]


def test_stateful_services_have_healthchecks_and_others_wait_for_them() -> None:
    all_services = services()
    for name in ("postgres", "redis", "azurite"):
        assert all_services[name]["healthcheck"]["test"], name
    for name, spec in our_services().items():
        for dependency, condition in spec["depends_on"].items():
            wanted = (
                "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            )
            assert condition["condition"] == wanted, (name, dependency)
            assert dependency in all_services
    migrate = all_services["migrate"]
    assert command_lines(command(migrate)) == [
        ["alembic", "upgrade", "head"],
        ["callstore", "partitions", "ensure"],
    ]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    for name in ("worker-calls", "worker-maintenance", "beat"):
        assert all_services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_redis_persists_every_write_and_never_evicts() -> None:
    redis_command = command(services()["redis"])
    pairs = dict(zip(redis_command[1::2], redis_command[2::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "always"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert pairs["--requirepass"] == SECRETS["REDIS_PASSWORD"]


def test_postgres_is_18_with_pgvector() -> None:
    assert services()["postgres"]["image"] == "pgvector/pgvector:pg18"


def test_exactly_one_beat_and_workers_for_every_queue() -> None:
    commands = {name: command(spec) for name, spec in our_services().items()}
    beats = [name for name, argv in commands.items() if "beat" in argv]
    assert beats == ["beat"]
    assert services()["beat"]["deploy"]["replicas"] == 1
    assert commands["worker-calls"][-3:-1] == ["-Q", "calls"]
    assert "maintenance,migration" in commands["worker-maintenance"]


#: Settings only Flower's service sets itself (its users are required there, its history file
#: lives on its volume); every other setting is the same for all callstore services.
FLOWER_ONLY = {"CALLSTORE_FLOWER_BASIC_AUTH", "CALLSTORE_FLOWER_DB"}


def test_flower_has_basic_auth_and_persistent_state_on_a_volume() -> None:
    flower = services()["flower"]
    argv = command(flower)
    assert argv[:4] == ["celery", "-A", "worker.celery_app", "flower"]
    assert not any("basic" in arg for arg in argv), "a password on the command line shows in ps"
    assert (
        flower["environment"]["CALLSTORE_FLOWER_BASIC_AUTH"]
        == SECRETS["CALLSTORE_FLOWER_BASIC_AUTH"]
    )
    assert flower["environment"]["CALLSTORE_FLOWER_DB"] == "/data/flower.db"
    assert any(volume.endswith(":/data") for volume in flower["volumes"])
    assert "127.0.0.1:5555:5555" in flower["ports"]


def test_every_setting_can_be_configured_through_compose() -> None:
    """A new field in worker/settings.py must be passed through to the services too."""
    expected = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name, spec in our_services().items():
        assert set(spec["environment"]) == expected, name


def test_env_example_lists_every_setting() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*(CALLSTORE_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert listed == {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for variable in SECRETS:
        assert re.search(rf"^{variable}=$", text, flags=re.MULTILINE), variable


def test_dockerignore_keeps_what_the_image_needs() -> None:
    patterns = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = [
        "pyproject.toml", "uv.lock", "README.md", "alembic.ini", "beat_schedule.py",
        "alembic/env.py", "worker/celery_app.py", "tasks/__init__.py", "models/tables.py",
    ]  # fmt: skip
    for path in needed:
        assert (PROJECT_ROOT / path).exists(), path
        top = path.split("/", 1)[0]
        assert not any(fnmatch.fnmatch(top, pattern) for pattern in patterns), path
    for secret in (".env", ".venv", ".callstore", ".git"):
        assert secret in patterns


def test_dockerfile_installs_from_the_lock_as_a_non_root_user() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev\n" in text
    users = re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


# -- every command names something that exists ------------------------------------------------


def test_every_program_is_installed_by_a_runtime_dependency() -> None:
    runtime = runtime_dependencies()
    programs = {
        (name, argv[0])
        for name, spec in our_services().items()
        for argv in command_lines(command(spec))
    }
    for name, program in sorted(programs):
        assert (VENV_BIN / program).is_file(), f"{name}: {program} is not installed"
        [script] = entry_points(group="console_scripts", name=program)
        assert script.dist is not None
        assert _normalize(script.dist.name) in runtime, (
            f"{name}: {program} comes from {script.dist.name}, which the image "
            "(uv sync --no-dev) does not install"
        )
    [flower] = entry_points(group="celery.commands", name="flower")
    assert flower.dist is not None
    assert _normalize(flower.dist.name) in runtime


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
