"""``callstore dead-letter list|show|export|replay``: payloads that could not be persisted."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from models.enums import DeadLetterStatus
from models.payload import QUEUE, TASK_NAME
from worker.calls import dead_letters
from worker.client.publisher import get_publisher
from worker.commands.common import console, fail
from worker.db import session_scope
from worker.errors import BrokerUnavailable, PayloadInvalid
from worker.settings import get_settings

app = typer.Typer(help="Inspect, export, edit and replay payloads kept in failed_payloads.")


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(
            f"{value!r} is not a dead-letter id (a UUID from 'callstore dead-letter list')", code=2
        )


@app.command("list")
def list_(
    status: Annotated[
        DeadLetterStatus | None, typer.Option(help="Only rows with this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The most recent dead letters."""
    with session_scope() as session:
        rows = dead_letters.listing(session, status=status, limit=limit)
        table = Table("id", "call_id", "status", "attempts", "last seen", "error")
        for row in rows:
            table.add_row(
                str(row.id),
                str(row.call_id or "-"),
                row.status,
                str(row.attempts),
                row.last_seen_at.isoformat(timespec="seconds"),
                f"{row.error_class}: {row.error_message[:80]}",
            )
    console.print(table)


@app.command("show")
def show(dead_letter_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One dead letter: why it failed, and its payload."""
    with session_scope() as session:
        row = dead_letters.get(session, _parse_id(dead_letter_id))
        if row is None:
            fail(f"no dead letter {dead_letter_id}")
        console.print(f"id           {row.id}", highlight=False)
        console.print(f"call_id      {row.call_id or '-'}", highlight=False)
        console.print(f"status       {row.status}", highlight=False)
        console.print(f"task         {row.task_name} {row.task_id or ''}", highlight=False)
        console.print(f"attempts     {row.attempts}", highlight=False)
        console.print(f"first seen   {row.first_seen_at.isoformat()}", highlight=False)
        console.print(f"last seen    {row.last_seen_at.isoformat()}", highlight=False)
        if row.replayed_at:
            console.print(f"replayed     {row.replayed_at.isoformat()} as {row.replay_task_id}")
        if row.edited_at:
            console.print(
                f"edited       {row.edited_at.isoformat()}: an edited payload was replayed",
                highlight=False,
            )
        console.print(f"error        {row.error_class}: {row.error_message}", highlight=False)
        console.print(dead_letters.readable(row.payload), highlight=False, markup=False)


@app.command("export")
def export(
    dead_letter_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """A dead letter's payload as JSON to edit; replay the edit with `replay ID --from FILE`."""
    with session_scope() as session:
        row = dead_letters.get(session, _parse_id(dead_letter_id))
        if row is None:
            fail(f"no dead letter {dead_letter_id}")
        text = dead_letters.readable(row.payload)
        row_id = row.id
    if output is None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)
        return
    output.write_text(text + "\n", encoding="utf-8")
    console.print(
        f"wrote {output}; edit it, then: callstore dead-letter replay {row_id} --from {output}",
        highlight=False,
    )


@app.command("replay")
def replay(
    dead_letter_id: Annotated[str | None, typer.Argument(metavar="[ID]")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every pending dead letter.")] = False,
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="Replay this file's payload (an edit of the export) instead."),
    ] = None,
) -> None:
    """Validate again and re-enqueue one dead letter (or all pending ones with --all)."""
    if (dead_letter_id is None) == (not all_):
        fail("give either an ID or --all", code=2)
    if from_file is not None and all_:
        fail("--from replays one dead letter: give its ID, not --all", code=2)
    settings = get_settings()
    publisher = get_publisher(settings)

    def send(payload: dict[str, Any]) -> str:
        return publisher.send(TASK_NAME, args=[payload], queue=QUEUE)

    if all_:
        report = dead_letters.replay_pending(send, max_bytes=settings.max_payload_bytes)
    else:
        edited = _read(from_file) if from_file is not None else None
        report = _replay_one(
            _parse_id(dead_letter_id or ""), send, settings.max_payload_bytes, edited=edited
        )
    for row_id, reason in report.refused:
        console.print(f"[yellow]not replayed[/] {row_id}: {reason}", highlight=False)
    console.print(
        f"{report.replayed} replayed, {len(report.refused)} still invalid", highlight=False
    )
    if report.broker_error:
        fail(f"broker unavailable, nothing more replayed: {report.broker_error}")
    if report.refused and not report.replayed:
        raise typer.Exit(1)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        fail(f"cannot read {path}: {error}", code=2)


def _replay_one(
    dead_letter_id: uuid.UUID,
    send: dead_letters.SendPayload,
    max_bytes: int,
    *,
    edited: bytes | None = None,
) -> dead_letters.ReplayReport:
    report = dead_letters.ReplayReport(total=1)
    with session_scope() as session:
        row = dead_letters.get(session, dead_letter_id)
        if row is None:
            fail(f"no dead letter {dead_letter_id}")
        try:
            payload = dead_letters.parse_replayable(
                row.payload if edited is None else edited, max_bytes=max_bytes
            )
        except PayloadInvalid as error:
            report.refused.append((dead_letter_id, str(error)))
            return report
        try:
            task_id = send(payload)
        except BrokerUnavailable as error:
            report.broker_error = str(error)
            return report
        dead_letters.mark_replayed(session, dead_letter_id, task_id=task_id, edited=edited)
        report.replayed = 1
        console.print(f"replayed {row.id} as task {task_id}", highlight=False)
    return report
