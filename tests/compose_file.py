"""docker-compose.yml read the way compose reads it: YAML merge keys and ``${VAR...}``
interpolation, with the secrets compose requires filled in (no Docker engine needed)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"

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
