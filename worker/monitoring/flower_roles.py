"""Flower's two kinds of user: operators, who may control workers and tasks, and viewers, who
may read everything and change nothing.

Flower 2 has one kind: every user it lets in may revoke a waiting call, send or apply tasks,
stop a queue's consumer, resize or restart a pool and shut workers down. Flower itself still
checks every user's password (both kinds are in its ``basic_auth``); this module then refuses a
viewer's request with 403, before Flower's handler runs, unless it reads:

* ``GET`` and ``HEAD`` read (no Flower route changes anything on them);
* a ``POST`` is a read only for the handlers in ``READ_ONLY_POSTS`` (the tasks table of the
  UI posts its paging and search);
* anything else — each control endpoint, task apply/async-apply/send-task, any other method,
  a route a later Flower adds — is refused. Deny by default: nothing here lists what to refuse.

The check runs in ``prepare`` of every handler class Flower routes to: tornado calls it for
every request, after the method is known and before the handler's method, and it is wrapped in
each routed class because some of them (``BaseApiHandler``) override ``prepare`` without
calling their parent's. The pages a viewer reads are rendered with Flower's own ``read_only``
flag, so the UI shows them no buttons they may not use.

A viewer is recognised by the ``user:password`` its ``Authorization: Basic`` header carries.
Anonymous access (``CALLSTORE_FLOWER_ALLOW_ANONYMOUS``) has no users, hence no viewers.
"""

from __future__ import annotations

import binascii
import functools
import hmac
from base64 import b64decode
from collections.abc import Callable, Iterable
from typing import Any

#: Methods that only read, for every handler Flower routes to.
READ_METHODS = frozenset({"GET", "HEAD"})
#: Handlers (``module.Class``) whose ``POST`` only reads.
READ_ONLY_POSTS = frozenset({"flower.views.tasks.TasksDataTable"})
#: What a refused viewer reads.
REFUSAL = "viewers may only read: this needs a Flower operator (CALLSTORE_FLOWER_BASIC_AUTH)"

_GUARDED = "__callstore_viewer_guard__"


def basic_credentials(authorization: str | None) -> str | None:
    """``user:password`` of an ``Authorization: Basic`` header; None for anything else."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme != "Basic" or not token:
        return None
    try:
        return b64decode(token.strip().encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class ViewerGuard:
    """Decides, per request, whether a viewer is asking for more than a read."""

    def __init__(self, viewers: Iterable[str]) -> None:
        self._viewers = tuple(pair.encode() for pair in viewers)

    def is_viewer(self, authorization: str | None) -> bool:
        if not self._viewers:
            return False
        credentials = basic_credentials(authorization)
        if credentials is None:
            return False
        given = credentials.encode()
        return any(hmac.compare_digest(given, viewer) for viewer in self._viewers)

    def refuses(self, method: str, handler: type, authorization: str | None) -> bool:
        """True when a viewer sends ``method`` to ``handler`` and it is not a read. Operators
        and unknown credentials are left to Flower (which answers 401 to the latter)."""
        if method in READ_METHODS:
            return False
        if method == "POST" and _qualified_name(handler) in READ_ONLY_POSTS:
            return False
        return self.is_viewer(authorization)


_guard = ViewerGuard(())


def routed_classes(handlers: Iterable[Any]) -> list[type[Any]]:
    """Every handler class of Flower's route table (``url(...)`` specs and tuples alike)."""
    found: list[type[Any]] = []
    for route in handlers:
        cls = getattr(route, "handler_class", None) or route[1]
        if cls not in found:
            found.append(cls)
    return found


def _guarded_prepare(prepare: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(prepare)
    def guarded(handler: Any, *args: Any, **kwargs: Any) -> Any:
        request = handler.request
        if _guard.refuses(request.method, type(handler), request.headers.get("Authorization")):
            from tornado.web import HTTPError

            raise HTTPError(403, REFUSAL)
        return prepare(handler, *args, **kwargs)

    setattr(guarded, _GUARDED, True)
    return guarded


def _read_only_for_viewers(render: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(render)
    def rendered(handler: Any, *args: Any, **kwargs: Any) -> Any:
        if "read_only" in kwargs and _guard.is_viewer(handler.request.headers.get("Authorization")):
            kwargs["read_only"] = True
        return render(handler, *args, **kwargs)

    setattr(rendered, _GUARDED, True)
    return rendered


def install(guard: ViewerGuard) -> None:
    """Hold Flower's viewers to ``guard`` in this process (the one ``celery flower`` runs)."""
    global _guard
    _guard = guard
    from flower.urls import handlers
    from flower.views import BaseHandler

    for cls in routed_classes(handlers):
        if not getattr(cls.prepare, _GUARDED, False):
            cls.prepare = _guarded_prepare(cls.prepare)
    if not getattr(BaseHandler.render, _GUARDED, False):
        BaseHandler.render = _read_only_for_viewers(BaseHandler.render)
