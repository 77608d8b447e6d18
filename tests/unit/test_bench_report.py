"""The benchmark's report writer: which runs rewrite docs/benchmarks.md, and how one section
is replaced without touching the rest of the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report
from bench.__main__ import parse_args, repetitions, writes_docs


@pytest.mark.parametrize(
    ("argv", "writes"),
    [
        ([], True),
        (["--quick"], False),
        (["--quick", "--write-docs"], True),
        (["--write-docs"], True),
        (["--no-docs"], False),
        (["--quick", "--no-docs"], False),
    ],
)
def test_only_a_full_run_or_an_explicit_option_writes_the_document(
    argv: list[str], writes: bool
) -> None:
    assert writes_docs(parse_args(argv)) is writes


def test_writing_and_not_writing_the_document_cannot_both_be_asked() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--write-docs", "--no-docs"])


DOCUMENT = "# Benchmarks\n\nintro\n\n## Targets\n\nold targets\n\n## Anatomy\n\nold\n### Sub\nold sub\n\n## Retention\n\nkept\n"


def test_a_section_is_replaced_up_to_the_next_heading_of_its_level() -> None:
    updated = report.replace_section(DOCUMENT, ["## Anatomy", "", "new", "### Sub", "new sub"])
    assert updated == (
        "# Benchmarks\n\nintro\n\n## Targets\n\nold targets\n\n"
        "## Anatomy\n\nnew\n### Sub\nnew sub\n\n## Retention\n\nkept\n"
    )


def test_the_last_section_is_replaced_to_the_end() -> None:
    updated = report.replace_section(DOCUMENT, ["## Retention", "", "new"])
    assert updated.endswith("## Anatomy\n\nold\n### Sub\nold sub\n\n## Retention\n\nnew\n")
    assert updated.count("## Retention") == 1


def test_a_missing_section_is_appended() -> None:
    updated = report.replace_section(DOCUMENT, ["## Scale-out", "", "figures"])
    assert updated.startswith(DOCUMENT)
    assert updated.endswith("kept\n\n## Scale-out\n\nfigures\n")


def test_writing_a_section_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text(DOCUMENT)
    report.write_section(path, ["## Targets", "", "new targets"])
    assert path.read_text() == DOCUMENT.replace("old targets", "new targets")


@pytest.mark.parametrize(
    ("argv", "repeat"),
    [([], 3), (["--quick"], 1), (["--repeat", "5"], 5), (["--quick", "--repeat", "2"], 2)],
)
def test_the_target_measurements_repeat_three_times_in_a_full_run_once_in_a_quick_one(
    argv: list[str], repeat: int
) -> None:
    assert repetitions(parse_args(argv)) == repeat


def test_a_run_without_any_repetition_cannot_be_asked() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--repeat", "0"])
