"""Mounting an API in another, and URLs from route names (`reverse`).

``api.mount("/v2", v2)`` adds every route of the API (or Router) `v2` under
``<api prefix>/v2``, in place of `v2`'s own prefix: `v2`'s routes keep their
tags, dependencies and options, its exception handlers apply (where `api`
has none for the same class), and they are in `api`'s OpenAPI document and
docs pages. `v2`'s own document and pages are not mounted. With
``namespace="v2"`` its route names become ``"v2:name"``.

``api.reverse("item-detail", pk=3)`` is the path of the route of that name
(``name=`` on a route; the handler's name by default; ``"<basename>-list"``
and ``"<basename>-detail"`` for a viewset's routes), its parameters filled
in: ``str()`` of each value (booleans as true/false), percent-encoded so that
the C router reads the same value back (a ``{p:path}`` parameter keeps its
slashes). When several routes share a name, the first whose parameters are
the ones given wins. `NoReverseMatch` (a LookupError) otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from .routing import Router

__all__ = ["NoReverseMatch", "mount", "reverse"]


class NoReverseMatch(LookupError):
    """No route has the name, or none takes the parameters given."""


def mount(parent: Router, prefix: str, child: Router, namespace: str | None = None) -> None:
    from .routing import Route, _check_prefix

    _check_prefix(prefix)
    if prefix in ("", "/"):
        prefix = ""
    if getattr(child, "_endpoints", None) is not None:
        raise ValueError("mount an API before it is served (compiled): its docs routes would come along")
    if child is parent:
        raise ValueError("an API cannot be mounted in itself")
    base = parent.prefix + prefix.rstrip("/")
    for r in child.routes:
        copy = Route(**{**r.__dict__})
        rest = r.path[len(child.prefix) :] if r.path.startswith(child.prefix) else r.path
        copy.path = base + rest
        if not copy.path:
            copy.path = "/"
        copy.tags = parent.tags + list(r.tags)
        copy.dependencies = parent.dependencies + list(r.dependencies)
        if namespace and r.name:
            copy.name = f"{namespace}:{r.name}"
        parent.routes.append(copy)
    handlers = getattr(child, "exception_handlers", None)
    if handlers and hasattr(parent, "exception_handlers"):
        for cls, fn in handlers.items():
            parent.exception_handlers.setdefault(cls, fn)


def reverse(router: Router, name: str, /, **params: Any) -> str:
    routes = [r for r in router.routes if r.name == name]
    if not routes:
        raise NoReverseMatch(f"no route is named {name!r}")
    given = set(params)
    for r in routes:
        if set(r.path_names) == given:
            return fill(r.path, params)
    takes = " or ".join(repr(sorted(set(r.path_names))) for r in routes)
    raise NoReverseMatch(f"route {name!r} takes the parameters {takes}, not {sorted(given)!r}")


def fill(template: str, params: dict[str, Any]) -> str:
    """The path of `template` with its parameters' values."""
    from .routing import _PARAM

    out = []
    for seg in template.split("/"):
        m = _PARAM.match(seg)
        if not m:
            out.append(seg)
            continue
        name, kind = m.group(1), m.group(2)
        value = params[name]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if kind == "path":
            parts = text.split("/")
            if any(p in (".", "..") for p in parts) or not text:
                raise NoReverseMatch(f"{name}={text!r}: a path value has no empty, '.' or '..' segments")
            out.append("/".join(quote(p, safe="") for p in parts))
        else:
            if text in ("", ".", ".."):
                raise NoReverseMatch(f"{name}={text!r} cannot be a path segment")
            out.append(quote(text, safe=""))
    return "/".join(out) or "/"
