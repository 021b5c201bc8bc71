"""API and Router: declaring routes, and compiling them for the C router.

    api = API(prefix="/api")

    @api.get("/items/{item_id}")
    def get_item(request, item_id: int, q: str | None = None) -> Item: ...

Path templates are segments of text and ``{name}`` parameters whose type is
the handler's annotation of `name` (int, float, bool, str, UUID, date,
datetime, Decimal, ...); ``{name:path}`` takes the rest of the path, slashes
included. int, float, bool and UUID segments are checked by the C router: a
segment that does not convert is answered 422 before Python is reached.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._core import API_METHODS, API_PARAM_TYPES
from .params import MISSING, Depends
from .ratelimit import limits_of
from .shortcuts import RouterShortcuts
from .signature import Signature, strip_annotated, strip_optional

# A route's auth= when it says nothing: its router's (then its API's).
INHERIT: Any = type("Inherit", (), {"__repr__": lambda self: "INHERIT"})()

# The methods the C router knows (src/python/api.c).
METHODS: tuple[str, ...] = API_METHODS

# {name} or {name:type}, type one of the C router's (int, float, uuid, bool, str, path).
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::(" + "|".join(API_PARAM_TYPES) + r"))?\}$")

# The C router's own checks, by annotation. Anything else is read as a
# string segment and converted by msgspec in Python.
_C_TYPES = {int: "int", float: "float", bool: "bool", uuid.UUID: "uuid", str: "str"}
assert set(_C_TYPES.values()) <= set(API_PARAM_TYPES), "a type the C router does not know"


@dataclass
class Route:
    path: str  # the full template, prefixes included
    methods: tuple[str, ...]
    func: Callable[..., Any] | None
    status: int = 200
    response_model: Any = MISSING
    tags: list[str] = field(default_factory=list)
    summary: str | None = None
    description: str | None = None
    name: str | None = None
    operation_id: str | None = None
    deprecated: bool = False
    include_in_schema: bool = True
    dependencies: list[Depends] = field(default_factory=list)
    responses: dict[int, Any] = field(default_factory=dict)
    constant: tuple[bytes, str] | None = None  # a pure-C route: (body, content type)
    auth: Any = INHERIT  # auth=: a scheme, a list (any of), None (none); INHERIT: the router's
    guards: list[Any] = field(default_factory=list)
    rate_limit: list[Any] = field(default_factory=list)  # RateLimit objects (meltemi/api/ratelimit.py)
    websocket: bool = False  # a WebSocket route (Router.websocket): GET with an upgrade, no OpenAPI operation

    @property
    def path_names(self) -> list[str]:
        names = []
        for seg in self.path.split("/"):
            m = _PARAM.match(seg)
            if m:
                names.append(m.group(1))
        return names


class Router(RouterShortcuts):
    """A group of routes, included in an API (or another router) with a prefix and tags."""

    def __init__(
        self,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] = (),
        *,
        auth: Any = INHERIT,
        guards: Sequence[Any] = (),
    ):
        _check_prefix(prefix)
        self.prefix = prefix.rstrip("/")
        self.tags = list(tags or [])
        self.dependencies = list(dependencies)
        self.auth = auth
        self.guards = list(guards)
        self.routes: list[Route] = []

    def add_route(
        self,
        path: str,
        func: Callable[..., Any],
        methods: Sequence[str],
        *,
        status: int = 200,
        response_model: Any = MISSING,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        name: str | None = None,
        operation_id: str | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
        dependencies: Sequence[Depends] = (),
        responses: dict[int, Any] | None = None,
        auth: Any = INHERIT,
        guards: Sequence[Any] = (),
        rate_limit: Any = None,
    ) -> Route:
        if not path.startswith("/") and not (path == "" and self.prefix):
            raise ValueError(f"route path {path!r} must start with '/' (or be '' for the router's prefix itself)")
        methods = tuple(m.upper() for m in methods)
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"unsupported method {m!r} for {path!r}")
        route = Route(
            self.prefix + path,
            methods,
            func,
            status,
            response_model,
            self.tags + list(tags or []),
            summary,
            description,
            name or getattr(func, "__name__", None),
            operation_id,
            deprecated,
            include_in_schema,
            self.dependencies + list(dependencies),
            dict(responses or {}),
            None,
            self.auth if auth is INHERIT else auth,
            self.guards + list(guards),
        )
        route.rate_limit = limits_of(rate_limit)
        self.routes.append(route)
        return route

    def route(self, path: str, methods: Sequence[str] = ("GET",), **options: Any):
        def decorator(func):
            self.add_route(path, func, methods, **options)
            return func

        return decorator

    def get(self, path: str, **options: Any):
        return self.route(path, ("GET",), **options)

    def post(self, path: str, **options: Any):
        return self.route(path, ("POST",), **options)

    def put(self, path: str, **options: Any):
        return self.route(path, ("PUT",), **options)

    def patch(self, path: str, **options: Any):
        return self.route(path, ("PATCH",), **options)

    def delete(self, path: str, **options: Any):
        return self.route(path, ("DELETE",), **options)

    def head(self, path: str, **options: Any):
        return self.route(path, ("HEAD",), **options)

    def options(self, path: str, **options: Any):
        return self.route(path, ("OPTIONS",), **options)

    def websocket(
        self,
        path: str,
        *,
        name: str | None = None,
        auth: Any = INHERIT,
        guards: Sequence[Any] = (),
        rate_limit: Any = None,
    ):
        """A WebSocket route: `async def handler(ws: WebSocket, <path and query parameters>)`. The path, the
        authentication and the rate limits are checked in C and the query parameters validated before the
        upgrade (404/422/401/403/429 are HTTP answers); the handler then runs on the worker's loop
        (docs/websockets.md). It is not an OpenAPI operation."""

        def decorator(func):
            from .aio import is_async

            if not is_async(func):
                raise TypeError(f"WebSocket route {path!r}: the handler must be an `async def`")
            route = self.add_route(
                path,
                func,
                ("GET",),
                name=name,
                include_in_schema=False,
                auth=auth,
                guards=guards,
                rate_limit=rate_limit,
            )
            route.websocket = True
            return func

        return decorator

    def constant(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "text/plain; charset=utf-8",
        status: int = 200,
        methods: Sequence[str] = ("GET",),
        rate_limit: Any = None,
    ) -> Route:
        """A route answered entirely in C with a fixed body (health checks,
        robots.txt): Python is never called for it. It is public (no auth= or guards)."""
        if isinstance(body, str):
            body = body.encode()
        # Answered before any authentication: a constant route is public (its rate limits still count).
        route = self.add_route(
            path, None, methods, status=status, include_in_schema=False, auth=None, guards=(), rate_limit=rate_limit
        )
        route.guards = []
        route.constant = (bytes(body), content_type)
        if route.path_names:
            raise ValueError(f"a constant route has no parameters: {path!r}")
        return route

    def include_router(self, router: Router, prefix: str = "", tags: Sequence[str] | None = None) -> None:
        _check_prefix(prefix)
        for r in router.routes:
            copy = Route(**{**r.__dict__})
            copy.path = self.prefix + prefix.rstrip("/") + r.path
            copy.tags = self.tags + list(tags or []) + r.tags
            copy.dependencies = self.dependencies + r.dependencies
            copy.auth = self.auth if r.auth is INHERIT else r.auth
            copy.guards = self.guards + r.guards
            self.routes.append(copy)


def _check_prefix(prefix: str) -> None:
    if prefix and (not prefix.startswith("/") or "{" in prefix):
        raise ValueError(f"a prefix starts with '/' and has no parameters: {prefix!r}")


def c_template(route: Route, sig: Signature | None) -> tuple[str, list[str], list[Any]]:
    """The C router's template for a route ("/items/{int}"), its parameter
    names, and per parameter the Python conversion still to do (None when
    the C router's value is final)."""
    segments, names, converters = [], [], []
    hints = {p.name: p.annotation for p in sig.params} if sig else {}
    parts = route.path.split("/")
    for i, seg in enumerate(parts):
        m = _PARAM.match(seg)
        if not m:
            if "{" in seg or "}" in seg:
                raise ValueError(f"route {route.path!r}: a parameter is a whole segment, like {{name}}")
            segments.append(seg)
            continue
        name, explicit = m.group(1), m.group(2)
        if name in names:
            raise ValueError(f"route {route.path!r} names {name!r} twice")
        annotation = hints.get(name, str)
        base = strip_optional(strip_annotated(annotation)[0])
        if explicit == "path":
            if i != len(parts) - 1:
                raise ValueError(f"route {route.path!r}: {{{name}:path}} must be the last segment")
            ctype = "path"
        else:
            ctype = explicit or _C_TYPES.get(base, "str")
        segments.append("{" + ctype + "}")
        names.append(name)
        # The C router's value is final when the annotation is exactly its type.
        final = annotation is base and _C_TYPES.get(base) == ctype and base is not uuid.UUID
        if ctype == "path" and base is str and annotation is base:
            final = True
        converters.append(None if final else annotation)
    return "/".join(segments) or "/", names, converters
