"""Handlers made at run time (paginated lists, class-based views, viewsets).

The API reads a handler's parameters from its signature and annotations
(signature.py). The helpers here make a plain function whose signature is
put together from parts (a method's parameters, a paginator's, a viewset's
filters), so that everything the API knows about parameters (sources,
validation, 422s, OpenAPI) applies to them unchanged.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any

from .request import Request

empty = inspect.Parameter.empty


def make_handler(
    name: str,
    qualname: str,
    params: Iterable[inspect.Parameter],
    return_annotation: Any,
    call: Callable[[dict[str, Any]], Any],
    doc: str | None = None,
    module: str | None = None,
) -> Callable[..., Any]:
    """A function taking `params` (by keyword) that returns call(kwargs)."""
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

    def handler(**kwargs: Any) -> Any:
        return call(kwargs)

    handler.__name__ = name
    handler.__qualname__ = qualname
    handler.__doc__ = doc
    if module:
        handler.__module__ = module
    handler.__signature__ = inspect.Signature(params, return_annotation=return_annotation)
    annotations = {p.name: p.annotation for p in params if p.annotation is not empty}
    if return_annotation is not empty:
        annotations["return"] = return_annotation
    handler.__annotations__ = annotations
    return handler


def resolved_parameters(func: Callable[..., Any], skip_first: bool = False) -> list[inspect.Parameter]:
    """func's parameters with their annotations resolved (strings evaluated), `*args`/`**kwargs` left out."""
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise TypeError(f"cannot read the annotations of {getattr(func, '__qualname__', func)}: {exc}") from exc
    out = []
    for i, p in enumerate(inspect.signature(func).parameters.values()):
        if skip_first and i == 0:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(p.replace(annotation=hints.get(p.name, p.annotation)))
    return out


def return_hint(func: Callable[..., Any]) -> Any:
    try:
        return typing.get_type_hints(func, include_extras=True).get("return", empty)
    except Exception:
        return empty


def request_parameter(params: list[inspect.Parameter]) -> str | None:
    """The name of the parameter that receives the request, as signature.py decides it."""
    for i, p in enumerate(params):
        ann = p.annotation
        if isinstance(ann, type) and issubclass(ann, Request):
            return p.name
        if i == 0 and p.name == "request" and ann in (empty, Any):
            return p.name
    return None
