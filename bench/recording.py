"""What recording costs the runtime, with and without the journal, and what checkpoints cost.

``python -m bench.recording [--quick] [--json FILE]``

* Recording: each ``record_message`` and ``record_metric`` call timed on its own, back to back
  over 100 recorders, with the journal (written by the keeper thread every second, as
  deployed: its encoding and writes compete for the GIL during the measurement) and without it
  (``journal=False``), in alternating rounds of the same run, the garbage collector on. Targets:
  p99 ≤ 20 µs per record with the journal, and ≤ 2 times without.
* Checkpoints: the bytes a 30-minute call hands off with checkpoints every minute (as
  ``CALLSTORE_CHECKPOINT_SECONDS=60`` schedules them, ``worker.client.checkpoints``), against the
  final payload alone and against a naive checkpoint of the whole call every minute; and the
  longest stretch of the call that a lost host would lose.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import percentile, section_main
from worker.client.checkpoints import BYTES_RATIO, CheckpointPlan
from worker.client.encoding import encode_json
from worker.client.recorder import CallRecorder
from worker.dev.simulate import ASSISTANT_LINES, USER_LINES, SimulatedClock
from worker.settings import ClientSettings

RECORDERS = 100
CHECKPOINT_SECONDS = 60
CALL_MINUTES = 30


def _settings(spool_dir: Path) -> ClientSettings:
    return ClientSettings(
        _env_file=None,
        broker_url="redis+socket:///nonexistent/redis.socket",
        spool_dir=spool_dir,
        checkpoint_seconds=0,
    )


def _timed(records: int, journal: bool, spool_dir: Path) -> dict[str, list[float]]:
    """Microseconds of each record call, by method, back to back over ``RECORDERS`` calls."""
    settings = _settings(spool_dir)
    calls = [
        CallRecorder(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), settings=settings, announce=False,
                     journal=journal)
        for _ in range(RECORDERS)
    ]  # fmt: skip
    rng = random.Random(7)
    lines = [*USER_LINES, *ASSISTANT_LINES]
    timings: dict[str, list[float]] = {"record_message": [], "record_metric": []}
    clock = time.perf_counter_ns
    for n in range(records):
        recorder = calls[n % RECORDERS]
        if n % 3 == 0:
            text = rng.choice(lines)
            start = clock()
            recorder.record_message("user", text, node_id="menu", turn_number=n // 3)
            timings["record_message"].append((clock() - start) / 1000)
        else:
            value = rng.uniform(0.05, 0.9)
            start = clock()
            recorder.record_metric("llm_ttfb", value, processor="llm", turn_number=n // 3)
            timings["record_metric"].append((clock() - start) / 1000)
    for recorder in calls:
        if recorder._journal is not None:
            recorder._journal.remove()
    return timings


def recording(*, quick: bool) -> dict[str, Any]:
    rounds, per_round = (4, 10_000) if quick else (10, 20_000)
    results: dict[str, Any] = {"records": 2 * rounds * per_round, "rounds": rounds}
    samples: dict[bool, dict[str, list[float]]] = {
        journal: {"record_message": [], "record_metric": []} for journal in (False, True)
    }
    with tempfile.TemporaryDirectory(prefix="callstore-recording-") as tmp:
        _timed(5_000, True, Path(tmp) / "warm")  # imports, the keeper thread, caches
        for n in range(rounds):
            for journal in (False, True):
                timings = _timed(per_round, journal, Path(tmp) / f"spool-{n}-{journal}")
                for method, values in timings.items():
                    samples[journal][method].extend(values)
    for journal, timings in samples.items():
        every = [t for values in timings.values() for t in values]
        results["with_journal" if journal else "without_journal"] = {
            "p50_us": round(percentile(every, 50), 2),
            "p99_us": round(percentile(every, 99), 2),
            **{
                f"{method}_p{q}_us": round(percentile(values, q), 2)
                for method, values in timings.items()
                for q in (50, 99)
            },
        }
    without, with_ = results["without_journal"], results["with_journal"]
    results["p50_ratio"] = round(with_["p50_us"] / without["p50_us"], 2)
    results["p99_ratio"] = round(with_["p99_us"] / without["p99_us"], 2)
    return results


def _call_of(minutes: int) -> tuple[CallRecorder, SimulatedClock]:
    clock = SimulatedClock(datetime.now(UTC) - timedelta(minutes=minutes + 1))
    recorder = CallRecorder(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), clock=clock, announce=False, journal=False
    )
    return recorder, clock


def _turn(recorder: CallRecorder, rng: random.Random, turn: int) -> None:
    """What a turn of a real call records: two messages, four latency metrics and a token count."""
    recorder.record_message("user", rng.choice(USER_LINES), node_id="menu", turn_number=turn)
    for metric in ("stt_delay", "llm_ttfb", "llm_processing_time", "user_to_bot_latency"):
        recorder.record_metric(metric, rng.uniform(0.05, 0.9), processor="p", turn_number=turn)
    recorder.record_metric("llm_prompt_tokens", rng.randint(300, 2000), turn_number=turn)
    recorder.record_message("assistant", rng.choice(ASSISTANT_LINES), turn_number=turn)


def checkpoints() -> dict[str, Any]:
    """A call of ``CALL_MINUTES`` with a turn every 6 s, its checkpoints measured in encoded
    bytes (what is published) at each second of simulated time."""
    rng = random.Random(11)
    recorder, clock = _call_of(CALL_MINUTES)
    plan = CheckpointPlan(CHECKPOINT_SECONDS, started=0.0)

    def size() -> int:
        return len(encode_json(recorder.build_payload()))

    naive_bytes = checkpoint_bytes = 0
    sent_at: list[int] = []
    for second in range(1, CALL_MINUTES * 60 + 1):
        clock.current += timedelta(seconds=1)
        if second % 6 == 0:
            _turn(recorder, rng, second // 6)
        if second % CHECKPOINT_SECONDS == 0 and second < CALL_MINUTES * 60:
            naive_bytes += size()
        # The recorder's own decision: on its running size estimate, as in ``_tick``.
        if plan.due(float(second), recorder._approx_bytes, recorder._version):
            plan.sent(float(second), recorder._approx_bytes, recorder._version)
            checkpoint_bytes += size()
            sent_at.append(second)
    recorder.update_status("ended")
    final = size()
    gaps = [b - a for a, b in zip([0, *sent_at], [*sent_at, CALL_MINUTES * 60], strict=True)]
    return {
        "call_minutes": CALL_MINUTES,
        "interval_s": CHECKPOINT_SECONDS,
        "bytes_ratio_bound": BYTES_RATIO,
        "final_bytes": final,
        "checkpoints": plan.count,
        "checkpoint_at_s": sent_at,
        "checkpoint_bytes": checkpoint_bytes,
        "with_checkpoints_ratio": round((checkpoint_bytes + final) / final, 2),
        "naive_checkpoints": CALL_MINUTES - 1,
        "naive_bytes": naive_bytes + final,
        "naive_ratio": round((naive_bytes + final) / final, 2),
        "longest_gap_s": max(gaps),
        "last_gap_s": gaps[-1],
    }


def bench_section(quick: bool) -> dict[str, Any]:
    return {"recording": recording(quick=quick), "checkpoints": checkpoints()}


def _row(label: str, figures: dict[str, float]) -> str:
    return (
        f"| {label} | {figures['p50_us']} µs | {figures['p99_us']} µs "
        f"| {figures['record_message_p99_us']} µs | {figures['record_metric_p99_us']} µs |"
    )


def markdown(results: dict[str, Any]) -> list[str]:
    r, c = results["recording"], results["checkpoints"]
    w, wo = r["with_journal"], r["without_journal"]
    met = "yes" if w["p99_us"] <= 20 and r["p99_ratio"] <= 2 else "NO"
    return [
        "## Recording",
        "",
        "Each `record_message` (a line of conversation) and `record_metric` timed on its own,",
        f"{r['records']:,} calls back to back over {RECORDERS} recorders, with the per-call journal",
        "(the keeper thread encodes and writes it every second, competing for the GIL) and",
        f"without it, in {r['rounds']} alternating rounds of the same run, the garbage collector on",
        "(`uv run python -m bench.recording`):",
        "",
        "| | p50 | p99 | `record_message` p99 | `record_metric` p99 |",
        "|---|---|---|---|---|",
        _row("without the journal", wo),
        _row("with the journal", w),
        "",
        f"Ratio with/without: p50 {r['p50_ratio']}, p99 {r['p99_ratio']} (targets: p99 ≤ 20 µs and",
        f"≤ 2 times without the journal; met: {met}). Both include the call-site checks against",
        "the contract. With the journal a record only queues the entry; encoding, checksums and",
        "the write happen in the keeper thread.",
        "",
        "## Checkpoints",
        "",
        f"A {c['call_minutes']}-minute call (a turn every 6 s: two messages, five metrics) with",
        f"`CALLSTORE_CHECKPOINT_SECONDS={c['interval_s']}`, in bytes published:",
        "",
        "| | checkpoints | bytes published | × the final payload |",
        "|---|---|---|---|",
        f"| final payload only (checkpoints off) | 0 | {c['final_bytes']:,} | 1.0 |",
        (
            f"| bounded checkpoints (callstore) | {c['checkpoints']} "
            f"| {c['checkpoint_bytes'] + c['final_bytes']:,} | {c['with_checkpoints_ratio']} |"
        ),
        (
            f"| the whole call every minute (naive) | {c['naive_checkpoints']} "
            f"| {c['naive_bytes']:,} | {c['naive_ratio']} |"
        ),
        "",
        f"Checkpoints at {', '.join(str(s) for s in c['checkpoint_at_s'])} s. The trade-off: a",
        f"checkpoint is sent only while all of them stay within {c['bytes_ratio_bound']:g} times",
        "the call's current size, so they come every minute for the first minutes and then at",
        "about a third of the call's age; a lost host loses at most the time since the last one",
        f"(here at most {c['longest_gap_s']} s, {c['last_gap_s']} s at the end of the call). A",
        "runtime process that dies loses far less: its journal is on the host.",
    ]


def main(argv: list[str] | None = None) -> int:
    figures = section_main("python -m bench.recording", __doc__, bench_section, argv)
    print("\n".join(markdown(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
