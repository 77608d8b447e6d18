"""Who may do what in Flower, decided for every handler class Flower routes to
(tests/acceptance/test_flower_roles.py sends the requests to a real Flower)."""

from __future__ import annotations

import base64

import pytest
from flower.urls import handlers

from worker.monitoring.flower_roles import READ_ONLY_POSTS, ViewerGuard, routed_classes

GUARD = ViewerGuard(["ro:read-Pa55"])


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


ROUTED = routed_classes(handlers)
WRITES = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_route_of_flower_is_seen() -> None:
    names = {_name(cls) for cls in ROUTED}
    assert {
        "flower.api.control.WorkerShutDown",
        "flower.api.control.TaskRevoke",
        "flower.api.control.WorkerQueueCancelConsumer",
        "flower.api.tasks.TaskSend",
        "flower.api.tasks.ListTasks",
        "flower.views.error.NotFoundErrorHandler",
    } <= names
    assert names >= READ_ONLY_POSTS, "each read sent as POST names a class Flower routes to"


@pytest.mark.parametrize("cls", ROUTED, ids=_name)
def test_a_viewer_may_only_read(cls: type) -> None:
    viewer = basic("ro:read-Pa55")
    assert not GUARD.refuses("GET", cls, viewer)
    assert not GUARD.refuses("HEAD", cls, viewer)
    for method in WRITES:
        allowed = method == "POST" and _name(cls) in READ_ONLY_POSTS
        assert GUARD.refuses(method, cls, viewer) is not allowed, method


@pytest.mark.parametrize("cls", ROUTED, ids=_name)
def test_operators_and_unknown_credentials_are_left_to_flower(cls: type) -> None:
    for authorization in (basic("ops:op-Pa55"), basic("ro:wrong"), None, "Bearer x", "Basic %%"):
        for method in WRITES:
            assert not GUARD.refuses(method, cls, authorization)


def test_without_viewers_nothing_is_refused() -> None:
    assert not ViewerGuard([]).refuses("POST", ROUTED[0], basic("ro:read-Pa55"))
