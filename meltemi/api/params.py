"""Where a handler's parameter comes from: markers used in ``Annotated``.

    def search(request, q: Annotated[str, Query(max_length=50)], agent: Annotated[str, Header(alias="User-Agent")]): ...

A marker may also be the parameter's default (``q: str = Query("x")``).
Parameters without a marker are read by their type: a name of the path
template is a path parameter, a ``msgspec.Struct`` (or dataclass, TypedDict,
dict, list) is the JSON body, an ``UploadFile`` is a file of a multipart
form, anything else is a query parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<required>", "__bool__": lambda self: False})()
MISSING = _MISSING


@dataclass(frozen=True)
class Param:
    """Base of the markers: `default`, `alias` (the name on the wire), and
    documentation that goes to OpenAPI."""

    default: Any = MISSING
    alias: str | None = None
    description: str | None = None
    deprecated: bool = False
    include_in_schema: bool = True
    examples: list[Any] | None = None
    # Constraints, checked by msgspec (as msgspec.Meta on the type).
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    kind = "query"

    def meta(self) -> Any:
        """The constraints and docs as a msgspec.Meta, or None without any."""
        import msgspec

        names = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern")
        given = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if self.description:
            given["description"] = self.description
        if self.examples:
            given["examples"] = list(self.examples)
        return msgspec.Meta(**given) if given else None


@dataclass(frozen=True)
class Query(Param):
    kind = "query"


@dataclass(frozen=True)
class Path(Param):
    kind = "path"


@dataclass(frozen=True)
class Header(Param):
    """A request header; without an alias, the name with '_' read as '-'."""

    kind = "header"


@dataclass(frozen=True)
class Cookie(Param):
    kind = "cookie"


@dataclass(frozen=True)
class Body(Param):
    """A JSON body. `embed=True` (implied when several parameters are body
    parameters) reads it as a member of the body object, named by alias."""

    embed: bool = False
    media_type: str = "application/json"
    kind = "body"


@dataclass(frozen=True)
class Form(Param):
    """A field of an urlencoded or multipart form."""

    kind = "form"


@dataclass(frozen=True)
class File(Param):
    """A file of a multipart form (an UploadFile, or list[UploadFile])."""

    kind = "file"


@dataclass(frozen=True)
class Depends:
    """The result of another callable, whose own parameters are read the same
    way. Called once per request however many parameters depend on it
    (``use_cache=False`` calls it each time). A generator dependency is run to
    its ``yield``; the rest runs after the response is produced."""

    dependency: Callable[..., Any]
    use_cache: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
