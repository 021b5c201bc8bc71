"""The request object a handler receives as its first argument."""

from __future__ import annotations

from typing import Any

import msgspec

from .. import _core  # noqa: F401  (the C parser of query strings below)
from .._core import parse_query

# The request field that carries the request id (lowercase; option
# request_id_header), set by meltemi.worker.build; "" when request ids are off.
request_id_field = "x-request-id"


def parse_cookies(header: str) -> dict[str, str]:
    """The Cookie field as a dict (the last of repeated names wins), leniently
    like browsers and Django: pairs split at ';', names and values stripped."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        name, eq, value = chunk.partition("=")
        if not eq:
            name, value = "", name
        name, value = name.strip(), value.strip()
        if name or value:
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = value
    return cookies


_UNSET: Any = object()


class State:
    """A place for dependencies and middleware to leave things on a request."""


class Request:
    """One API request: method, path, query, headers, cookies and body, plus
    Django's user and session when those apps are installed.

    Header names are lowercase. Repeated query keys are lists in `query`
    (`query_params` has the last value of each)."""

    __slots__ = (
        "method",
        "path",
        "query_string",
        "headers",
        "path_params",
        "_input",
        "_body",
        "_query",
        "_cookies",
        "_user",
        "_session",
        "_state",
        "_cache",
        "_cleanups",
        "_django",
        "_auth",
        "_auth_scheme",
        "_auth_claims",
        "auth_subject",
    )

    def __init__(self, method: str, path: str, query_string: str, headers: dict[str, str], input: Any):
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.path_params: dict[str, Any] = {}
        self._input = input
        self._body: bytes | None = None
        self._query: dict[str, Any] | None = None
        self._cookies: dict[str, str] | None = None
        self._user = None
        self._session = None
        self._state = None
        self._cache: dict[Any, Any] | None = None
        self._cleanups: list[Any] | None = None
        self._django = None
        self._auth: Any = _UNSET
        self._auth_scheme = None
        self._auth_claims: bytes | None = None
        # The verified subject: a JWT's sub, an API key's name (None: none).
        self.auth_subject: str | None = None

    @property
    def request_id(self) -> str | None:
        """The request's id (option `request_id_header`): the client's when it
        sent a sane one, else the one the server generated; the response
        carries the same. None when request ids are off."""
        return self.headers.get(request_id_field) if request_id_field else None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"

    @property
    def query(self) -> dict[str, str | list[str]]:
        if self._query is None:
            self._query = parse_query(self.query_string) if self.query_string else {}
        return self._query

    @property
    def query_params(self) -> dict[str, str]:
        return {k: v[-1] if isinstance(v, list) else v for k, v in self.query.items()}

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            header = self.headers.get("cookie")
            self._cookies = parse_cookies(header) if header else {}
        return self._cookies

    @property
    def content_type(self) -> str:
        """The media type of the body, lowercase, without parameters."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    @property
    def body(self) -> bytes:
        """The whole request body (read once, on first use)."""
        if self._body is None:
            self._body = self._input.read() if self._input is not None else b""
        return self._body

    def json(self, type: Any = Any) -> Any:
        """The body decoded as JSON (and validated into `type`)."""
        return msgspec.json.decode(self.body, type=type)

    @property
    def state(self) -> State:
        if self._state is None:
            self._state = State()
        return self._state

    @property
    def session(self):
        """Django's session of the request's session cookie (a SessionStore)."""
        if self._session is None:
            from importlib import import_module

            from django.conf import settings

            engine = import_module(settings.SESSION_ENGINE)
            self._session = engine.SessionStore(self.cookies.get(settings.SESSION_COOKIE_NAME))
        return self._session

    @property
    def auth(self) -> Any:
        """What the route's authentication accepted (docs/api.md): a JWT's
        claims (dict), an API key's name, the session's user; None when the
        route has no authentication."""
        if self._auth is _UNSET:
            scheme = self._auth_scheme
            self._auth = scheme.auth_value(self._auth_claims, self.auth_subject) if scheme is not None else None
        return self._auth

    @property
    def auth_scheme(self) -> Any:
        """The scheme (JWTAuth, APIKeyAuth, SessionAuth, ...) that accepted the request, or None."""
        return self._auth_scheme

    @property
    def auth_claims(self) -> bytes | None:
        """A verified JWT's claims as the JSON it signed (None without one)."""
        return self._auth_claims

    @property
    def user(self):
        """The Django user: the one of the token's sub (JWTAuth), else of the
        session cookie (AnonymousUser without one); resolved on first use."""
        if self._user is None:
            scheme = self._auth_scheme
            if scheme is not None:
                self._user = scheme.get_user(self)
            else:
                from django.contrib.auth import get_user

                self._user = get_user(self)
        return self._user

    @user.setter
    def user(self, value) -> None:
        self._user = value

    @property
    def META(self) -> dict[str, str]:
        """Django-style request metadata (HTTP_* keys), for code that expects it."""
        meta = {"REQUEST_METHOD": self.method, "PATH_INFO": self.path, "QUERY_STRING": self.query_string}
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                meta[key] = value
            else:
                meta["HTTP_" + key] = value
        return meta

    def django_request(self):
        """An equivalent django.http.HttpRequest (for Django APIs that want one:
        the debug page, `reverse` with a request, permission helpers)."""
        if self._django is None:
            from django.http import HttpRequest

            r = HttpRequest()
            r.method = self.method
            r.path = r.path_info = self.path
            r.META = self.META
            r.COOKIES = self.cookies
            r.user = self.user if self._user is not None else None
            self._django = r
        return self._django

    def add_cleanup(self, fn) -> None:
        """Calls fn() after the response is produced (uploaded files, generator dependencies)."""
        if self._cleanups is None:
            self._cleanups = []
        self._cleanups.append(fn)
