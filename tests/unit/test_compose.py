"""docker-compose.yml, checked without a Docker engine.

The file is validated against the Compose Specification (the JSON schema check-jsonschema ships
as ``vendor.compose-spec``, so no network is needed), then read the way compose reads it
(``tests/compose_file.py``: YAML merge keys, ``${VAR...}`` interpolation). That every command
line of our image is accepted by its program is checked in a process of its own, by
``tests/acceptance/test_compose_commands.py``.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.compose_file import (
    COMPOSE_FILE,
    PROJECT_ROOT,
    SECRETS,
    MissingVariable,
    command,
    load_compose,
    our_services,
    services,
)
from tests.compose_probe import command_lines
from worker.settings import ENV_PREFIX, Settings

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
VENV_BIN = Path(sys.executable).parent


#: How the image installs the project (the Dockerfile's last ``uv sync``), and its extras.
IMAGE_SYNC = re.compile(r"uv sync --frozen --no-dev((?: --extra \S+)*)\n")


def image_extras() -> list[str]:
    found = IMAGE_SYNC.findall((PROJECT_ROOT / "Dockerfile").read_text())
    assert found, "the Dockerfile installs no project with uv sync --frozen --no-dev"
    return re.findall(r"--extra (\S+)", found[-1])


def runtime_dependencies() -> set[str]:
    """What the image installs: the project's dependencies and those of its extras."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in image_extras():
        deps.extend(project["optional-dependencies"][extra])
    names = {re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0] for dep in deps}
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
    assert set(image_extras()) == {"worker", "azure"}  # the workers' side, not the test servers
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
            "(uv sync --no-dev with its extras) does not install"
        )
    [flower] = entry_points(group="celery.commands", name="flower")
    assert flower.dist is not None
    assert _normalize(flower.dist.name) in runtime
