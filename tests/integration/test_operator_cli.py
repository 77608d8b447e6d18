"""What an operator does with a message no worker should run, in process (typer's runner):
``callstore queue list|move`` and ``callstore dead-letter export`` / ``replay ID --from FILE``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import Engine

from tests import factories
from tests.helpers import invoke_cli, publish_raw, task_body
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.settings import Settings


def test_a_message_is_listed_and_moved_from_its_queue_to_the_dead_letters(
    configured: Settings, conn: psycopg.Connection[Any], redis_client: redis.Redis
) -> None:
    call = factories.small_payload(41)
    stuck = task_body([call])
    stuck_id = publish_raw(configured, stuck)
    behind_id = publish_raw(configured, task_body([factories.small_payload(42)]))

    listed = invoke_cli("queue", "list", "calls")
    assert listed.exit_code == 0, listed.output
    assert listed.output.index(stuck_id[:8]) < listed.output.index(behind_id[:8])  # next first
    assert call["call_id"][:8] in listed.output

    moved = invoke_cli("queue", "move", "calls", stuck_id, "--reason", "stops every worker")
    assert moved.exit_code == 0, moved.output
    assert redis_client.llen("calls") == 1
    row = conn.execute(
        "SELECT error_class, error_message, payload, call_id::text FROM failed_payloads"
    ).fetchone()
    assert row is not None
    assert row[0] == "MessageMoved" and "stops every worker" in row[1]
    assert bytes(row[2]) == stuck and row[3] == call["call_id"]

    missing = invoke_cli("queue", "move", "calls", stuck_id)
    assert missing.exit_code == 1 and "no message" in missing.output
    assert invoke_cli("queue", "list", "nowhere").exit_code == 2


def test_a_refused_dead_letter_is_exported_edited_and_replayed_with_the_edit_kept(
    configured: Settings,
    engine: Engine,
    conn: psycopg.Connection[Any],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    body = factories.small_payload(43)
    body["messages"][0]["content"] = "half an emoji \ud83d"
    result = finalize_call(body, settings=configured, task_id="t", engine=engine)
    assert result.outcome is FinalizeOutcome.DEAD_LETTERED
    letter = str(result.dead_letter_id)

    shown = invoke_cli("dead-letter", "show", letter)
    assert shown.exit_code == 0 and "\\ud83d" in shown.output, shown.output
    refused = invoke_cli("dead-letter", "replay", letter)
    assert refused.exit_code == 1 and "messages[0].content" in refused.output

    exported = tmp_path / "call.json"
    assert invoke_cli("dead-letter", "export", letter, "--output", str(exported)).exit_code == 0
    edited = exported.read_text().replace("half an emoji \\ud83d", "a whole emoji \\ud83d\\ude42")
    exported.write_text(edited)
    replayed = invoke_cli("dead-letter", "replay", letter, "--from", str(exported))
    assert replayed.exit_code == 0, replayed.output
    assert "1 replayed" in replayed.output

    row = conn.execute(
        "SELECT status, payload, edited_payload, edited_at FROM failed_payloads WHERE id = %s",
        (letter,),
    ).fetchone()
    assert row is not None
    status, kept, edit, edited_at = row
    assert status == "replayed" and edited_at is not None
    assert bytes(edit) == edited.encode() and bytes(kept) != bytes(edit)  # both kept
    (queued,) = redis_client.lrange("calls", 0, -1)
    args, _, _ = json.loads(base64.b64decode(json.loads(queued)["body"]))
    assert args[0]["messages"][0]["content"] == "a whole emoji \U0001f642"
    assert "edited" in invoke_cli("dead-letter", "show", letter).output
