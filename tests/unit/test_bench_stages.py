"""The anatomy's frame rules: a sample goes to the innermost thing it was doing, and the CPU
sampler books CPU time to the function that used it."""

from __future__ import annotations

import time
from pathlib import Path

from bench import sampler, stages

POOL = ("billiard.pool:Worker.workloop", "celery.app.trace:fast_trace_task")
TASK = (*POOL, "tasks.calls:finalize", "worker.calls.finalize:finalize_call")


def test_a_log_line_written_while_persisting_is_logging() -> None:
    stack = (*TASK, "worker.calls.persist:persist_call", "logging:Logger.info")
    assert stages.stage_of(stack) == "logging"


def test_the_copy_inside_the_persist_is_the_copy_and_the_rest_of_it_the_upsert() -> None:
    persist = (*TASK, "worker.calls.persist:persist_call", "worker.calls.persist:write_call")
    assert stages.stage_of((*persist, "worker.calls.persist:copy_children")) == "copy"
    assert stages.stage_of((*persist, "psycopg.cursor:Cursor.execute")) == "upsert"


def test_validation_is_split_into_the_re_encode_and_the_model() -> None:
    validate = (*TASK, "worker.calls.validation:validate_payload")
    assert stages.stage_of((*validate, "worker.calls.validation:encode")) == "validation_encode"
    assert stages.stage_of((*validate, "pydantic.main:BaseModel.model_validate")) == "validation"


def test_the_body_decoded_by_celerys_strategy_is_a_decode_not_a_receive() -> None:
    receive = ("kombu.transport.redis:Channel._brpop_read", "celery.worker.strategy:handler")
    decode = (*receive, "kombu.message:Message.payload", "kombu.utils.json:loads")
    assert stages.stage_of(decode) == "body_decode"
    assert stages.stage_of((*receive, "kombu.utils.json:loads")) == "envelope_decode"
    assert stages.stage_of(receive) == "request"
    assert stages.stage_of(receive[:1]) == "receive"


def test_the_guard_in_the_main_process_is_its_own_stage_but_its_decode_a_decode() -> None:
    gate = (
        "kombu.transport.redis:Channel._brpop_read",
        "worker.intake.consumer:CallstoreConsumer.create_task_handler.<locals>.on_task_received",
        "worker.intake.gate:Gate.inspect",
    )
    assert stages.stage_of((*gate, "worker.calls.messages:json_deeper_than")) == "intake"
    assert stages.stage_of((*gate, "kombu.message:Message.decode")) == "body_decode"
    assert stages.stage_of((*gate, "worker.intake.deliveries:count_delivery")) == "deliveries"
    unacked = ("worker.intake.transport:QoS.append", "kombu.transport.redis:QoS.append")
    assert stages.stage_of(unacked) == "unacked"


def test_the_pools_work_loop_is_the_hand_off_and_unknown_code_is_other() -> None:
    assert stages.stage_of((*POOL[:1], "billiard.common:pickle_loads")) == "handoff"
    assert stages.stage_of(("somewhere:else",)) == "other"
    assert stages.unmatched([(("somewhere:else",), 2.0), (POOL, 1.0)]) == [("somewhere:else", 2.0)]


def test_attribution_sums_seconds_per_stage() -> None:
    samples = [((sampler.GC_FRAME,), 0.5), ((*TASK, "logging:Logger.info"), 0.25)]
    samples.append(((*TASK, "logging:Handler.emit"), 0.25))
    assert stages.attribute(samples) == {"gc": 0.5, "logging": 0.5}


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_sampler_books_cpu_only_inside_its_window(tmp_path: Path) -> None:
    window = tmp_path / sampler.WINDOW
    cpu = sampler.CpuSampler(window)
    cpu.start()
    try:
        _busy(0.05)  # before the window: not booked
        window.touch()
        _busy(0.2)
        window.unlink()
        _busy(0.05)
    finally:
        cpu.stop()
    cpu.dump(tmp_path / "pool.json", role="pool")
    record = sampler.load(tmp_path / "pool.json")
    busy = sum(s for stack, s in record["stacks"] if stack[-1].endswith(":_busy"))
    assert record["role"] == "pool"
    assert busy > 0.5 * record["sampled_seconds"]
    assert 0.1 < record["sampled_seconds"] < 0.26


def test_the_workers_transport_takes_records_and_acknowledges_in_its_stages() -> None:
    take = ("kombu.asynchronous.hub:Hub.create_loop", "worker.intake.transport:Channel._brpop_read")
    callback = (*take, "kombu.transport.virtual.base:Channel.basic_consume.<locals>._callback")
    record = (*callback, "worker.intake.transport:QoS.append", "redis.client:Redis.evalsha")
    assert stages.stage_of(record) == "unacked"
    assert stages.stage_of((*take, "worker.intake.transport:QoS.ack")) == "ack"
    assert stages.stage_of((*take, "worker.intake.transport:read_entry")) == "receive"
