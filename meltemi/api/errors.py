"""The API's errors and their one JSON shape.

Every refusal of the API layer is ``{"detail": ...}``: a string for most
statuses, and for 422 a list of ``{"loc": [...], "msg": str, "type": str}``
(the C router answers a path segment that does not convert with the body
`path_error_body` makes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec


class HTTPException(Exception):
    """Raise it from a handler (or a dependency) to answer with `status`.

    `detail` is anything msgspec can encode; `headers` are added to the
    response (for example ``WWW-Authenticate`` with a 401)."""

    def __init__(self, status: int, detail: Any = None, headers: Mapping[str, str] | None = None):
        if detail is None:
            from http import HTTPStatus

            try:
                detail = HTTPStatus(status).phrase
            except ValueError:
                detail = "Error"
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"HTTPException(status={self.status!r}, detail={self.detail!r})"


class ValidationError(HTTPException):
    """422: the request does not fit the handler's parameters. `errors` is the
    list of ``{"loc", "msg", "type"}`` dicts."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(422, errors)
        self.errors = errors


class ResponseValidationError(Exception):
    """The handler returned something that does not fit its declared response
    type: a bug in the handler, answered 500 and logged."""


# "Expected `int`, got `str` - at `$.item_id`" → message, path
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def split_msgspec_error(exc: msgspec.ValidationError) -> tuple[str, list[Any]]:
    """The message and the location (as a list of keys and indexes) of one of msgspec's errors."""
    m = _AT.match(str(exc))
    msg, path = (m.group("msg"), m.group("path")) if m else (str(exc), None)
    loc: list[Any] = []
    for key, index in _PATH_PART.findall(path or ""):
        loc.append(key if key else int(index) if index else "...")
    missing = re.match(r"Object missing required field `([^`]+)`", msg)
    if missing:
        loc.append(missing.group(1))
    return msg, loc


def error_type(msg: str) -> str:
    """A short machine-readable kind for one of msgspec's messages."""
    if msg.startswith("Object missing required field"):
        return "missing"
    if msg.startswith("Object contains unknown field"):
        return "extra_forbidden"
    if msg.startswith("Invalid enum value"):
        return "enum"
    m = re.match(r"Expected `([^`]+)`(.*)$", msg, re.S)
    if not m:
        return "value_error"
    name, rest = m.group(1).split(" ")[0], m.group(2).strip()
    if rest.startswith(", got") or not rest:
        return {"int": "int_parsing", "float": "float_parsing", "bool": "bool_parsing", "str": "string_type"}.get(
            name, f"{name}_type"
        )
    if rest.startswith("matching regex"):
        return "string_pattern_mismatch"
    length = re.match(r"of length (<=|>=|<|>)", rest)
    if length:
        short = length.group(1).startswith(">")
        if name == "str":
            return "string_too_short" if short else "string_too_long"
        return "too_short" if short else "too_long"
    for op, kind in (
        (">=", "greater_than_equal"),
        ("<=", "less_than_equal"),
        (">", "greater_than"),
        ("<", "less_than"),
    ):
        if rest.startswith(op):
            return kind
    if rest.startswith("that's a multiple of"):
        return "multiple_of"
    return "value_error"


def json_error_body(status: int, detail: Any) -> bytes:
    return msgspec.json.encode({"detail": detail})


def path_error_body(name: str, label: str) -> bytes:
    """The 422 the C router answers, without Python, when the path segment of
    parameter `name` does not convert to `label` (one of _core.API_PARAM_TYPES):
    computed once per route and parameter (API.c_routes)."""
    error = {"loc": ["path", name], "msg": f"Expected `{label}`, got `str`", "type": f"{label}_parsing"}
    return json_error_body(422, [error])
