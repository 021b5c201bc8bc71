"""CORS policies, decided in C (src/core/http1/cors.c) for every response.

`CORS(...)` is one policy, with the rules of django-cors-headers'
middleware. It is given to a typed API (`API(cors=CORS(...))`) or to the
whole project (the `cors` option in meltemi/config.py). With the option's
default, `auto`, the project's policy is read from django-cors-headers' own
settings (`CORS_ALLOWED_ORIGINS`, ...) when the project has them and its
middleware is no longer in `MIDDLEWARE` (docs/api.md, "CORS").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
DEFAULT_HEADERS = ("accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with")
DEFAULT_MAX_AGE = 86400
MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"

# django-cors-headers' setting -> CORS() keyword; the older names it still reads come second.
DJANGO_SETTINGS = {
    "CORS_ALLOWED_ORIGINS": "allow_origins",
    "CORS_ORIGIN_WHITELIST": "allow_origins",
    "CORS_ALLOWED_ORIGIN_REGEXES": "allow_origin_regexes",
    "CORS_ORIGIN_REGEX_WHITELIST": "allow_origin_regexes",
    "CORS_ALLOW_ALL_ORIGINS": "allow_all_origins",
    "CORS_ORIGIN_ALLOW_ALL": "allow_all_origins",
    "CORS_ALLOW_CREDENTIALS": "allow_credentials",
    "CORS_ALLOW_METHODS": "allow_methods",
    "CORS_ALLOW_HEADERS": "allow_headers",
    "CORS_EXPOSE_HEADERS": "expose_headers",
    "CORS_PREFLIGHT_MAX_AGE": "max_age",
    "CORS_URLS_REGEX": "urls_regex",
    "CORS_ALLOW_PRIVATE_NETWORK": "allow_private_network",
}
OLD_NAMES = frozenset({"CORS_ORIGIN_WHITELIST", "CORS_ORIGIN_REGEX_WHITELIST", "CORS_ORIGIN_ALLOW_ALL"})
# The settings that say which origins are allowed: without any of them a project has no CORS to move over.
ORIGIN_SETTINGS = (
    "CORS_ALLOWED_ORIGINS",
    "CORS_ORIGIN_WHITELIST",
    "CORS_ALLOWED_ORIGIN_REGEXES",
    "CORS_ORIGIN_REGEX_WHITELIST",
    "CORS_ALLOW_ALL_ORIGINS",
    "CORS_ORIGIN_ALLOW_ALL",
)


def _pattern(value: str | re.Pattern) -> str:
    """A pattern for PCRE2 from a Python one: its text, re.IGNORECASE as (?i), Python's \\Z as PCRE2's \\z."""
    text = value.pattern if isinstance(value, re.Pattern) else value
    if not isinstance(text, str):
        raise ValueError(f"a regex is a str or a compiled str pattern, got {value!r}")
    re.compile(text)  # Python's own error first, with its message
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append("\\z" if text[i + 1] == "Z" else text[i : i + 2])
            i += 2
        else:
            out.append(text[i])
            i += 1
    text = "".join(out)
    if isinstance(value, re.Pattern) and value.flags & re.IGNORECASE:
        text = "(?i)" + text
    return text


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{name}: expected a list of str, got {value!r}")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{name}: expected a list of str, got {value!r}")
    return items


@dataclass(frozen=True)
class CORS:
    """A CORS policy: which origins may read responses, and what a preflight answers.

    allow_origins: "scheme://host[:port]" origins (or "null"); ["*"] is allow_all_origins.
    allow_origin_regexes: patterns matched at the start of the Origin (Python's re.match).
    urls_regex: the policy applies to paths this matches at the start (None: every path).
    The other fields are the values of the Access-Control-* response fields.
    """

    allow_origins: tuple[str, ...] = ()
    allow_origin_regexes: tuple[str | re.Pattern, ...] = ()
    allow_all_origins: bool = False
    allow_credentials: bool = False
    allow_methods: tuple[str, ...] = DEFAULT_METHODS
    allow_headers: tuple[str, ...] = DEFAULT_HEADERS
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = DEFAULT_MAX_AGE
    allow_private_network: bool = False
    urls_regex: str | re.Pattern | None = None
    _spec: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origins = _strings("allow_origins", self.allow_origins)
        allow_all = bool(self.allow_all_origins)
        if "*" in origins:
            allow_all = True
            origins = tuple(o for o in origins if o != "*")
        for origin in origins:
            if origin == "null":
                continue
            parts = urlsplit(origin)
            if not parts.scheme or not parts.netloc or parts.path or parts.query or parts.fragment:
                raise ValueError(f"allow_origins: {origin!r} is not an origin (scheme://host[:port], or 'null')")
        regexes = self.allow_origin_regexes
        if isinstance(regexes, str | re.Pattern):
            raise ValueError(f"allow_origin_regexes: expected a list, got {regexes!r}")
        patterns = tuple(_pattern(r) for r in regexes)
        methods = _strings("allow_methods", self.allow_methods)
        headers = _strings("allow_headers", self.allow_headers)
        expose = _strings("expose_headers", self.expose_headers)
        max_age = self.max_age or 0
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
            raise ValueError(f"max_age: expected a non-negative int or None, got {self.max_age!r}")
        for name, items in (("allow_methods", methods), ("allow_headers", headers), ("expose_headers", expose)):
            for item in items:
                if not item or any(ch in item for ch in "\r\n\0,"):
                    raise ValueError(f"{name}: {item!r} is not a field token")
        urls = None if self.urls_regex is None else _pattern(self.urls_regex)
        spec = (
            origins,
            patterns,
            urls,
            allow_all,
            bool(self.allow_credentials),
            bool(self.allow_private_network),
            ", ".join(methods),
            ", ".join(headers),
            ", ".join(expose),
            max_age,
        )
        object.__setattr__(self, "_spec", spec)

    def c_spec(self) -> tuple:
        """The tuple meltemi._core takes (src/python/cors_config.c)."""
        return self._spec

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CORS:
        """From a dict of CORS() keywords or of django-cors-headers' setting names."""
        kwargs: dict[str, Any] = {}
        # The old names first, so that a current name given too wins, as in the middleware.
        for key, value in sorted(values.items(), key=lambda item: item[0] not in OLD_NAMES):
            name = DJANGO_SETTINGS.get(key, key)
            if name not in cls.__dataclass_fields__ or name.startswith("_"):
                raise ValueError(f"unknown CORS setting {key!r}")
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_django_settings(cls, settings: Any) -> CORS | None:
        """The policy django-cors-headers would apply with these settings, or None when they allow no origin."""
        if not any(hasattr(settings, name) for name in ORIGIN_SETTINGS):
            return None
        values = {}
        # The current names first: django-cors-headers reads an old name only when the new one is absent.
        for name in DJANGO_SETTINGS:
            if hasattr(settings, name):
                values.setdefault(DJANGO_SETTINGS[name], getattr(settings, name))
        values.setdefault("urls_regex", r"^.*$")
        return cls(**values)


def project_policy(value: Any) -> CORS | None:
    """The project-wide policy of the `cors` option's value ("auto", "off" or a CORS)."""
    if isinstance(value, CORS):
        return value
    if value != "auto":
        return None
    try:
        from django.conf import settings

        if not settings.configured:
            return None
        if MIDDLEWARE in getattr(settings, "MIDDLEWARE", ()):
            return None  # the middleware still does it: the project has not moved over
        return CORS.from_django_settings(settings)
    except ImportError:
        return None
