"""Authentication schemes and guards of the typed API.

    from meltemi.api import API
    from meltemi.api.auth import APIKeyAuth, HasClaim, IsStaff, JWTAuth

    jwt = JWTAuth(secret="...", issuer="https://auth.example")
    api = API(auth=jwt)                                # every route, unless it says otherwise

    @api.get("/me")
    def me(request) -> dict:
        return request.auth                            # the token's claims

    @api.get("/admin", guards=[HasClaim("scope", "admin")])   # checked in C
    def admin(request): ...

    @api.get("/staff", guards=[IsStaff()])             # needs the user: Python
    def staff(request): ...

    @api.get("/health", auth=None)                     # opts out
    def health(request): ...

What C decides, before Python is reached (src/python/auth.c): bearer JWTs
(src/core/api/jwt.c), API keys (by SHA-256 hash, in constant time), and the
guards that read only a token's claims (HasClaim). A refusal is a 401 with
WWW-Authenticate or a 403, in the API's ``{"detail": ...}`` shape. What
Python decides: the Django session (SessionAuth, with Django's CSRF check
for unsafe methods) and the guards that need the database (IsStaff,
HasPermission, ...). A list of schemes means any of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.request
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .._core import JWTVerifier
from .errors import HTTPException

logger = logging.getLogger("meltemi.api")

__all__ = [
    "APIKeyAuth",
    "AuthScheme",
    "Guard",
    "HasAllPermissions",
    "HasAnyPermission",
    "HasClaim",
    "HasPermission",
    "IsAuthenticated",
    "IsStaff",
    "IsSuperuser",
    "JWTAuth",
    "SessionAuth",
    "hash_api_key",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class AuthScheme:
    """A way for a request to say who it is. Subclasses decided in C give
    `c_scheme()`; the others implement `authenticate(request)`, which returns
    what becomes ``request.auth`` (None: not authenticated by this scheme)."""

    #: The name of the scheme in the OpenAPI document's securitySchemes.
    openapi_name = "auth"

    def c_scheme(self) -> tuple:
        return ("python",)

    def authenticate(self, request: Any) -> Any:
        return None

    def openapi_scheme(self) -> dict[str, Any]:
        raise NotImplementedError

    def challenge(self) -> str:
        """The WWW-Authenticate value of a 401."""
        return ""

    def auth_value(self, claims: bytes | None, subject: str | None) -> Any:
        """``request.auth`` when C accepted the request with this scheme."""
        return subject

    def get_user(self, request: Any) -> Any:
        """``request.user`` for a request this scheme accepted: what
        `authenticate` returned when that is a user, else AnonymousUser."""
        if hasattr(request.auth, "is_authenticated"):
            return request.auth
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()


# ---- JWT ----


class JWTAuth(AuthScheme):
    """Bearer JSON Web Tokens, verified in C.

    Keys (one or more of):

    - ``secret``: the HMAC secret (str or bytes) for ``algorithm`` HS256, HS384
      or HS512; the default, when no key is given at all, is Django's SECRET_KEY.
    - ``public_key``: a PEM public key or certificate (text, or a path to a
      file) for RS*, PS*, ES* or EdDSA.
    - ``jwks``: a JWK Set, as a dict or the path of a JSON file.
    - ``jwks_url``: a JWK Set fetched over HTTP when the API is loaded and every
      ``jwks_refresh`` seconds after (in a thread: never on a request's path);
      a fetch that fails keeps the keys in place and is logged.

    Each key is pinned to one algorithm (``algorithm``, or a JWK's ``alg``,
    or what an EC or OKP key implies): a token naming another is refused, so
    ``alg: none`` and an RS256 -> HS256 swap cannot pass.

    Checks: ``exp``, ``nbf`` and ``iat`` with ``leeway`` seconds, ``issuer``
    and ``audience`` (a str or a list: any of them), ``require_exp``, and
    ``max_length`` (the longest token; longer is a 401).

    ``request.auth`` is the token's claims (a dict); ``request.user`` the
    Django user whose ``user_field`` (default ``pk``) is the ``sub`` claim,
    looked up on first use (AnonymousUser when there is none).
    """

    openapi_name = "bearerAuth"

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        algorithm: str = "HS256",
        public_key: str | bytes | os.PathLike | None = None,
        kid: str | None = None,
        jwks: Mapping[str, Any] | str | os.PathLike | None = None,
        jwks_url: str | None = None,
        jwks_refresh: float = 300.0,
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: int = 0,
        require_exp: bool = False,
        max_length: int = 8192,
        user_field: str = "pk",
        scheme_name: str | None = None,
    ):
        self.algorithm = algorithm
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._public_key = public_key
        self._kid = kid
        self._jwks = jwks
        self.jwks_url = jwks_url
        self.jwks_refresh = jwks_refresh
        self.issuers = [issuer] if isinstance(issuer, str) else list(issuer or [])
        self.audiences = [audience] if isinstance(audience, str) else list(audience or [])
        self.user_field = user_field
        if scheme_name:
            self.openapi_name = scheme_name
        self.verifier = JWTVerifier(
            issuers=self.issuers,
            audiences=self.audiences,
            leeway=int(leeway),
            require_exp=require_exp,
            max_len=max_length,
        )
        self._loaded = False
        self._pid = 0  # the process whose refresh thread runs (a fork has none)
        self._lock = threading.Lock()
        self._jwks_keys: list[tuple] = []
        self._refresher: threading.Thread | None = None

    # ---- keys ----

    def _static_keys(self) -> list[tuple]:
        keys: list[tuple] = []
        secret = self._secret
        if secret is None and self._public_key is None and self._jwks is None and self.jwks_url is None:
            from django.conf import settings

            secret = settings.SECRET_KEY.encode()
        if secret is not None:
            keys.append(("secret", self.algorithm, self._kid, secret))
        if self._public_key is not None:
            keys.append(("pem", self.algorithm, self._kid, _read_pem(self._public_key)))
        if self._jwks is not None:
            jwks = self._jwks
            if not isinstance(jwks, Mapping):
                with open(jwks, "rb") as f:
                    jwks = json.load(f)
            keys.extend(self._jwk_entries(jwks))
        return keys

    def _jwk_entries(self, jwks: Mapping[str, Any]) -> list[tuple]:
        entries = []
        for jwk in jwks.get("keys", []):
            if jwk.get("use", "sig") != "sig":
                continue
            alg = jwk.get("alg") or (self.algorithm if jwk.get("kty") in ("RSA", "oct") else None)
            entries.append(("jwk", alg, None, json.dumps(jwk).encode()))
        return entries

    def load_keys(self) -> None:
        """Hands the keys to C (at the API's compile; again after each JWKS fetch)."""
        with self._lock:
            if self.jwks_url and (not self._loaded or self._pid != os.getpid()):
                self._fetch_jwks(raise_errors=not self._loaded)
            self.verifier.set_keys(self._static_keys() + self._jwks_keys)
            self._loaded = True
            if self.jwks_url and self.jwks_refresh > 0 and self._pid != os.getpid():
                self._pid = os.getpid()
                self._refresher = threading.Thread(
                    target=_refresh_loop, args=(weakref.ref(self),), name="meltemi-jwks", daemon=True
                )
                self._refresher.start()

    def _fetch_jwks(self, raise_errors: bool) -> None:
        try:
            with urllib.request.urlopen(self.jwks_url, timeout=10) as r:
                jwks = json.loads(r.read())
            self._jwks_keys = self._jwk_entries(jwks)
        except Exception as exc:
            if raise_errors:
                raise RuntimeError(f"cannot fetch the JWKS at {self.jwks_url}: {exc}") from exc
            logger.warning("JWKS refresh from %s failed, keeping the current keys: %s", self.jwks_url, exc)

    def refresh(self) -> None:
        """Fetches the JWKS again and swaps the keys (what the refresh thread does)."""
        with self._lock:
            self._fetch_jwks(raise_errors=False)
            self.verifier.set_keys(self._static_keys() + self._jwks_keys)

    def c_scheme(self) -> tuple:
        if not self._loaded or (self.jwks_url and self._pid != os.getpid()):
            self.load_keys()
        return ("jwt", self.verifier)

    # ---- tokens ----

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token (ValueError with the reason otherwise): the check C makes."""
        if not self._loaded:
            self.load_keys()
        claims, _ = self.verifier.verify(token)
        return msgspec.json.decode(claims)

    def encode(self, claims: Mapping[str, Any], *, expires_in: int | None = None) -> str:
        """A token signed with the HMAC secret (HS256/384/512 only): for a
        project's own token endpoint and for tests."""
        if not self.algorithm.startswith("HS"):
            raise ValueError("encode() signs with the HMAC secret: an HS256, HS384 or HS512 JWTAuth")
        secret = self._secret
        if secret is None:
            from django.conf import settings

            secret = settings.SECRET_KEY.encode()
        claims = dict(claims)
        if expires_in is not None:
            now = int(time.time())
            claims.setdefault("iat", now)
            claims["exp"] = now + expires_in
        if self.issuers and "iss" not in claims:
            claims["iss"] = self.issuers[0]
        if self.audiences and "aud" not in claims:
            claims["aud"] = self.audiences[0]
        header = {"alg": self.algorithm, "typ": "JWT"}
        if self._kid:
            header["kid"] = self._kid
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(msgspec.json.encode(claims))
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[self.algorithm]
        sig = hmac.new(secret, signing_input.encode(), digest).digest()
        return signing_input + "." + _b64url(sig)

    # ---- the request ----

    def auth_value(self, claims: bytes | None, subject: str | None) -> Any:
        return msgspec.json.decode(claims) if claims else {}

    def get_user(self, request: Any) -> Any:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        sub = request.auth_subject
        if sub is None:
            return AnonymousUser()
        model = get_user_model()
        try:
            return model._default_manager.get(**{self.user_field: sub})
        except (model.DoesNotExist, ValueError, TypeError):
            return AnonymousUser()

    def challenge(self) -> str:
        return "Bearer"

    def openapi_scheme(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def _refresh_loop(ref: weakref.ref) -> None:
    while True:
        auth = ref()
        if auth is None:
            return
        interval = auth.jwks_refresh
        del auth
        time.sleep(interval)
        auth = ref()
        if auth is None:
            return
        auth.refresh()
        del auth


def _read_pem(key: str | bytes | os.PathLike) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        return key.encode()
    with open(key, "rb") as f:
        return f.read()


# ---- API keys ----


def hash_api_key(key: str | bytes) -> str:
    """The SHA-256 of a key, in hex: what APIKeyAuth(hashes=...) takes."""
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).hexdigest()


class APIKeyAuth(AuthScheme):
    """API keys in a header (default ``X-API-Key``) or a query parameter
    (``query="api_key"``), checked in C. The keys are kept only as SHA-256
    hashes and compared in constant time; give them as ``keys={name: key}``
    or, better for settings, ``hashes={name: hash_api_key(key)}``.
    ``request.auth`` and ``request.auth_subject`` are the key's name."""

    openapi_name = "apiKeyAuth"

    def __init__(
        self,
        keys: Mapping[str, str | bytes] | None = None,
        *,
        hashes: Mapping[str, str] | None = None,
        header: str | None = "X-API-Key",
        query: str | None = None,
        scheme_name: str | None = None,
    ):
        if query is not None:
            header = None
        if (header is None) == (query is None):
            raise ValueError("an APIKeyAuth reads a header or a query parameter")
        self.header = header
        self.query = query
        self._hashes: list[tuple[str, bytes]] = []
        for name, key in (keys or {}).items():
            self._hashes.append((name, bytes.fromhex(hash_api_key(key))))
        for name, digest in (hashes or {}).items():
            raw = bytes.fromhex(digest)
            if len(raw) != 32:
                raise ValueError(f"API key {name!r}: a hash is 64 hex digits of SHA-256")
            self._hashes.append((name, raw))
        if not self._hashes:
            raise ValueError("an APIKeyAuth needs at least one key")
        self.openapi_name = scheme_name or ("apiKeyHeader" if header else "apiKeyQuery")

    def c_scheme(self) -> tuple:
        if self.header:
            return ("header", self.header, list(self._hashes))
        return ("query", self.query, list(self._hashes))

    def challenge(self) -> str:
        where = f'header="{self.header}"' if self.header else f'query="{self.query}"'
        return f"APIKey {where}"

    def openapi_scheme(self) -> dict[str, Any]:
        if self.header:
            return {"type": "apiKey", "in": "header", "name": self.header}
        return {"type": "apiKey", "in": "query", "name": self.query}


# ---- the Django session ----


class SessionAuth(AuthScheme):
    """The Django session (its cookie), as Django's own views see it; unsafe
    methods (POST, PUT, PATCH, DELETE) must pass Django's CSRF check
    (CsrfViewMiddleware: Origin, then Referer over HTTPS, then the token of
    the X-CSRFToken field against the CSRF cookie), else 403.
    ``request.auth`` is the user."""

    openapi_name = "sessionAuth"

    def __init__(self, csrf: bool = True):
        self.csrf = csrf

    def authenticate(self, request: Any) -> Any:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return None
        if self.csrf and request.method not in _SAFE_METHODS:
            _check_csrf(request)
        return user

    def challenge(self) -> str:
        return ""

    def openapi_scheme(self) -> dict[str, Any]:
        from django.conf import settings

        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


def _check_csrf(request: Any) -> None:
    from django.middleware.csrf import CsrfViewMiddleware

    dj = request.django_request()
    middleware = CsrfViewMiddleware(lambda r: None)
    rejected = middleware.process_view(dj, None, (), {})
    if rejected is not None:
        reason = getattr(rejected, "reason_phrase", "")
        raise HTTPException(403, "CSRF Failed" + (f": {reason}" if reason and reason != "Forbidden" else ""))


# ---- guards ----


class Guard:
    """A condition on an authenticated request. `claim()` is its C form (a
    claim requirement) when it reads only the token's claims; otherwise
    `check(request)` decides in Python."""

    status = 403
    detail = "Permission denied"

    def claim(self) -> tuple[str, str | None] | None:
        return None

    def check(self, request: Any) -> bool:
        raise NotImplementedError


class IsAuthenticated(Guard):
    """The request is authenticated: by the route's auth, or (a route without
    one) by the Django session. 401 otherwise."""

    status = 401
    detail = "Not authenticated"

    def check(self, request: Any) -> bool:
        if request.auth_scheme is not None:
            return True
        return bool(getattr(request.user, "is_authenticated", False))


class IsStaff(Guard):
    def check(self, request: Any) -> bool:
        user = request.user
        return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


class IsSuperuser(Guard):
    def check(self, request: Any) -> bool:
        user = request.user
        return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


class HasPermission(Guard):
    """The user has a Django permission ("app_label.codename")."""

    def __init__(self, perm: str):
        self.perm = perm

    def check(self, request: Any) -> bool:
        return bool(request.user.has_perm(self.perm))


class HasAnyPermission(Guard):
    def __init__(self, *perms: str):
        self.perms = perms

    def check(self, request: Any) -> bool:
        user = request.user
        return any(user.has_perm(p) for p in self.perms)


class HasAllPermissions(Guard):
    def __init__(self, *perms: str):
        self.perms = perms

    def check(self, request: Any) -> bool:
        return bool(request.user.has_perms(self.perms))


class HasClaim(Guard):
    """The token has claim `name` (not null or false), equal to `value` when
    given: a string equal to it or with it as one of its space-separated
    words (an OAuth ``scope``), an array holding it, or true for "true".
    Checked in C, before Python; a request not authenticated by a JWT fails it."""

    def __init__(self, name: str, value: str | None = None):
        self.name = name
        self.value = value

    def claim(self) -> tuple[str, str | None]:
        return (self.name, self.value)

    def check(self, request: Any) -> bool:
        claims = request.auth
        if request.auth_claims is None or not isinstance(claims, dict) or self.name not in claims:
            return False
        v = claims[self.name]
        if self.value is None:
            return v is not None and v is not False
        if isinstance(v, str):
            return v == self.value or self.value in v.split(" ")
        if isinstance(v, list):
            return self.value in [x for x in v if isinstance(x, str)]
        return v is True and self.value == "true"


# ---- per route ----


class RouteAuth:
    """A route's schemes (any of) and guards, compiled for C and checked in Python."""

    def __init__(self, schemes: Sequence[AuthScheme], guards: Sequence[Guard]):
        self.schemes = list(schemes)
        self.guards = list(guards)
        self.c_claims = [g.claim() for g in self.guards if g.claim() is not None]
        # Claim guards need a C-verified token; the rest run in Python.
        self.py_guards = [g for g in self.guards if g.claim() is None]
        self.claim_guards = [g for g in self.guards if g.claim() is not None]
        self.python_schemes = [s for s in self.schemes if s.c_scheme()[0] == "python"]

    def c_spec(self) -> tuple | None:
        if not self.schemes and not self.c_claims:
            return None
        challenges = [c for c in (s.challenge() for s in self.schemes) if c]
        schemes = [s.c_scheme() for s in self.schemes]
        return (schemes, [tuple(c) for c in self.c_claims], ", ".join(challenges))

    def challenge(self) -> str:
        return ", ".join(c for c in (s.challenge() for s in self.schemes) if c)

    def authorize(self, request: Any, auth: tuple | None) -> None:
        """Sets request.auth (raising the 401 or 403 C would have written when
        it did not decide), then runs the Python guards."""
        if auth is not None:
            index, claims, subject = auth
            scheme = self.schemes[index]
            request._auth_scheme = scheme
            request._auth_claims = claims
            request.auth_subject = subject
        elif self.schemes:
            for scheme in self.python_schemes:
                value = scheme.authenticate(request)
                if value is not None:
                    request._auth_scheme = scheme
                    request._auth = value
                    break
            else:
                headers = {"WWW-Authenticate": self.challenge()} if self.challenge() else None
                raise HTTPException(401, "Not authenticated", headers)
            # Claim guards, on a request C did not authenticate by a token.
            for g in self.claim_guards:
                if not g.check(request):
                    raise HTTPException(g.status, g.detail)
        for g in self.py_guards:
            if not g.check(request):
                headers = None
                if g.status == 401 and self.challenge():
                    headers = {"WWW-Authenticate": self.challenge()}
                raise HTTPException(g.status, g.detail, headers)


def as_schemes(auth: Any) -> list[AuthScheme]:
    """`auth=` as a list of schemes (None: none; a list: any of them)."""
    if auth is None:
        return []
    items = list(auth) if isinstance(auth, (list, tuple)) else [auth]
    for a in items:
        if not isinstance(a, AuthScheme):
            raise TypeError(f"auth= takes AuthScheme instances (JWTAuth, APIKeyAuth, SessionAuth), not {a!r}")
    return items


def as_guards(guards: Iterable[Any]) -> list[Guard]:
    out = []
    for g in guards:
        if isinstance(g, type) and issubclass(g, Guard):
            g = g()
        if not isinstance(g, Guard):
            raise TypeError(f"guards= takes Guard instances (IsAuthenticated(), HasClaim(...)), not {g!r}")
        out.append(g)
    return out
