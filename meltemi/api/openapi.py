"""The OpenAPI 3.1 document of an API, made from its routes and their types.

``API.openapi()`` builds it once (served as JSON at ``<prefix>/openapi.json``
unless ``openapi_url=None``). What goes where:

- **info** is the API's ``title``, ``version`` and ``description``;
  ``servers`` is passed through when given.
- **operations**: one per route and method. ``summary`` is the route's, or
  the handler's name made readable (``get_item`` → "Get Item");
  ``description`` is the route's, or the handler's docstring. ``tags`` come
  from the route, its routers and their ``include_router(..., tags=...)``;
  ``operationId`` is ``operation_id=`` or the handler's name, made unique.
  Routes with ``include_in_schema=False`` and constant (pure C) routes are
  left out, and so are parameters whose marker says ``include_in_schema=False``.
- **parameters**: path, query, header and cookie parameters, dependencies'
  included, with their wire name (alias), ``required``, default, the
  marker's ``description``, ``deprecated`` and ``examples``, and the JSON
  Schema that msgspec makes of the annotation (``msgspec.Meta`` constraints
  included).
- **requestBody**: the JSON body's type; several body parameters (or
  ``Body(embed=True)``) make an object with one member per parameter. Form
  fields and files make a ``multipart/form-data`` body (also
  ``application/x-www-form-urlencoded`` when there is no file).
- **responses**: the route's status with the schema of the return
  annotation (or ``response_model``); nothing for 204 and 304. A route that
  reads any parameter can answer 422 with the validation errors' shape
  (``HTTPValidationError``). ``responses={404: ...}`` adds others, each
  value one of: a type (the JSON body's), a string (the description, of an
  ``{"detail": ...}`` body for an error status), ``None``, or a dict that is
  an OpenAPI Response Object, where ``"model"`` may stand for a type.
- **security**: a route's authentication schemes (any of them) as the
  operation's ``security``, and each scheme once in
  ``components/securitySchemes`` (bearer JWT, apiKey in a header, query or
  the session cookie); a route without authentication has none.
- **components/schemas**: every msgspec Struct, dataclass, TypedDict or
  enum used anywhere above, once, referenced as ``#/components/schemas/Name``
  (msgspec qualifies a name with its module when two types share it).
"""

from __future__ import annotations

import inspect
import logging
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec

from .params import MISSING, Body, Param
from .responses import Response
from .signature import Parameter, Signature, is_sequence, is_upload

if TYPE_CHECKING:
    from .app import API, Endpoint

logger = logging.getLogger("meltemi.api")

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"

# "{name}" or "{name:path}" (any converter) in a route's template.
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}")

# The kinds of parameters that OpenAPI lists under "parameters" ("in": kind).
_WIRE_KINDS = ("path", "query", "header", "cookie")

# Statuses whose responses have no body (RFC 9110).
_NO_BODY = {204, 205, 304}

# Bytes as they are (an uploaded file, a bytes response): OpenAPI 3.1 says so
# with contentMediaType; the 3.0 spelling (format: binary) is kept for the
# tools that still read only that one.
_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}


# The error shapes of errors.py, declared as Structs so that msgspec makes
# their schemas along with the user's types (and renames them, as it does
# for any two types of one name, should a user type be called the same).
class ValidationError(msgspec.Struct):
    """One problem with a request: where (`loc`, e.g. `["query", "limit"]`), what, and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(msgspec.Struct):
    """422: the request does not fit the operation's parameters."""

    detail: list[ValidationError]


class HTTPError(msgspec.Struct):
    """An error answered by the API (HTTPException, Http404, PermissionDenied, ...)."""

    detail: Any


def openapi_schema(api: API) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `api`'s routes (see the module's doc)."""
    endpoints = [ep for ep in api.compile() if _documented(ep)]
    types = _Types()
    operation_ids = _OperationIds()
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for ep in endpoints:
        path_item = paths.setdefault(openapi_path(ep.route.path), {})
        for method in ep.route.methods:
            key = method.lower()
            if key in path_item:
                continue  # a second route for the same path and method is never reached
            path_item[key] = _operation(ep, method, types, operation_ids)
        for tag in ep.route.tags:
            if tag not in tags:
                tags.append(tag)

    # Every type the operations named is described now, all at once, so that
    # a Struct used in many places is one component.
    components = types.resolve()
    for path_item in paths.values():
        for operation in path_item.values():
            for param in operation.get("parameters", ()):
                # Swagger UI shows a parameter's description, not its schema's
                # (where msgspec.Meta(description=...) puts it).
                if "description" not in param and isinstance(param["schema"].get("description"), str):
                    param["description"] = param["schema"]["description"]

    doc: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": {"title": api.title, "version": api.version}}
    if api.description:
        doc["info"]["description"] = api.description
    if api.servers:
        doc["servers"] = [dict(s) for s in api.servers]
    doc["paths"] = paths
    security = _security_schemes(endpoints)
    if components or security:
        doc["components"] = {}
    if components:
        doc["components"]["schemas"] = components
    if security:
        doc["components"]["securitySchemes"] = security
    if tags:
        doc["tags"] = [{"name": t} for t in tags]
    return doc


def openapi_path(template: str) -> str:
    """A route's template as OpenAPI writes it: "/files/{p:path}" → "/files/{p}"."""
    return _PATH_PARAM.sub(r"{\1}", template)


def humanize(name: str) -> str:
    """ "get_item" → "Get Item" (a handler's name as an operation's summary)."""
    return " ".join(w[:1].upper() + w[1:] for w in name.replace("_", " ").split())


def _documented(ep: Endpoint) -> bool:
    route = ep.route
    return route.include_in_schema and (route.constant is not None or ep.sig is not None)


# ---- operations ----


def _operation(ep: Endpoint, method: str, types: _Types, operation_ids: _OperationIds) -> dict[str, Any]:
    route, sig = ep.route, ep.sig
    if route.constant is not None:
        return _constant_operation(ep, method, operation_ids)
    op: dict[str, Any] = {}
    tags = list(dict.fromkeys(route.tags))  # a router's and its includer's tags may repeat
    if tags:
        op["tags"] = tags
    op["summary"] = route.summary or humanize(route.name or sig.func.__name__)
    description = route.description or inspect.getdoc(sig.func)
    if description:
        op["description"] = description
    op["operationId"] = operation_ids.make(ep, method)

    params = [p for p in _unique(sig.all_parameters()) if _shown(p)]
    wire = [_parameter(p, types) for p in params if p.kind in _WIRE_KINDS]
    if wire:
        op["parameters"] = wire
    body = _request_body(sig, params, types)
    if body is not None:
        op["requestBody"] = body
    op["responses"] = _responses(ep, bool(sig.all_parameters()), types)
    if route.deprecated:
        op["deprecated"] = True
    if ep.auth is not None and ep.auth.schemes:
        op["security"] = [{scheme.openapi_name: []} for scheme in ep.auth.schemes]
    return op


def _constant_operation(ep: Endpoint, method: str, operation_ids: _OperationIds) -> dict[str, Any]:
    """A constant route documented on purpose (api.health): its fixed answer, as an example."""
    route = ep.route
    body, content_type = route.constant
    op: dict[str, Any] = {}
    if route.tags:
        op["tags"] = list(dict.fromkeys(route.tags))
    op["summary"] = route.summary or humanize(route.name or "constant")
    op["description"] = route.description or "Answered by the server in C, without Python."
    op["operationId"] = operation_ids.make(ep, method)
    media: dict[str, Any] = {}
    try:
        media["example"] = msgspec.json.decode(body) if content_type.startswith("application/json") else body.decode()
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    op["responses"] = {str(route.status): {"description": _phrase(route.status), "content": {content_type: media}}}
    return op


def _security_schemes(endpoints: list[Endpoint]) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    for ep in endpoints:
        for scheme in ep.auth.schemes if ep.auth is not None else ():
            schemes.setdefault(scheme.openapi_name, scheme.openapi_scheme())
    return schemes


def _unique(params: list[Parameter]) -> list[Parameter]:
    """The parameters once each: a dependency may read the same one as the handler."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in params:
        key = (p.kind, p.alias)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _shown(p: Parameter) -> bool:
    return not (isinstance(p.marker, Param) and not p.marker.include_in_schema)


def _parameter(p: Parameter, types: _Types) -> dict[str, Any]:
    marker = p.marker if isinstance(p.marker, Param) else None
    # A header's wire name is kept in lower case for the lookup; the alias as
    # written ("X-Request-ID") reads better in the docs.
    name = marker.alias if p.kind == "header" and marker and marker.alias else p.alias
    out: dict[str, Any] = {"name": name, "in": p.kind, "required": p.kind == "path" or p.required}
    if marker and marker.description:
        out["description"] = marker.description
    if marker and marker.deprecated:
        out["deprecated"] = True
    out["schema"] = types.schema(p.annotation, default=p.default, examples=marker.examples if marker else None)
    return out


class _OperationIds:
    """operationId: `operation_id=` or the handler's name (with the method when
    a route has several), and "_2", "_3", ... when that is taken already."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def make(self, ep: Endpoint, method: str) -> str:
        route = ep.route
        base = route.operation_id or route.name or ep.sig.func.__name__
        if len(route.methods) > 1:
            base = f"{base}_{method.lower()}"
        op_id, n = base, 1
        while op_id in self.taken:
            n += 1
            op_id = f"{base}_{n}"
        if op_id != base and route.operation_id:
            logger.warning("operation_id %r is used by more than one route; %s is documented as %r", base, ep, op_id)
        self.taken.add(op_id)
        return op_id


# ---- request bodies ----


def _request_body(sig: Signature, params: list[Parameter], types: _Types) -> dict[str, Any] | None:
    bodies = _body_params(sig)
    if bodies:
        bodies = [p for p in bodies if _shown(p)]
        if not bodies:
            return None
        marker = bodies[0].marker if isinstance(bodies[0].marker, Body) else None
        if len(bodies) == 1 and not bodies[0].embed:
            # The whole body is this parameter's value.
            schema = types.schema(bodies[0].annotation)
        else:
            schema = _object_schema(bodies, lambda p: _member(p, types))
        out: dict[str, Any] = {}
        if len(bodies) == 1 and marker and marker.description:
            out["description"] = marker.description
        media_type = marker.media_type if marker else "application/json"
        out["content"] = {media_type: {"schema": schema}}
        out["required"] = any(p.required for p in bodies)
        return out

    form = [p for p in params if p.kind in ("form", "file")]
    if not form:
        return None
    schema = _object_schema(form, lambda p: _form_field(p, types))
    has_files = any(p.kind == "file" for p in form)
    content = {"multipart/form-data": {"schema": schema}}
    if not has_files:  # Django's parser reads both encodings of a form without files
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    return {"content": content, "required": any(p.required for p in form)}


def _body_params(sig: Signature) -> list[Parameter]:
    """The parameters that read the JSON body: the handler's own, or else
    the first dependency's that has some (each of them decodes the same body)."""
    if sig.bodies:
        return sig.bodies
    for dep in [*(p.dependency for p in sig.depends), *sig.extra_dependencies]:
        found = _body_params(dep)
        if found:
            return found
    return []


def _object_schema(params: list[Parameter], member) -> dict[str, Any]:
    properties = {p.alias: member(p) for p in params}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.alias for p in params if p.required]
    if required:
        schema["required"] = required
    return schema


def _form_field(p: Parameter, types: _Types) -> dict[str, Any]:
    if is_upload(p.annotation):
        return {"type": "array", "items": dict(_BINARY)} if is_sequence(p.annotation) else dict(_BINARY)
    return _member(p, types)


def _member(p: Parameter, types: _Types) -> dict[str, Any]:
    """The schema of a member of an object body (embedded JSON, or a form)."""
    marker = p.marker if isinstance(p.marker, Param) else None
    return types.schema(p.annotation, default=p.default, description=marker.description if marker else None)


# ---- responses ----


def _responses(ep: Endpoint, reads_request: bool, types: _Types) -> dict[str, Any]:
    route = ep.route
    status = route.status
    responses: dict[str, Any] = {str(status): _success(ep, types)}
    if reads_request:
        responses["422"] = {
            "description": "Validation Error",
            "content": {"application/json": {"schema": types.schema(HTTPValidationError)}},
        }
    limits = [*ep.api.rate_limit, *route.rate_limit]
    if limits:
        responses["429"] = _rate_limited(limits, types)
    for code, spec in route.responses.items():
        key = str(code).upper()
        if key == str(status) and (spec is None or isinstance(spec, str)):
            # Only a description for the route's own status: its schema stays.
            if spec:
                responses[key]["description"] = spec
            continue
        responses["default" if key == "DEFAULT" else key] = _declared_response(key, spec, types)
    return responses


def _rate_limited(limits: list, types: _Types) -> dict[str, Any]:
    """429 of a rate-limited route (meltemi/api/ratelimit.py): its limits, and the fields the answer carries."""
    rules = "; ".join(f"{limit.policy}: {limit.count} per {limit.period} s" for limit in limits)
    integer = {"type": "integer", "minimum": 1}
    text = {"type": "string"}
    return {
        "description": f"Too Many Requests ({rules})",
        "headers": {
            "Retry-After": {"description": "Seconds until a request would be allowed", "schema": integer},
            "RateLimit-Policy": {"description": "The route's limits (q: quota, w: window in seconds)", "schema": text},
            "RateLimit": {"description": "The refusing limit (r: remaining, t: seconds to reset)", "schema": text},
        },
        "content": {"application/json": {"schema": types.schema(HTTPError)}},
    }


def _success(ep: Endpoint, types: _Types) -> dict[str, Any]:
    status = ep.route.status
    out: dict[str, Any] = {"description": _phrase(status)}
    if status in _NO_BODY:
        return out
    rt = ep.response_type
    if rt is not None:
        out["content"] = _content(rt, types)
        return out
    declared = ep.route.response_model if ep.route.response_model is not MISSING else ep.sig.return_annotation
    if isinstance(declared, type) and issubclass(declared, Response):
        # A Response class says its media type, not the shape of its body.
        if declared.media_type:
            out["content"] = {declared.media_type: {}}
        return out
    if declared in (None, type(None)):
        return out
    if declared is inspect.Signature.empty or declared is Any:
        # Not declared: anything msgspec encodes, as JSON.
        out["content"] = {"application/json": {"schema": {}}}
    return out  # a Django HttpResponse: nothing known about it


def _declared_response(key: str, spec: Any, types: _Types) -> dict[str, Any]:
    """`key` is a status ("404"), a range ("4XX") or "DEFAULT"."""
    status = int(key) if key.isdigit() else None
    out: dict[str, Any] = {"description": _phrase(status) if status else "Error"}
    is_error = key[0] in "45" or key == "DEFAULT"
    error_body = {"application/json": {"schema": types.schema(HTTPError)}} if is_error else None
    if spec is None or isinstance(spec, str):
        if spec:
            out["description"] = spec
        if error_body:
            out["content"] = error_body
    elif isinstance(spec, dict):
        spec = dict(spec)
        model = spec.pop("model", None)
        if model is not None:
            out["content"] = _content(model, types)
        elif error_body and "content" not in spec:
            out["content"] = error_body
        out.update(spec)
    else:
        out["content"] = _content(spec, types)
    return out


def _content(tp: Any, types: _Types) -> dict[str, Any]:
    """A response body of type `tp`, as Endpoint.render sends it."""
    if tp is bytes:
        # Sent as they are, not as JSON's base64 string.
        return {"application/octet-stream": {"schema": dict(_BINARY)}}
    if tp is str:
        return {"text/plain": {"schema": {"type": "string"}}}
    return {"application/json": {"schema": types.schema(tp)}}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


# ---- schemas ----


class _Types:
    """The JSON Schemas of the document's types, made in one call to
    `msgspec.json.schema_components` at the end: `schema(tp)` hands out a
    placeholder dict now and fills it in `resolve()`."""

    def __init__(self) -> None:
        self._types: list[Any] = []
        self._index: dict[Any, int] = {}
        self._pending: list[tuple[dict[str, Any], int, dict[str, Any]]] = []

    def schema(
        self, tp: Any, default: Any = MISSING, examples: list[Any] | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """The schema of `tp` (filled in by resolve()), with the given keywords beside it."""
        extra: dict[str, Any] = {}
        if description:
            extra["description"] = description
        if default is not MISSING:
            try:
                extra["default"] = msgspec.to_builtins(default)
            except (TypeError, msgspec.EncodeError):
                pass  # a default that JSON cannot show is left out
        if examples:
            extra["examples"] = msgspec.to_builtins(examples)
        try:
            index = self._index.get(tp)
        except TypeError:  # an unhashable annotation (Annotated with a list, say)
            index = None
        if index is None:
            index = len(self._types)
            self._types.append(tp)
            try:
                self._index[tp] = index
            except TypeError:
                pass
        placeholder: dict[str, Any] = {}
        self._pending.append((placeholder, index, extra))
        return placeholder

    def resolve(self) -> dict[str, Any]:
        """Fills the placeholders; returns the components' schemas."""
        schemas, components = self._generate()
        for placeholder, index, extra in self._pending:
            schema = dict(schemas[index])
            # JSON Schema 2020-12 (OpenAPI 3.1) allows keywords beside a
            # $ref, so a default is added as it is, not wrapped in allOf.
            schema.update(extra)
            placeholder.update(schema)
        return dict(sorted(components.items()))

    def _generate(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        try:
            schemas, components = msgspec.json.schema_components(self._types, ref_template=_REF)
            return list(schemas), components
        except TypeError:
            pass
        # Some type has no JSON Schema (a custom class, say). It is found by
        # trying each alone, described as any value, and the rest made together.
        known = []
        for tp in self._types:
            try:
                msgspec.json.schema(tp)
                known.append(True)
            except TypeError as exc:
                logger.warning("OpenAPI: %s; documented as any value", str(exc).splitlines()[-1])
                known.append(False)
        kept = [tp for tp, ok in zip(self._types, known, strict=True) if ok]
        made, components = msgspec.json.schema_components(kept, ref_template=_REF)
        it = iter(made)
        return [next(it) if ok else {} for ok in known], components
