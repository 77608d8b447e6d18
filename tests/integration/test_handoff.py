"""The hand-off never blocks the runtime's event loop, even when Redis is slow to answer."""

from __future__ import annotations

import asyncio
import time

import redis

from tests import factories
from worker.client.spool import Spool
from worker.settings import Settings


def test_a_slow_broker_does_not_stall_the_event_loop(
    settings: Settings, redis_client: redis.Redis
) -> None:
    patient = settings.model_copy(update={"publish_timeout_seconds": 3.0})
    recorder = factories.recorder(41, settings=patient)

    async def scenario() -> tuple[bool, float, float]:
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        redis_client.client_pause(700, all=False)  # writes wait 0.7 s, as under a stalled broker
        began = time.perf_counter()
        ok = await recorder.finalize_and_write(status="ended")
        took = time.perf_counter() - began
        done.set()
        await ticking
        return ok, took, max(gaps)

    ok, took, worst_gap = asyncio.run(scenario())
    assert ok
    assert took >= 0.5, "the broker pause did not delay the hand-off; the test proves nothing"
    assert worst_gap < 0.25, f"the event loop stalled for {worst_gap:.3f}s"
    assert redis_client.llen("calls") == 1


def test_a_broker_that_times_out_gets_the_call_spooled(
    settings: Settings, redis_client: redis.Redis
) -> None:
    recorder = factories.recorder(42, settings=settings)  # publish timeout 0.5 s
    redis_client.client_pause(3000, all=False)
    try:
        assert asyncio.run(recorder.finalize_and_write(status="ended")) is True
    finally:
        redis_client.client_unpause()
    spooled = Spool(settings.spool_dir).paths()
    assert len(spooled) == 1 and str(recorder.call_id) in spooled[0].name
