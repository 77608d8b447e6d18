"""Azurite, the Azure Storage emulator (npm package ``azurite``), for tests, benchmarks and demos.

It runs in memory on ports the kernel picks, so any number of test sessions can run side by
side. The package is pinned in the repository's ``package.json``; when ``node_modules`` is
missing, ``ensure_installed`` runs ``npm ci`` first (Node.js and npm must be on ``PATH``).

``python -m worker.dev.azurite`` runs one in the foreground and prints its connection string.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: The emulator's well-known development account, published by Microsoft for every Azurite
#: and Storage Emulator install. Public test data, never a real credential.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_LISTENING = re.compile(r"Azurite (Blob|Table) service is successfully listening at \S+:(\d+)")


class AzuriteError(RuntimeError):
    """Azurite could not be installed or started; the message says why."""


def connection_string(blob_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT};"
    )


def executable(root: Path = PROJECT_ROOT) -> Path:
    return root / "node_modules" / ".bin" / "azurite"


def ensure_installed(root: Path = PROJECT_ROOT) -> Path:
    """The ``azurite`` executable, installed from ``package-lock.json`` first if needed."""
    binary = executable(root)
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError("npm is not on PATH: install Node.js (20+) to run Azurite")
    lock = root / "package-lock.json"
    command = [npm, "ci" if lock.exists() else "install", "--no-audit", "--no-fund"]
    completed = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not binary.exists():
        raise AzuriteError(
            f"{' '.join(command[1:])} failed in {root}:\n{(completed.stderr or completed.stdout)[-2000:]}"
        )
    return binary


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    blob_port: int
    table_port: int
    log_path: Path

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.table_port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)


def start(
    *, root: Path = PROJECT_ROOT, log_dir: Path | None = None, timeout: float = 60
) -> Azurite:
    """Start an in-memory Azurite on free ports; return once blob and table services listen."""
    binary = ensure_installed(root)
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="azurite-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "azurite.log"
    command = [
        str(binary), "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent",
        "--disableTelemetry", "--blobHost", "127.0.0.1", "--blobPort", "0",
        "--queueHost", "127.0.0.1", "--queuePort", "0",
        "--tableHost", "127.0.0.1", "--tablePort", "0",
    ]  # fmt: skip
    with log_path.open("wb") as handle:
        process = subprocess.Popen(
            command,
            cwd=log_dir,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    ports: dict[str, int] = {}
    while len(ports) < 2:
        if process.poll() is not None:
            raise AzuriteError(f"azurite exited early:\n{log_path.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            process.kill()
            raise AzuriteError(f"azurite did not listen within {timeout:.0f}s")
        for service, port in _LISTENING.findall(log_path.read_text(errors="replace")):
            ports[service] = int(port)
        time.sleep(0.05)
    return Azurite(process, ports["Blob"], ports["Table"], log_path)


def main() -> None:  # pragma: no cover - interactive
    # Stop Azurite (its own process group) on SIGTERM as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    azurite = start()
    sys.stdout.write(
        f"Azurite is running (pid {azurite.process.pid}); stop it with Ctrl-C.\n"
        f"CALLSTORE_AZURE_CONNECTION_STRING='{azurite.connection_string}'\n"
    )
    sys.stdout.flush()
    try:
        azurite.process.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        azurite.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
