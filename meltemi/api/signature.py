"""Reading a handler's (or a dependency's) parameters from a request.

A `Signature` is compiled once per callable, when the API is compiled: each
parameter gets its source (path, query, header, cookie, body, form, file, a
dependency, the request itself), its name on the wire and its type. At
request time the simple values (query, header, cookie, form fields) are
gathered as strings into one dict and converted by one `msgspec.convert`
into a Struct made for the callable; a body is decoded by msgspec with its
type. Every failure becomes an entry of a 422's error list.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import msgspec.inspect

from . import aio
from .errors import HTTPException, ValidationError, error_type, split_msgspec_error
from .params import MISSING, Body, Cookie, Depends, File, Form, Header, Param, Path, Query
from .request import Request
from .uploads import UploadFile

_SEQUENCES = (list, tuple, set, frozenset)
_QUERY, _HEADER, _COOKIE, _FORM = range(4)
_SOURCES = {"query": _QUERY, "header": _HEADER, "cookie": _COOKIE, "form": _FORM}


def strip_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """The type under Annotated[...] and its metadata."""
    if get_origin(tp) is Annotated:
        args = get_args(tp)
        return args[0], list(args[1:])
    return tp, []


def strip_optional(tp: Any) -> Any:
    """T for T | None (and Optional[T]); tp otherwise."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def constrain(base: Any, metadata: list[Any]) -> Any:
    """Annotated[base, *metadata], with the constraints moved inside an
    Optional: `str | None` with max_length=3 is `Annotated[str, ...] | None`,
    which is what msgspec accepts (None has no length)."""
    if not metadata:
        return base
    inner = strip_optional(base)
    if inner is not base:
        return Annotated[(inner, *metadata)] | None
    return Annotated[(base, *metadata)]


def is_sequence(tp: Any) -> bool:
    # constrain() puts the constraints inside an Optional: Annotated[list[int], Meta] | None.
    base = strip_annotated(strip_optional(strip_annotated(tp)[0]))[0]
    return base in _SEQUENCES or get_origin(base) in _SEQUENCES


def is_upload(tp: Any) -> bool:
    base = strip_optional(strip_annotated(tp)[0])
    if is_sequence(base):
        args = get_args(strip_optional(base))
        base = args[0] if args else None
    return isinstance(base, type) and issubclass(base, UploadFile)


def is_body_type(tp: Any) -> bool:
    """Types that can only come from a JSON body: structs, dataclasses, TypedDicts, mappings."""
    base = strip_optional(strip_annotated(tp)[0])
    origin = get_origin(base) or base
    if isinstance(origin, type):
        if issubclass(origin, (msgspec.Struct, dict)) or dataclasses.is_dataclass(origin):
            return True
        if typing.is_typeddict(origin):
            return True
    if origin in _SEQUENCES:
        args = get_args(base)
        return bool(args) and is_body_type(args[0])
    return False


@dataclasses.dataclass
class Parameter:
    name: str  # the Python name
    kind: str  # request, path, query, header, cookie, body, form, file, depends
    alias: str  # the name on the wire
    annotation: Any
    default: Any
    marker: Param | Depends | None = None
    embed: bool = False
    dependency: Signature | None = None

    @property
    def required(self) -> bool:
        return self.default is MISSING


class Signature:
    """How to call `func` for a request; see the module's doc."""

    def __init__(self, func: Callable[..., Any], path_names: set[str], dependencies: list[Depends] = ()):
        self.func = func
        self.name = getattr(func, "__qualname__", repr(func))
        self.is_generator = inspect.isgeneratorfunction(func)
        self.is_async = aio.is_async(func)  # an `async def`: awaited on the API loop (aio.py)
        if inspect.isasyncgenfunction(func):
            raise TypeError(f"{self.name}: an async generator is not a dependency (use a generator or an async def)")
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception as exc:  # an unresolvable forward reference names the handler in the error
            raise TypeError(f"cannot read the annotations of {self.name}: {exc}") from exc
        self.return_annotation = hints.get("return", inspect.Signature.empty)
        self.params: list[Parameter] = []
        self.pass_request: str | None = None
        self.pass_websocket: str | None = None  # the parameter annotated WebSocket (a WebSocket route's)
        self.extra_dependencies = [Signature(d.dependency, path_names) for d in dependencies]
        self._extra_markers = list(dependencies)
        for i, p in enumerate(inspect.signature(func).parameters.values()):
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            tp = hints.get(p.name, Any)
            self.params.append(self._classify(i, p, tp, path_names))
        self.path = [p for p in self.params if p.kind == "path"]
        self.simple = [p for p in self.params if p.kind in ("query", "header", "cookie", "form")]
        self.bodies = [p for p in self.params if p.kind == "body"]
        self.files = [p for p in self.params if p.kind == "file"]
        self.depends = [p for p in self.params if p.kind == "depends"]
        if len(self.bodies) > 1:
            for b in self.bodies:
                b.embed = True
        if self.bodies and (self.files or any(p.kind == "form" for p in self.simple)):
            raise TypeError(f"{self.name}: a JSON body and form fields cannot be read from the same request")
        self.model = self._simple_model()
        # What _bind_simple does per parameter, decided once.
        self._simple_plan = [(p.name, _SOURCES[p.kind], p.alias, is_sequence(p.annotation)) for p in self.simple]
        self._file_plan = [(p, is_sequence(p.annotation)) for p in self.files]
        self.body_model = self._body_model()
        for model in (self.model, self.body_model):
            if model is not None:
                try:
                    msgspec.inspect.type_info(model)  # msgspec checks types lazily: make it say now
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"{self.name}: {exc}") from None
        self.has_form = bool(self.files) or any(p.kind == "form" for p in self.simple)

    # ---- compile time ----

    def _classify(self, index: int, p: inspect.Parameter, tp: Any, path_names: set[str]) -> Parameter:
        base, metadata = strip_annotated(tp)
        marker = next((m for m in metadata if isinstance(m, (Param, Depends))), None)
        default = MISSING if p.default is p.empty else p.default
        if isinstance(default, (Param, Depends)):
            marker, default = default, MISSING if isinstance(default, Depends) else default.default
        elif isinstance(marker, Param) and marker.default is not MISSING and default is MISSING:
            default = marker.default
        # Constraints (msgspec.Meta) stay on the type; our markers are removed.
        kept = [m for m in metadata if not isinstance(m, (Param, Depends))]
        if isinstance(marker, Param) and marker.meta() is not None:
            kept.append(marker.meta())
        annotation = constrain(base, kept)
        if isinstance(marker, Depends):
            dep = Signature(marker.dependency, path_names)
            return Parameter(p.name, "depends", p.name, annotation, MISSING, marker, dependency=dep)
        if marker is None and (
            (base is Request or (isinstance(base, type) and issubclass(base, Request)))
            or (index == 0 and p.name == "request" and base is Any)
        ):
            self.pass_request = p.name
            return Parameter(p.name, "request", p.name, annotation, MISSING)
        if marker is None and _is_websocket(base):
            self.pass_websocket = p.name
            return Parameter(p.name, "websocket", p.name, annotation, MISSING)
        if marker is not None:
            kind = marker.kind
        elif p.name in path_names:
            kind = "path"
        elif is_upload(tp):
            kind = "file"
        elif is_body_type(tp):
            kind = "body"
        else:
            kind = "query"
        if kind == "path" and p.name not in path_names:
            raise TypeError(f"{self.name}: path parameter {p.name!r} is not in the route's path")
        alias = marker.alias if isinstance(marker, Param) and marker.alias else p.name
        if kind == "header" and not (isinstance(marker, Param) and marker.alias):
            alias = p.name.replace("_", "-")
        if kind == "header":
            alias = alias.lower()
        param = Parameter(p.name, kind, alias, annotation, default, marker)
        if isinstance(marker, Body):
            param.embed = marker.embed
        return param

    def _simple_model(self) -> type[msgspec.Struct] | None:
        if not self.simple:
            return None
        fields = []
        for p in self.simple:
            fields.append((p.name, p.annotation) if p.required else (p.name, p.annotation, p.default))
        fields.sort(key=lambda f: len(f) == 3)  # required fields first, as Python wants
        return msgspec.defstruct(f"{self.name}.params", fields, forbid_unknown_fields=False)

    def _body_model(self) -> Any:
        if not self.bodies:
            return None
        if len(self.bodies) == 1 and not self.bodies[0].embed:
            return self.bodies[0].annotation
        fields = []
        for p in self.bodies:
            fields.append((p.name, p.annotation) if p.required else (p.name, p.annotation, p.default))
        fields.sort(key=lambda f: len(f) == 3)
        rename = {p.name: p.alias for p in self.bodies}
        return msgspec.defstruct(f"{self.name}.body", fields, rename=rename)

    def all_parameters(self) -> list[Parameter]:
        """Every parameter read from the request, dependencies' included (for OpenAPI)."""
        out = [p for p in self.params if p.kind not in ("depends", "request")]
        for p in self.depends:
            out.extend(p.dependency.all_parameters())
        for d in self.extra_dependencies:
            out.extend(d.all_parameters())
        return out

    # ---- request time ----

    def bind(self, request: Request, path_values: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
        """The keyword arguments for func; problems are appended to `errors`."""
        kwargs: dict[str, Any] = {}
        for dep in self.extra_dependencies:
            resolve(dep, request, path_values, errors, True)
        if self.pass_request:
            kwargs[self.pass_request] = request
        for p in self.path:
            kwargs[p.name] = path_values[p.name]
        if self.model is not None:
            self._bind_simple(request, kwargs, errors)
        if self.body_model is not None:
            self._bind_body(request, kwargs, errors)
        if self.files:
            form = request_form(request)
            for p, is_list in self._file_plan:
                found = form.files.get(p.alias)
                if not found:
                    if p.required:
                        errors.append({"loc": ["body", p.alias], "msg": "Field required", "type": "missing"})
                    else:
                        kwargs[p.name] = p.default
                else:
                    kwargs[p.name] = found if is_list else found[-1]
        for p in self.depends:
            kwargs[p.name] = resolve(p.dependency, request, path_values, errors, p.marker.use_cache)
        return kwargs

    def _bind_simple(self, request: Request, kwargs: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        raw: dict[str, Any] = {}
        sources: list[Any] = [None, None, None, None]
        for name, source, alias, is_list in self._simple_plan:
            found = sources[source]
            if found is None:
                found = sources[source] = self._source(request, source)
            value = found.get(alias)
            if value is None:
                continue
            if source == _HEADER and is_list:
                value = [v.strip() for v in value.split(",")]
            if is_list:
                raw[name] = value if value.__class__ is list else [value]
            else:
                raw[name] = value[-1] if value.__class__ is list else value
        try:
            values = msgspec.convert(raw, self.model, strict=False)
        except msgspec.ValidationError:
            # msgspec stops at the first problem; the error path checks each
            # value on its own so the client hears about all of them at once.
            self._simple_errors(raw, errors)
            return
        for p in self.simple:
            kwargs[p.name] = getattr(values, p.name)

    @staticmethod
    def _source(request: Request, source: int) -> Any:
        if source == _QUERY:
            return request.query
        if source == _HEADER:
            return request.headers
        if source == _COOKIE:
            return request.cookies
        return request_form(request).fields

    def _simple_errors(self, raw: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        for p in self.simple:
            where = "body" if p.kind == "form" else p.kind
            if p.name not in raw:
                if p.required:
                    errors.append({"loc": [where, p.alias], "msg": "Field required", "type": "missing"})
                continue
            try:
                msgspec.convert(raw[p.name], p.annotation, strict=False)
            except msgspec.ValidationError as exc:
                msg, loc = split_msgspec_error(exc)
                errors.append({"loc": [where, p.alias, *loc], "msg": msg, "type": error_type(msg)})

    def _bind_body(self, request: Request, kwargs: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        ctype = request.content_type
        body = request.body
        if not body:
            if all(not p.required for p in self.bodies):
                for p in self.bodies:
                    kwargs[p.name] = p.default
                return
            errors.append({"loc": ["body"], "msg": "Field required", "type": "missing"})
            return
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            raise HTTPException(415, f"Unsupported media type {ctype!r}: the body must be application/json")
        try:
            value = msgspec.json.decode(body, type=self.body_model)
        except msgspec.ValidationError as exc:
            msg, loc = split_msgspec_error(exc)
            errors.append({"loc": ["body", *loc], "msg": msg, "type": error_type(msg)})
            return
        except msgspec.DecodeError as exc:
            raise HTTPException(400, f"Malformed JSON body: {exc}") from None
        if len(self.bodies) == 1 and not self.bodies[0].embed:
            kwargs[self.bodies[0].name] = value
        else:
            for p in self.bodies:
                kwargs[p.name] = getattr(value, p.name)


def resolve(
    sig: Signature, request: Request, path_values: dict[str, Any], errors: list[dict[str, Any]], use_cache: bool
) -> Any:
    """Calls a dependency (once per request when cached)."""
    cache = request._cache
    if cache is None:
        cache = request._cache = {}
    key = sig.func
    if use_cache and key in cache:
        return cache[key]
    kwargs = sig.bind(request, {k: v for k, v in path_values.items()}, errors)
    if errors:
        raise ValidationError(errors)
    kwargs = {k: v for k, v in kwargs.items() if k in {p.name for p in sig.params}}
    if sig.is_generator:
        gen = sig.func(**kwargs)
        value = next(gen)
        request.add_cleanup(lambda: next(gen, None))
    elif sig.is_async:
        value = aio.run(sig.func(**kwargs))
    else:
        value = sig.func(**kwargs)
    if use_cache:
        cache[key] = value
    return value


class FormData:
    """An urlencoded or multipart body: fields (name → list of str) and files (name → list of UploadFile)."""

    __slots__ = ("fields", "files")

    def __init__(self, fields: dict[str, list[str]], files: dict[str, list[UploadFile]]):
        self.fields = fields
        self.files = files


def request_form(request: Request) -> FormData:
    cache = request._cache
    if cache is None:
        cache = request._cache = {}
    form = cache.get(FormData)
    if form is None:
        from .uploads import parse_form

        form = cache[FormData] = parse_form(request)
    return form


_ = (Query, Header, Cookie, Form, File, Path)  # the markers' kinds are read above


def _is_websocket(tp: Any) -> bool:
    from .websocket import WebSocket

    return isinstance(tp, type) and issubclass(tp, WebSocket)
