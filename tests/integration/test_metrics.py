"""The metrics endpoint's collector against the real servers, and the alert rules that ship
beside the compose file (``prometheus/alerts.yml``) against what it really exports."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from ruamel.yaml import YAML

from tests.compose_file import PROJECT_ROOT
from worker.jobs import JobName, exclusive_job
from worker.monitoring.prometheus import registry_for
from worker.settings import Settings

RULES_FILE = PROJECT_ROOT / "prometheus" / "alerts.yml"
JOB_AGE = "callstore_beat_job_last_success_age_seconds"


def scrape(settings: Settings) -> list[Sample]:
    text = generate_latest(registry_for(settings)).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def job_ages(settings: Settings) -> dict[str, float]:
    return {s.labels["job"]: s.value for s in scrape(settings) if s.name == JOB_AGE}


def test_every_scheduled_job_has_an_age_from_the_start(settings: Settings) -> None:
    assert job_ages(settings) == {job.value: math.inf for job in JobName}, (
        "+Inf before a job's first success: an alert needs no absent()"
    )
    with exclusive_job(settings, JobName.ROTATE_PARTITIONS) as job:
        assert job is not None
    ages = job_ages(settings)
    assert 0 <= ages.pop(JobName.ROTATE_PARTITIONS.value) < 60
    assert ages == {job.value: math.inf for job in JobName if job is not JobName.ROTATE_PARTITIONS}


# -- the alert rules ---------------------------------------------------------------------------

#: PromQL words that are not metric names.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(
    r"(?<![\w.:])(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?P<call>\()?(?:\{(?P<labels>[^}]*)\})?"
)
_MATCHER = re.compile(r'(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')


def selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, label matchers) of every vector selector in a PromQL expression."""
    text = _GROUPING.sub(" ", re.sub(r"\[[^\]]*\]", " ", expr))
    for match in _SELECTOR.finditer(text):
        name = match["name"]
        if match["call"] or name.lower() in _KEYWORDS:
            continue
        matchers = [
            (m["label"], m["op"], m["value"]) for m in _MATCHER.finditer(match["labels"] or "")
        ]
        yield name, matchers


def test_the_selector_reader_sees_names_and_matchers() -> None:
    found = list(
        selectors(
            'absent(up_a) or max by (job) (rate(b_total{job="x", q=~"c|d"}[5m])) > 1e3'
            " and on() c_seconds offset 5m"
        )
    )
    assert found == [
        ("up_a", []),
        ("b_total", [("job", "=", "x"), ("q", "=~", "c|d")]),
        ("c_seconds", []),
    ]


def load_rules() -> list[dict[str, Any]]:
    document = YAML(typ="safe").load(RULES_FILE.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_is_complete() -> None:
    rules = load_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert list(selectors(rule["expr"])), rule["alert"]


def test_every_metric_an_alert_names_is_on_the_metrics_endpoint(
    settings: Settings, tmp_path: Path
) -> None:
    samples = scrape(settings)
    exported = {s.name for s in samples}
    for rule in load_rules():
        for name, matchers in selectors(rule["expr"]):
            assert name in exported, f"{rule['alert']}: {name} is not exported"
            for label, op, value in matchers:
                if op not in ("=", "=~"):
                    continue
                values = {s.labels.get(label) for s in samples if s.name == name}
                assert any(v is not None and re.fullmatch(value, v) for v in values), (
                    f"{rule['alert']}: no {name}{{{label}{op}{value!r}}} among {values}"
                )


def test_every_scheduled_job_has_an_age_alert() -> None:
    alerted = {
        value
        for rule in load_rules()
        for name, matchers in selectors(rule["expr"])
        if name == JOB_AGE
        for label, _, value in matchers
        if label == "job"
    }
    # The canary and the migration have alerts of their own (round trip, lag).
    assert alerted == {job.value for job in JobName} - {JobName.CANARY, JobName.MIGRATION}


@pytest.mark.parametrize(
    "reference", ["docs/operations.md", "docker-compose.yml"], ids=lambda path: path
)
def test_the_rules_file_is_where_the_docs_and_compose_say(reference: str) -> None:
    assert "prometheus/alerts.yml" in (PROJECT_ROOT / reference).read_text()
