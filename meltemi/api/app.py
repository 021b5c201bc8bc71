"""The API object and the code that runs for each of its requests.

The C router matches a request, converts its typed path segments and, in
the same GIL hold, calls the route's `Endpoint` with the request's parts.
The endpoint reads the parameters, calls the handler, turns its result into
a status, headers and a body, and hands them to the server as a WSGI
application would (start_response, then an iterable), so compression, HEAD,
keep-alive and sendfile work as for any response.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import msgspec.structs

from ..cors import CORS
from ..django.cycle import request_cycle
from . import aio
from .auth import RouteAuth, as_guards, as_schemes
from .errors import (
    HTTPException,
    ResponseValidationError,
    ValidationError,
    error_type,
    path_error_body,
    split_msgspec_error,
)
from .params import MISSING, Depends
from .ratelimit import RedisStore, limits_of
from .request import Request
from .responses import FileResponse, HTMLResponse, JSONResponse, Response, status_line
from .routing import INHERIT, Route, Router, c_template
from .signature import Signature

logger = logging.getLogger("meltemi.api")

_json_encode = msgspec.json.Encoder().encode
_JSON_HEADERS = [("Content-Type", "application/json")]
_TEXT_HEADERS = [("Content-Type", "text/plain; charset=utf-8")]
_BYTES_HEADERS = [("Content-Type", "application/octet-stream")]
_NO_RETURN = (None, type(None))
# Results that are JSON as they are (no Response, no conversion): the fast path.
_PLAIN_JSON = frozenset({dict, list, int, float, bool, type(None)})


class API(Router):
    """The typed API of a project. Name it in settings
    (``MELTEMI = {"API": "myproject.api.api"}``) or with ``--api``."""

    def __init__(
        self,
        prefix: str = "/api",
        *,
        title: str = "API",
        version: str = "1.0.0",
        description: str | None = None,
        trailing_slash: str = "redirect",
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        scalar_url: str | None = "/scalar",
        dependencies: Sequence[Depends] = (),
        tags: Sequence[str] | None = None,
        servers: list[dict[str, str]] | None = None,
        cors: CORS | None = None,
        auth: Any = INHERIT,
        guards: Sequence[Any] = (),
        rate_limit: Any = None,
        rate_limit_store: RedisStore | None = None,
    ):
        if trailing_slash not in ("redirect", "strict"):
            raise ValueError("trailing_slash is 'redirect' (308 to the other spelling) or 'strict'")
        super().__init__(prefix, tags, dependencies, auth=auth, guards=guards)
        self.title = title
        self.version = version
        self.description = description
        self.trailing_slash = trailing_slash
        self.openapi_url = openapi_url
        self.docs_url = docs_url
        self.redoc_url = redoc_url
        self.scalar_url = scalar_url
        self.servers = servers
        if cors is not None and not isinstance(cors, CORS):
            raise TypeError("cors is a meltemi.CORS")
        # Decided in C for the API's routes (preflights too) where the project's policy does not apply.
        self.cors = cors
        self.rate_limit = limits_of(rate_limit)  # one budget per key across all the routes
        self.rate_limit_store = rate_limit_store  # None: this machine's shared memory
        self.exception_handlers: dict[type[BaseException], Callable[[Request, Any], Any]] = {}
        self._endpoints: list[Endpoint] | None = None
        self._schema: dict | None = None

    def exception_handler(self, exc_class: type[BaseException]):
        """Registers fn(request, exc) -> response for an exception class."""

        def decorator(fn):
            self.exception_handlers[exc_class] = fn
            return fn

        return decorator

    # ---- compiling ----

    def compile(self) -> list[Endpoint]:
        """Checks every route and prepares its endpoint (once; errors name the route)."""
        if self._endpoints is None:
            self._add_docs_routes()
            self._endpoints = [Endpoint(self, route) for route in self.routes]
        return self._endpoints

    def c_routes(self) -> tuple[bool, list[tuple], tuple | None, list[tuple | None], Any]:
        """What meltemi._core.Worker(api=...) takes: (redirect_slash, [(template,
        methods, target, invalid, limits), ...], cors, auth, table), target an Endpoint
        or (status, content type, body), invalid the 422 body per path parameter
        (errors.path_error_body), limits the rate limits' C specs (RateLimit.c_spec),
        cors the API's CORS policy (CORS.c_spec()) or None, auth per route None or
        what src/python/auth.c checks (auth.RouteAuth.c_spec), table the shared
        memory the limits are counted in (None when no route has one)."""
        routes = []
        auth = [ep.auth.c_spec() if ep.auth is not None and not ep.route.constant else None for ep in self.compile()]
        shared = tuple(limit.c_spec("api:" + self.prefix) for limit in self.rate_limit)
        for ep in self.compile():
            target = (ep.route.status, ep.route.constant[1], ep.route.constant[0]) if ep.route.constant else ep
            labels = [seg[1:-1] for seg in ep.template.split("/") if seg.startswith("{")]
            invalid = tuple(path_error_body(n, t) for n, t in zip(ep.path_names, labels, strict=True))
            scope = ep.route.path + " " + ",".join(ep.route.methods)
            limits = shared + tuple(limit.c_spec(scope) for limit in ep.route.rate_limit)
            routes.append((ep.template, list(ep.route.methods), target, invalid, limits))
        table = None
        if any(route[4] for route in routes):
            from ..sharedmem import rate_limit_table

            table = self.rate_limit_store.c_spec() if self.rate_limit_store else rate_limit_table()
        cors = self.cors.c_spec() if self.cors else None
        return self.trailing_slash == "redirect", routes, cors, auth, table

    def _add_docs_routes(self) -> None:
        first = len(self.routes)
        self._add_docs_routes_public()
        for route in self.routes[first:]:
            route.auth, route.guards = None, []  # the documentation stays public

    def _add_docs_routes_public(self) -> None:
        if self.openapi_url:
            api = self

            def openapi(request: Request) -> Response:
                return JSONResponse(api.openapi())

            self.add_route(self.openapi_url, openapi, ("GET",), include_in_schema=False)
        if self.docs_url or self.redoc_url or self.scalar_url:
            from .docs import docs_routes

            docs_routes(self)

    def openapi(self) -> dict:
        """The OpenAPI 3.1 document of the routes."""
        if self._schema is None:
            from .openapi import openapi_schema

            self._schema = openapi_schema(self)
        return self._schema

    # ---- errors ----

    def error_response(self, request: Request, exc: BaseException) -> Response:
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return to_response(handler(request, exc))
        if isinstance(exc, HTTPException):
            return JSONResponse({"detail": exc.detail}, exc.status, exc.headers)
        django = _django_error(exc)
        if django is not None:
            return django
        return self._server_error(request, exc)

    def _server_error(self, request: Request, exc: BaseException) -> Response:
        logger.error("Error handling request %s %s", request.method, request.path, exc_info=exc)
        if _django_debug():
            from django.views.debug import technical_500_response

            try:
                r = technical_500_response(request.django_request(), type(exc), exc, exc.__traceback__)
                return HTMLResponse(r.content, 500)
            except Exception:  # the debug page must not hide the error it reports
                logger.exception("cannot render Django's debug page")
        return JSONResponse({"detail": "Internal Server Error"}, 500)


def _django_error(exc: BaseException) -> Response | None:
    mod = sys.modules.get("django.http")
    if mod is None:
        return None
    from django.core.exceptions import PermissionDenied, SuspiciousOperation
    from django.http import Http404

    if isinstance(exc, Http404):
        return JSONResponse({"detail": str(exc) or "Not Found"}, 404)
    if isinstance(exc, PermissionDenied):
        return JSONResponse({"detail": str(exc) or "Permission denied"}, 403)
    if isinstance(exc, SuspiciousOperation):
        return JSONResponse({"detail": "Bad Request"}, 400)
    return None


def _django_debug() -> bool:
    mod = sys.modules.get("django.conf")
    if mod is None:
        return False
    try:
        return bool(mod.settings.configured and mod.settings.DEBUG)
    except Exception:
        return False


def not_found(environ, start_response):
    """The WSGI application behind an API served alone (`meltemi --api mod:api`)."""
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"detail":"Not Found"}']


def to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(result)


class Endpoint:
    """One route, ready to be called by the C router (see the module's doc)."""

    def __init__(self, api: API, route: Route):
        self.api = api
        self.route = route
        self.sig = None
        if route.func is not None:
            path_names = set(route.path_names)
            self.sig = Signature(route.func, path_names, route.dependencies)
            declared = {p.name for p in self.sig.params}
            for name in path_names:
                if name not in declared:
                    raise TypeError(f"route {route.path!r}: {self.sig.name} has no parameter {name!r}")
        try:
            self.template, self.path_names, self.converters = c_template(route, self.sig)
        except ValueError as exc:
            raise ValueError(f"{exc} ({self.sig.name if self.sig else 'constant route'})") from None
        self.convert_path = any(c is not None for c in self.converters)
        self.response_type = self._response_type()
        self.status = status_line(route.status)
        self.cycle = request_cycle()
        self.loop_cycle = self.cycle.on_loop() if self.cycle is not None else None  # for serve_loop
        self.auth = _route_auth(route)
        if route.websocket:
            self._check_websocket()

    @property
    def is_async(self) -> bool:
        """An `async def` handler: its coroutine runs on the API loop (aio.py)."""
        return self.sig is not None and self.sig.is_async

    @property
    def websocket(self) -> bool:
        """A WebSocket route (Router.websocket): served on the loop after its upgrade was checked."""
        return self.route.websocket

    def _check_websocket(self) -> None:
        sig = self.sig
        if sig.pass_websocket is None:
            raise TypeError(f"WebSocket route {self.route.path!r}: {sig.name} has no parameter annotated WebSocket")
        if not self.on_loop:
            raise TypeError(
                f"WebSocket route {self.route.path!r}: dependencies and Python authentication or guards are not "
                "supported (authentication checked in C is: API keys, JWTs)"
            )
        if sig.bodies or sig.files or sig.has_form:
            raise TypeError(f"WebSocket route {self.route.path!r}: a handshake has no body to read parameters from")

    @property
    def on_loop(self) -> bool:
        """Served on the worker's loop without a handler thread (aio.py): an `async def` handler with no
        dependency and no authentication decided in Python (a dependency or a session lookup is sync code,
        which must not block the loop; those routes await their coroutine from a handler thread)."""
        sig = self.sig
        if sig is None or not sig.is_async or sig.extra_dependencies:
            return False
        if any(p.kind == "depends" for p in sig.params):
            return False
        auth = self.auth
        return auth is None or not (auth.python_schemes or auth.py_guards)

    def __repr__(self) -> str:
        return f"<Endpoint {'|'.join(self.route.methods)} {self.route.path}>"

    def _response_type(self) -> Any:
        rt = self.route.response_model
        if rt is MISSING and self.sig is not None:
            rt = self.sig.return_annotation
        if rt is MISSING or rt is Signature.__init__ or rt in _NO_RETURN:
            return None
        import inspect

        if rt is inspect.Signature.empty or rt is Any:
            return None
        if isinstance(rt, type) and issubclass(rt, Response):
            return None
        try:
            from django.http import HttpResponseBase

            if isinstance(rt, type) and issubclass(rt, HttpResponseBase):
                return None
        except ImportError:
            pass
        return rt

    # The C router calls this with the request's parts (see src/python/api.c).
    def __call__(self, start_response, input, method, path, query, headers, params, auth=None):
        if self.route.websocket:  # served on the worker's loop only (not by TestClient)
            start_response("501 Not Implemented", list(_JSON_HEADERS))
            return [b'{"detail":"WebSocket routes are served by the server, not here"}']
        request = Request(method, path, query, headers, input)
        cycle = self.cycle
        if cycle is not None:
            cycle.started(API)
        streaming = False
        try:
            try:
                if self.auth is not None:
                    self.auth.authorize(request, auth)
                response = self.run(request, params)
            except OSError:
                raise  # the request body could not be read: the server answers 400/408/413
            except Exception as exc:
                response = self.api.error_response(request, exc)
            if isinstance(response, tuple):
                status, headers_out, body = response
            else:
                status, headers_out, body, streaming = _wsgi_parts(response)
            start_response(status, headers_out)
            if streaming:
                return _Finisher(body, request, cycle)
            return body
        finally:
            if not streaming:
                _finish(request, cycle)

    async def serve_loop(self, body, method, path, query, headers, params, auth=None):
        """An `on_loop` route on the worker's loop (aio.py): as __call__, with the body read already and the
        coroutine awaited here. Returns (status, headers, body): body a list of bytes, or an iterable to stream."""
        request = Request(method, path, query, headers, None)
        request._body = body
        cycle = self.loop_cycle
        if cycle is not None:
            cycle.started(API)
        streaming = False
        try:
            try:
                if self.auth is not None:
                    self.auth.authorize(request, auth)
                response = await self.arun(request, params)
            except Exception as exc:
                response = self.api.error_response(request, exc)
            if isinstance(response, tuple):
                return response
            status, headers_out, body, streaming = _wsgi_parts(response)
            if streaming:
                return status, headers_out, _Finisher(body, request, cycle)
            return status, headers_out, body if isinstance(body, list) else list(body)
        finally:
            if not streaming:
                _finish(request, cycle)

    def websocket_call(self, ws, method, path, query, headers, params, auth=None):
        """A WebSocket route's handshake on the loop: (kwargs, None) to run the handler with, or (None,
        (status, headers, body)), the HTTP answer (422, 401/403 of a guard) given instead of the upgrade."""
        request = Request(method, path, query, headers, None)
        request._body = b""
        try:
            if self.auth is not None:
                self.auth.authorize(request, auth)
            kwargs = self.arguments(request, params)
        except Exception as exc:
            response = self.api.error_response(request, exc)
            status, headers_out, body, _ = _wsgi_parts(response)
            return None, (status, headers_out, body if isinstance(body, list) else list(body))
        kwargs[self.sig.pass_websocket] = ws
        return kwargs, None

    def arguments(self, request: Request, params: tuple) -> dict[str, Any]:
        """The handler's keyword arguments: the path values the C router matched (`params`, converted here
        when the route asked for it), then every other source bound and validated (ValidationError: 422)."""
        errors: list[dict[str, Any]] = []
        if params:
            values: dict[str, Any] = dict(zip(self.path_names, params, strict=True))
            if self.convert_path:
                self._convert_path(values, errors)
            request.path_params = values
        else:
            values = request.path_params
        kwargs = self.sig.bind(request, values, errors)
        if errors:
            raise ValidationError(errors)
        return kwargs

    async def arun(self, request: Request, params: tuple) -> Any:
        return self.render(await self.sig.func(**self.arguments(request, params)))

    def run(self, request: Request, params: tuple) -> Any:
        sig = self.sig
        kwargs = self.arguments(request, params)
        if sig.is_async:
            return self.render(aio.run(sig.func(**kwargs)))
        return self.render(sig.func(**kwargs))

    def _convert_path(self, values: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        for name, conv in zip(self.path_names, self.converters, strict=True):
            if conv is None:
                continue
            try:
                values[name] = msgspec.convert(values[name], conv, strict=False)
            except msgspec.ValidationError as exc:
                msg, _ = split_msgspec_error(exc)
                errors.append({"loc": ["path", name], "msg": msg, "type": error_type(msg)})

    def render(self, result: Any) -> Any:
        """The handler's result as (status, headers, body) or a Response."""
        cls = result.__class__
        if cls in _PLAIN_JSON and self.response_type is None:
            return self.status, _JSON_HEADERS, [_json_encode(result)]
        if isinstance(result, Response):
            return result
        rt = self.response_type
        if rt is not None and cls is not rt:
            try:
                result = msgspec.convert(result, rt, from_attributes=True)
            except msgspec.ValidationError as exc:
                raise ResponseValidationError(
                    f"{self.sig.name} returned a value that is not a {_type_name(rt)}: {exc}"
                ) from exc
        if isinstance(result, msgspec.Struct):
            try:
                return self.status, _JSON_HEADERS, [_json_encode(result)]
            except TypeError:
                if rt is None:
                    raise
                # A Struct of the declared type built around other objects
                # (Django model instances in a list field): convert its fields
                # too, by attribute, as for any other result.
                return self.status, _JSON_HEADERS, [_json_encode(self._convert_fields(result, rt))]
        if isinstance(result, str):
            return self.status, _TEXT_HEADERS, [result.encode()]
        if isinstance(result, bytes):
            return self.status, _BYTES_HEADERS, [result]
        if _is_django_response(result):
            return result
        return self.status, _JSON_HEADERS, [_json_encode(result)]

    def _convert_fields(self, result: msgspec.Struct, rt: Any) -> Any:
        try:
            return msgspec.convert(msgspec.structs.asdict(result), rt, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise ResponseValidationError(
                f"{self.sig.name} returned a value that is not a {_type_name(rt)}: {exc}"
            ) from exc


def _route_auth(route: Route) -> RouteAuth | None:
    schemes = as_schemes(None if route.auth is INHERIT else route.auth)
    guards = as_guards(route.guards)
    return RouteAuth(schemes, guards) if schemes or guards else None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _is_django_response(value: Any) -> bool:
    mod = sys.modules.get("django.http")
    return mod is not None and isinstance(value, mod.HttpResponseBase)


def _wsgi_parts(response: Any) -> tuple[str, list[tuple[str, str]], Any, bool]:
    from .._core import FileWrapper

    if isinstance(response, Response):
        body = response.wsgi_body(FileWrapper)
        # A file goes out with sendfile: the server must see the FileWrapper
        # itself, so it is not wrapped (its close() closes the file).
        streaming = not isinstance(body, (list, FileWrapper))
        return status_line(response.status), response.wsgi_headers(None), body, streaming
    # Django's HttpResponse (and its streaming and file kinds), as Django's WSGIHandler sends it.
    headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
    status = f"{response.status_code} {response.reason_phrase}"
    if getattr(response, "file_to_stream", None) is not None:
        return status, headers, FileWrapper(response.file_to_stream, response.block_size), False
    return status, headers, response, True


def _finish(request: Request, cycle) -> None:
    cleanups = request._cleanups
    if cleanups:
        for fn in cleanups:
            try:
                fn()
            except Exception:
                logger.exception("Error cleaning up after %s %s", request.method, request.path)
    if cycle is not None:
        cycle.finished(API)


class _Finisher:
    """A streamed body whose close() ends the request (cleanups, request_finished)."""

    def __init__(self, body, request, cycle):
        self._body = body
        self._it = iter(body)
        self._request = request
        self._cycle = cycle

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def close(self):
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            _finish(self._request, self._cycle)


_ = FileResponse
