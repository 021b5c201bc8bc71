"""Paginated lists: page number, limit/offset and cursor.

    @api.get("/items")
    @paginate(PageNumberPagination, page_size=20, max_page_size=100)
    def list_items(request, q: str | None = None) -> list[ItemOut]:
        return Item.objects.filter(...)  # a QuerySet, or any list

`paginate` wraps the handler: the paginator's query parameters (``page``
and ``page_size``; ``limit`` and ``offset``; ``cursor`` and ``page_size``)
are added to the handler's own, so they are validated like any parameter
(a value out of bounds is a 422) and documented in the OpenAPI document.
The handler returns every row (a Django QuerySet is sliced in the database,
never read whole); the response is a generic Struct (`Page`,
`LimitOffsetPage`, `CursorPage`) of the handler's item type, so the page is
converted like any result (model instances to ``ItemOut`` by attribute).

Cursor pagination orders by fixed fields (the primary key is added as the
last one for QuerySets, so that the order is total) and points at a row by
its values: rows inserted or deleted while a client pages do not shift the
pages. The cursor is opaque: URL-safe base64 of the position, signed with
HMAC-SHA256 (the key derived from Django's SECRET_KEY), so an altered cursor
is refused with a 422 rather than read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import math
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin
from urllib.parse import urlencode

import msgspec

from ._handlers import empty, make_handler, request_parameter, resolved_parameters, return_hint
from .errors import HTTPException, ValidationError
from .params import Query
from .request import Request

T = TypeVar("T")

__all__ = [
    "CursorPage",
    "CursorPagination",
    "LimitOffsetPage",
    "LimitOffsetPagination",
    "Page",
    "PageNumberPagination",
    "Pagination",
    "paginate",
]


class Page(msgspec.Struct, Generic[T]):
    """A page of a page-number paginated list. `next` and `previous` are the
    URLs (path and query) of the neighbouring pages, or null."""

    items: list[T]
    count: int
    page: int
    page_size: int
    pages: int
    next: str | None
    previous: str | None


class LimitOffsetPage(msgspec.Struct, Generic[T]):
    """A slice of a limit/offset paginated list."""

    items: list[T]
    count: int
    limit: int
    offset: int
    next: str | None
    previous: str | None


class CursorPage(msgspec.Struct, Generic[T]):
    """A page of a cursor paginated list: pass `next_cursor` (or follow
    `next`) for the following page. There is no count: counting is what
    cursor pagination avoids."""

    items: list[T]
    next_cursor: str | None
    previous_cursor: str | None
    next: str | None
    previous: str | None


class Pagination:
    """A paginator: its query parameters, its response type, and `paginate()`."""

    response: Any = Page

    def parameters(self) -> list[inspect.Parameter]:
        raise NotImplementedError

    def paginate(self, request: Request, data: Any, values: dict[str, Any]) -> dict[str, Any]:
        """The response (as a dict of the response type's fields) for `data`
        and the values of the paginator's parameters."""
        raise NotImplementedError

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters()]


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _check_sizes(default: int, maximum: int) -> None:
    if not 1 <= default <= maximum:
        raise ValueError(f"page size {default} must be between 1 and the maximum ({maximum})")


class PageNumberPagination(Pagination):
    """``?page=N&page_size=M`` (page 1 first). A page after the last is 404."""

    response = Page

    def __init__(self, page_size: int = 20, max_page_size: int = 100):
        _check_sizes(page_size, max_page_size)
        self.page_size = page_size
        self.max_page_size = max_page_size

    def parameters(self) -> list[inspect.Parameter]:
        return [
            _param("page", Annotated[int, Query(ge=1, description="Page number, from 1")], 1),
            _param(
                "page_size",
                Annotated[int, Query(ge=1, le=self.max_page_size, description="Items per page")],
                self.page_size,
            ),
        ]

    def paginate(self, request: Request, data: Any, values: dict[str, Any]) -> dict[str, Any]:
        page, size = values["page"], values["page_size"]
        count = _count(data)
        pages = max(1, math.ceil(count / size))
        if page > pages:
            raise HTTPException(404, f"Invalid page: {page} (the last is {pages})")
        start = (page - 1) * size
        return {
            "items": _slice(data, start, start + size),
            "count": count,
            "page": page,
            "page_size": size,
            "pages": pages,
            "next": _url(request, page=page + 1) if page < pages else None,
            "previous": _url(request, page=page - 1) if page > 1 else None,
        }


class LimitOffsetPagination(Pagination):
    """``?limit=N&offset=M``. An offset past the end gives an empty page."""

    response = LimitOffsetPage

    def __init__(self, default_limit: int = 20, max_limit: int = 100):
        _check_sizes(default_limit, max_limit)
        self.default_limit = default_limit
        self.max_limit = max_limit

    def parameters(self) -> list[inspect.Parameter]:
        return [
            _param(
                "limit",
                Annotated[int, Query(ge=1, le=self.max_limit, description="Items per page")],
                self.default_limit,
            ),
            _param("offset", Annotated[int, Query(ge=0, description="Items to skip")], 0),
        ]

    def paginate(self, request: Request, data: Any, values: dict[str, Any]) -> dict[str, Any]:
        limit, offset = values["limit"], values["offset"]
        count = _count(data)
        previous = None
        if offset > 0:
            previous = _url(request, offset=max(0, min(offset, count) - limit))
        return {
            "items": _slice(data, offset, offset + limit),
            "count": count,
            "limit": limit,
            "offset": offset,
            "next": _url(request, offset=offset + limit) if offset + limit < count else None,
            "previous": previous,
        }


class CursorPagination(Pagination):
    """``?cursor=...&page_size=N`` over a fixed order: `ordering` is field
    names, each with a leading '-' for descending (Django's spelling). For a
    QuerySet the primary key is added as the last field; a list's ordering
    fields must be unique together, and their values comparable."""

    response = CursorPage

    def __init__(self, ordering: Sequence[str] | str = ("pk",), page_size: int = 20, max_page_size: int = 100):
        _check_sizes(page_size, max_page_size)
        if isinstance(ordering, str):
            ordering = (ordering,)
        if not ordering:
            raise ValueError("CursorPagination needs at least one ordering field")
        self.ordering = tuple(ordering)
        self.page_size = page_size
        self.max_page_size = max_page_size

    def parameters(self) -> list[inspect.Parameter]:
        return [
            _param("cursor", Annotated[str | None, Query(description="Where the page starts (opaque)")], None),
            _param(
                "page_size",
                Annotated[int, Query(ge=1, le=self.max_page_size, description="Items per page")],
                self.page_size,
            ),
        ]

    def paginate(self, request: Request, data: Any, values: dict[str, Any]) -> dict[str, Any]:
        size = values["page_size"]
        position = decode_cursor(values["cursor"]) if values["cursor"] else None
        fields = [(f.lstrip("-"), f.startswith("-")) for f in self.ordering]
        if _is_queryset(data):
            if not any(name in ("pk", data.model._meta.pk.name) for name, _ in fields):
                fields.append(("pk", fields[-1][1]))
            rows, has_before, has_after = _queryset_page(data, fields, position, size)
        else:
            rows, has_before, has_after = _list_page(list(data), fields, position, size)
        next_cursor = encode_cursor("n", _key(rows[-1], fields)) if rows and has_after else None
        previous_cursor = encode_cursor("p", _key(rows[0], fields)) if rows and has_before else None
        return {
            "items": rows,
            "next_cursor": next_cursor,
            "previous_cursor": previous_cursor,
            "next": _url(request, cursor=next_cursor) if next_cursor else None,
            "previous": _url(request, cursor=previous_cursor) if previous_cursor else None,
        }


# ---- the decorator ----


def paginate(pagination: type[Pagination] | Pagination = PageNumberPagination, **options: Any):
    """Makes a handler that returns every item (a QuerySet or any sequence)
    answer one page of them; see the module's doc. `pagination` is a
    paginator class (built with `options`) or instance."""
    paginator = pagination(**options) if isinstance(pagination, type) else pagination
    if not isinstance(paginator, Pagination):
        raise TypeError(f"paginate(): {pagination!r} is not a Pagination")

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        return paginated(func, paginator)

    return decorator


def paginated(func: Callable[..., Any], paginator: Pagination, item_type: Any = None) -> Callable[..., Any]:
    """func, answering pages as `paginator` makes them (what @paginate does)."""
    params = resolved_parameters(func)
    own = {p.name for p in params}
    taken = own & set(paginator.names)
    if taken:
        raise TypeError(f"{func.__qualname__}: parameter {sorted(taken)[0]!r} is the paginator's")
    request_name = request_parameter(params)
    added_request = request_name is None
    if added_request:
        request_name = "_paginated_request"
        params.insert(0, _param(request_name, Request, empty))
    else:
        params = [p.replace(annotation=Request) if p.name == request_name else p for p in params]
    if item_type is None:
        item_type = _item_type(return_hint(func))
    page_names = paginator.names

    def call(kwargs: dict[str, Any]) -> Any:
        values = {name: kwargs.pop(name) for name in page_names}
        request = kwargs[request_name]
        if added_request:
            del kwargs[request_name]
        return paginator.paginate(request, func(**kwargs), values)

    return make_handler(
        func.__name__,
        func.__qualname__,
        [*params, *paginator.parameters()],
        page_type(paginator.response, item_type),
        call,
        doc=func.__doc__,
        module=func.__module__,
    )


_page_types: dict[tuple[Any, Any], Any] = {}


def page_type(generic: Any, item: Any) -> Any:
    """The response Struct of `generic` (Page, ...) for items of type `item`:
    `Page` of `ItemOut` is a Struct named "ItemOutPage" with the fields of
    `Page[ItemOut]`. A Struct of its own rather than the generic alias,
    because msgspec's schemas cannot tell apart two aliases whose item types
    share a name (two "ItemOut" of different modules)."""
    key = (generic, item)
    made = _page_types.get(key)
    if made is None:
        hints = typing.get_type_hints(generic)
        fields = [(name, list[item] if name == "items" else tp) for name, tp in hints.items()]
        item_name = getattr(item, "__name__", None) or "Any"
        made = _page_types[key] = msgspec.defstruct(
            f"{item_name}{generic.__name__}",
            fields,
            module=getattr(item, "__module__", None) or __name__,
        )
        made.__doc__ = generic.__doc__
    return made


def _item_type(hint: Any) -> Any:
    """X for a return annotation list[X] (or Sequence[X], QuerySet[X], ...); Any otherwise."""
    args = get_args(hint)
    if get_origin(hint) is not None and len(args) == 1:
        return args[0]
    return Any


# ---- data ----


def _is_queryset(data: Any) -> bool:
    mod = sys.modules.get("django.db.models")
    return mod is not None and isinstance(data, mod.QuerySet)


def _count(data: Any) -> int:
    if _is_queryset(data):
        return data.count()
    if not hasattr(data, "__len__"):
        raise TypeError(f"a paginated handler returns a QuerySet or a sequence, not {type(data).__name__}")
    return len(data)


def _slice(data: Any, start: int, stop: int) -> list[Any]:
    return list(data[start:stop])


def _url(request: Request, **changes: Any) -> str:
    """The request's path and query with `changes` made to the query."""
    # The request's keys in their order, the changed ones in place, new ones last.
    query = dict(request.query)
    query.update({k: str(v) for k, v in changes.items()})
    return f"{request.path}?{urlencode(query, doseq=True)}"


# ---- cursors ----

_SIGNATURE_BYTES = 16


def _cursor_key() -> bytes:
    mod = sys.modules.get("django.conf")
    secret = ""
    if mod is not None and mod.settings.configured:
        secret = getattr(mod.settings, "SECRET_KEY", "") or ""
    return hashlib.sha256(b"meltemi.api.pagination.cursor:" + secret.encode()).digest()


def encode_cursor(direction: str, values: list[Any]) -> str:
    """An opaque cursor: the direction ("n" after, "p" before) and a row's ordering values, signed."""
    payload = msgspec.json.encode([direction, values])
    mac = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[str, list[Any]]:
    """(direction, values) of a cursor that encode_cursor made; a 422 for any other."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise _invalid_cursor() from None
    payload, mac = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
    expected = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    if len(raw) <= _SIGNATURE_BYTES or not hmac.compare_digest(mac, expected):
        raise _invalid_cursor()
    try:
        direction, values = msgspec.json.decode(payload, type=tuple[str, list[Any]])
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise _invalid_cursor() from None
    if direction not in ("n", "p"):
        raise _invalid_cursor()
    return direction, values


def _invalid_cursor() -> ValidationError:
    return ValidationError([{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}])


def _key(row: Any, fields: list[tuple[str, bool]]) -> list[Any]:
    values = []
    for name, _ in fields:
        value = row.get(name) if isinstance(row, dict) else getattr(row, name)
        values.append(msgspec.to_builtins(value))
    return values


def _queryset_page(qs: Any, fields: list[tuple[str, bool]], position: Any, size: int) -> tuple[list, bool, bool]:
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.db.models import Q

    def beyond(values: list[Any], forward: bool) -> Any:
        # Rows after (forward) or before the position in the order, as
        # (a > x) | (a == x & b > y) | ..., each comparison turned for '-' fields.
        if len(values) != len(fields):
            raise _invalid_cursor()
        q = Q()
        for i, (name, desc) in enumerate(fields):
            op = "gt" if desc != forward else "lt"
            cond = Q(**{f"{name}__{op}": values[i]})
            for j in range(i):
                cond &= Q(**{fields[j][0]: values[j]})
            q |= cond
        return q

    order = [("-" if desc else "") + name for name, desc in fields]
    reverse = [name if desc else "-" + name for name, desc in fields]
    try:
        if position is None:
            rows = list(qs.order_by(*order)[: size + 1])
            return rows[:size], False, len(rows) > size
        direction, values = position
        if direction == "n":
            rows = list(qs.filter(beyond(values, True)).order_by(*order)[: size + 1])
            return rows[:size], True, len(rows) > size
        rows = list(qs.filter(beyond(values, False)).order_by(*reverse)[: size + 1])
        return rows[:size][::-1], len(rows) > size, True
    except (ValueError, TypeError, DjangoValidationError):
        raise _invalid_cursor() from None


def _list_page(rows: list[Any], fields: list[tuple[str, bool]], position: Any, size: int) -> tuple[list, bool, bool]:
    def attr(row: Any, name: str) -> Any:
        return row.get(name) if isinstance(row, dict) else getattr(row, name)

    for name, desc in reversed(fields):  # stable sorts, last field first
        rows.sort(key=lambda r, n=name: attr(r, n), reverse=desc)
    if position is None:
        return rows[:size], False, len(rows) > size
    direction, raw = position
    if len(raw) != len(fields):
        raise _invalid_cursor()
    values = raw
    if rows:  # the cursor's values as the rows' own types (a datetime from its ISO text)
        try:
            values = [
                msgspec.convert(v, type(attr(rows[0], n)), strict=False) for v, (n, _) in zip(raw, fields, strict=True)
            ]
        except (msgspec.ValidationError, TypeError):
            raise _invalid_cursor() from None

    def after(row: Any) -> bool:
        for (name, desc), v in zip(fields, values, strict=True):
            x = attr(row, name)
            if x != v:
                return (x < v) if desc else (x > v)
        return False

    def before(row: Any) -> bool:
        for (name, desc), v in zip(fields, values, strict=True):
            x = attr(row, name)
            if x != v:
                return (x > v) if desc else (x < v)
        return False

    try:
        if direction == "n":
            following = [r for r in rows if after(r)]
            return following[:size], True, len(following) > size
        preceding = [r for r in rows if before(r)]
        return preceding[-size:], len(preceding) > size, True
    except TypeError:
        raise _invalid_cursor() from None
