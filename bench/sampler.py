"""A CPU-time sampling profiler for one process, cheap enough to leave running under load.

Why not a tracing profiler (cProfile, yappi): they slow every Python call several times over,
so the cheap, call-heavy stages (row building, logging) look far dearer than the C-heavy ones
(JSON, pydantic-core, libpq). Why not a wall-clock sampler from outside (py-spy): on a busy
two-core machine it counts a process that is runnable but waiting for a core as working, and
it needs ptrace rights that containers often lack.

This one is driven by ``ITIMER_PROF``: the kernel sends ``SIGPROF`` each time the process has
used ``interval`` seconds of CPU, and the handler books the CPU used since the previous sample
to the Python stack it finds. A long call into C (a JSON decode, a pydantic validation) delays
the handler until it returns, to the frame that called it, and that whole delay is booked
there: the weight, not the count, is what is summed. Garbage collection is booked apart, since
it runs wherever an allocation happens to trigger it: a signal that arrives during a collection
is handled in the ``gc.callbacks`` hook that ends it, which the handler recognizes (the hook
also times every collection, ``gc_seconds``, as a cross-check). The handler's own CPU is left
out of the samples and reported as ``overhead_seconds``.

Sampling runs only while ``window`` (a file) exists, so a benchmark decides exactly which
stretch of the process's life is measured.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

#: Where a sampled worker (``bench.anatomy_app``) finds its window and writes its samples.
DIRECTORY_ENV = "BENCH_ANATOMY_DIR"
#: The file whose existence opens the sampling window, in that directory.
WINDOW = "window"
#: The pseudo-frame garbage collection is booked to.
GC_FRAME = "<gc>"
_MAX_DEPTH = 80


_ROOT = str(Path(__file__).resolve().parents[1]).replace("\\", "/") + "/"
_LABELS: dict[CodeType, str] = {}


def _module_of(filename: str) -> str:
    """``.../site-packages/kombu/transport/redis.py`` -> ``kombu.transport.redis``; our own
    modules are named from the project root, the standard library by its file name."""
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        if path.startswith(_ROOT):
            path = path[len(_ROOT) :]
        elif "/lib/python" in path:
            path = path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def code_label(code: CodeType) -> str:
    """``module:qualified.function`` of a code object (cached: the handler runs every ms)."""
    label = _LABELS.get(code)
    if label is None:
        name = getattr(code, "co_qualname", code.co_name)
        label = _LABELS[code] = f"{_module_of(code.co_filename)}:{name}"
    return label


def stack_of(frame: FrameType | None) -> tuple[str, ...]:
    """The labels of ``frame`` and its callers, outermost first."""
    labels: list[str] = []
    while frame is not None and len(labels) < _MAX_DEPTH:
        labels.append(code_label(frame.f_code))
        frame = frame.f_back
    labels.reverse()
    return tuple(labels)


class CpuSampler:
    """Books this process's CPU time to Python stacks while ``window`` exists."""

    def __init__(self, window: Path, *, interval: float = 0.001) -> None:
        self.window = window
        self.interval = interval
        self.seconds: defaultdict[tuple[str, ...], float] = defaultdict(float)
        self.gc_seconds: defaultdict[int, float] = defaultdict(float)
        self.overhead_seconds = 0.0
        self._last = 0.0
        self._gc_started: float | None = None
        self._gc_code = CpuSampler._on_gc.__code__
        self._running = False
        self._active = False

    def start(self) -> None:
        self._last = time.process_time()
        self._running = True
        gc.callbacks.append(self._on_gc)
        signal.signal(signal.SIGPROF, self._on_signal)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if not self._active:
            return
        now = time.process_time()
        if phase == "start":
            self._gc_started = now
        elif self._gc_started is not None:
            self.gc_seconds[int(info.get("generation", 0))] += now - self._gc_started
            self._gc_started = None

    def _on_signal(self, _signum: int, frame: FrameType | None) -> None:
        began = time.process_time()
        spent = began - self._last
        self._active = os.path.exists(self.window)  # noqa: PTH110 - the cheapest check
        if not self._active:
            self._last = began
            return
        if frame is not None and frame.f_code is self._gc_code:
            # A signal that arrived during a collection runs at the first instruction of the
            # "stop" callback: that CPU was the collection's. At "start" it was the caller's.
            if frame.f_locals.get("phase") == "stop":
                self.seconds[(GC_FRAME,)] += spent
            else:
                self.seconds[stack_of(frame.f_back)] += spent
        else:
            self.seconds[stack_of(frame)] += spent
        self._last = time.process_time()
        self.overhead_seconds += self._last - began

    def dump(self, path: Path, **about: Any) -> None:
        """Write what was sampled as JSON: ``about``, the totals and every stack's seconds."""
        record = {
            **about,
            "pid": os.getpid(),
            "sampled_seconds": sum(self.seconds.values()),
            "overhead_seconds": self.overhead_seconds,
            "gc_seconds": {str(k): v for k, v in sorted(self.gc_seconds.items())},
            "stacks": [[list(stack), seconds] for stack, seconds in self.seconds.items()],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))


def load(path: Path) -> dict[str, Any]:
    """A dump written by ``CpuSampler.dump``, stacks back as tuples."""
    record: dict[str, Any] = json.loads(path.read_text())
    record["stacks"] = [(tuple(stack), float(seconds)) for stack, seconds in record["stacks"]]
    return record
