"""Class-based views: a class's methods as the handlers of one path.

    @api.view("/items/{item_id}", name="item")
    class ItemView(APIView):
        tags = ["items"]

        def get(self, request, item_id: int) -> ItemOut: ...

        @operation(status=204)
        def delete(self, item_id: int) -> None: ...

Each method named after an HTTP method (get, post, put, patch, delete,
head, options) becomes a route of the path, its parameters read as a
function's are (``self`` aside). A new instance serves each request, with
``self.request`` set before the method runs, so a view may keep per-request
state and share helpers between its methods. ``@operation(...)`` gives a
method the options of a route (status, response_model, summary, tags,
responses, ...); class attributes ``tags`` and ``dependencies`` apply to
every method.

The model viewset (ModelViewSet, viewsets.py) is made of the same parts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._handlers import empty, make_handler, request_parameter, resolved_parameters, return_hint
from .openapi import humanize
from .params import Depends
from .request import Request

if TYPE_CHECKING:
    from .routing import Router

__all__ = ["APIView", "operation"]

_HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_OPTIONS = "_meltemi_route_options"


class APIView:
    """A base for class-based views (optional: any class with get/post/...
    methods will do). `request` is the current request."""

    tags: Sequence[str] = ()
    dependencies: Sequence[Depends] = ()
    request: Request


def operation(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route options for a view's method: ``@operation(status=201, summary="...")``,
    the keywords of ``Router.add_route``."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _OPTIONS, dict(options))
        return func

    return decorator


def snake(name: str) -> str:
    """ "ItemView" → "item_view"."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def add_view(router: Router, path: str, cls: type, name: str | None = None, **options: Any) -> type:
    """Adds a route of `path` per HTTP method `cls` defines (see the module's doc)."""
    methods = [m for m in _HTTP_METHODS if callable(getattr(cls, m, None))]
    if not methods:
        raise TypeError(f"view {cls.__qualname__} has none of the methods {', '.join(_HTTP_METHODS)}")
    name = name or snake(cls.__name__)
    for method in methods:
        func = getattr(cls, method)
        handler = method_handler(cls, method)
        opts = {
            "name": name,
            "operation_id": f"{name}_{method}",
            "summary": humanize(f"{method} {cls.__name__}"),
            **options,
            **getattr(func, _OPTIONS, {}),
        }
        opts["tags"] = [*getattr(cls, "tags", ()), *opts.get("tags", ())]
        opts["dependencies"] = [*getattr(cls, "dependencies", ()), *opts.get("dependencies", ())]
        router.add_route(path, handler, (method.upper(),), **opts)
    return cls


def method_handler(cls: type, method: str) -> Callable[..., Any]:
    """A function that serves a request with a new `cls` instance's `method`."""
    func = getattr(cls, method)
    params = resolved_parameters(func, skip_first=True)
    request_name = request_parameter(params)
    passes_request = request_name is not None
    if not passes_request:
        request_name = "_view_request"
        params.insert(0, _keyword(request_name, Request))
    else:
        params = [p.replace(annotation=Request) if p.name == request_name else p for p in params]

    def call(kwargs: dict[str, Any]) -> Any:
        view = cls()
        view.request = kwargs[request_name] if passes_request else kwargs.pop(request_name)
        return getattr(view, method)(**kwargs)

    return make_handler(
        method,
        f"{cls.__qualname__}.{method}",
        params,
        return_hint(func),
        call,
        doc=func.__doc__,
        module=cls.__module__,
    )


def _keyword(name: str, annotation: Any, default: Any = empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
