"""Health (liveness) and readiness endpoints.

``api.health("/health")`` is a constant route: ``{"status":"ok"}`` written
by C without Python, so it tells that the worker's loop and router answer,
and costs nothing to poll. ``api.readiness("/ready")`` runs checks in
Python: every database of ``settings.DATABASES`` (or those named) answers
``SELECT 1``, and every extra check (a callable; it fails by raising or
returning False) passes. It answers 200 ``{"status": "ready", "checks":
{...}}`` or 503 ``{"status": "unavailable", ...}`` with each check's
``"ok"`` or ``"failed: <exception class>"``; the exception itself is logged
(``meltemi.api`` logger), not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .request import Request
from .responses import JSONResponse

if TYPE_CHECKING:
    from .routing import Route, Router

logger = logging.getLogger("meltemi.api")

HEALTH_BODY = b'{"status":"ok"}'


class Readiness(msgspec.Struct):
    """Whether the service can take traffic, and each check's result."""

    status: str
    checks: dict[str, str]


def add_health(router: Router, path: str = "/health", name: str = "health") -> Route:
    route = router.constant(path, HEALTH_BODY, content_type="application/json")
    route.name = name
    # Documented (constant routes are not, by default), with the fixed answer as its example.
    route.include_in_schema = True
    route.tags = [*route.tags, "health"]
    route.summary = "Health"
    route.description = "Alive: answered by the server in C, without Python."
    return route


def add_readiness(
    router: Router,
    path: str = "/ready",
    databases: Sequence[str] | None = None,
    checks: Mapping[str, Callable[[], Any]] | None = None,
    name: str = "readiness",
    include_in_schema: bool = True,
) -> Route:
    extra = dict(checks or {})

    def readiness(request: Request) -> Readiness:
        """Ready when every database answers and every check passes (else 503)."""
        results: dict[str, str] = {}
        for alias in _aliases(databases):
            results[f"database:{alias}"] = _run(f"database {alias}", lambda a=alias: _ping(a))
        for check_name, fn in extra.items():
            results[check_name] = _run(check_name, fn)
        ready = all(v == "ok" for v in results.values())
        body = Readiness("ready" if ready else "unavailable", results)
        return JSONResponse(msgspec.to_builtins(body), 200 if ready else 503, {"Cache-Control": "no-store"})

    return router.add_route(
        path,
        readiness,
        ("GET",),
        name=name,
        response_model=Readiness,
        tags=["health"],
        include_in_schema=include_in_schema,
        responses={503: {"model": Readiness, "description": "Not ready: a check failed"}},
    )


def _aliases(databases: Sequence[str] | None) -> list[str]:
    if databases is not None:
        return list(databases)
    try:
        from django.conf import settings

        return list(settings.DATABASES) if settings.configured else []
    except ImportError:
        return []


def _ping(alias: str) -> None:
    from django.db import connections

    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # A broken connection is not kept for the next request of this thread.
        try:
            connection.close()
        except Exception:
            pass
        raise


def _run(label: str, fn: Callable[[], Any]) -> str:
    try:
        ok = fn()
    except Exception as exc:
        logger.warning("readiness check %s failed", label, exc_info=exc)
        return f"failed: {type(exc).__name__}"
    if ok is False:
        logger.warning("readiness check %s failed (returned False)", label)
        return "failed"
    return "ok"
