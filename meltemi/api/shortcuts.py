"""The Router methods of the API's ergonomic helpers, each a thin door to
its module: class-based views (views.py), model viewsets (viewsets.py),
mounting and reverse (mounting.py), health and readiness (health.py).
`Router` (routing.py) inherits them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


class RouterShortcuts:
    def view(self, path: str, name: str | None = None, **options: Any) -> Callable[[type], type]:
        """Class decorator: the class's get/post/put/patch/delete/... methods
        are the handlers of `path` (meltemi.api.views)."""
        from .views import add_view

        def decorator(cls: type) -> type:
            return add_view(self, path, cls, name, **options)

        return decorator

    def register(self, prefix: str, viewset: type, name: str | None = None) -> None:
        """The CRUD routes of a ModelViewSet under `prefix` (meltemi.api.viewsets)."""
        from .viewsets import register

        register(self, prefix, viewset, name)

    def mount(self, prefix: str, api: Any, namespace: str | None = None) -> None:
        """Another API's (or Router's) routes under `prefix` (meltemi.api.mounting)."""
        from .mounting import mount

        mount(self, prefix, api, namespace)

    def reverse(self, name: str, /, **params: Any) -> str:
        """The path of the route named `name`, with `params` filled in (meltemi.api.mounting)."""
        from .mounting import reverse

        return reverse(self, name, **params)

    def health(self, path: str = "/health", name: str = "health") -> Any:
        """A liveness route answered in C: 200 {"status":"ok"} (meltemi.api.health)."""
        from .health import add_health

        return add_health(self, path, name)

    def readiness(
        self,
        path: str = "/ready",
        databases: Sequence[str] | None = None,
        checks: Mapping[str, Callable[[], Any]] | None = None,
        name: str = "readiness",
        include_in_schema: bool = True,
    ) -> Any:
        """200 when every database (and check) answers, else 503 (meltemi.api.health)."""
        from .health import add_readiness

        return add_readiness(self, path, databases, checks, name, include_in_schema)
