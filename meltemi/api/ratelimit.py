"""Rate limits of the typed API, declared here and enforced in C.

    @api.get("/search", rate_limit=[RateLimit("10/s"), RateLimit("1000/hour", key="header:X-API-Key")])

A limit of N per period lets a key make N requests at once, then one more
every period / N (GCRA). The key is the client's address as the trusted
proxies resolve it (`ip`, the default), a request field (`header:NAME`: an
API key, a tenant id), or the verified token's subject (`sub`, set by the
API's authentication), or what a function of yours returns (`key=fn`, called
with a KeyRequest, holding the GIL). A request that has no value for a limit's key is not
counted by that limit. Limits given to `API(rate_limit=...)` are one budget
per key for all the API's routes; those of a route are its own. A refused
request gets 429 with Retry-After and the RateLimit / RateLimit-Policy
fields, answered in C before Python runs.

Counts are shared by the workers of a machine (src/core/api/ratelimit.c,
memory the master maps before it forks them), or by several machines through
Redis: `API(rate_limit_store=RedisStore("redis://10.0.0.5:6379/0"))`
(src/core/api/redislimit.c). See docs/api.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*")
_FIELD = re.compile(r"[!#$%&'*+\-.^`|~0-9A-Za-z]{1,64}")
_NAME = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")  # a structured-field string without '"' and '\'

# The key kinds the C side knows (src/python/quota.c).
KEY_IP, KEY_HEADER, KEY_SUB, KEY_PYTHON = 0, 1, 2, 3


@dataclass(frozen=True)
class KeyRequest:
    """What a key function sees of a request, before its route runs: the method, the path and query as sent,
    the client's address (as the trusted proxies resolve it) and the headers (lowercase names)."""

    method: str
    path: str
    query: str
    client: str
    headers: dict[str, str]


def _key_caller(fn: Callable[[KeyRequest], Any]) -> Callable[..., bytes | None]:
    """What C calls: fn's result for (method, target, client, headers), as bytes (str is UTF-8) or None."""

    def call(method: str, target: str, client: str, headers: dict[str, str]) -> bytes | None:
        path, _, query = target.partition("?")
        value = fn(KeyRequest(method, path, query, client, headers))
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, str | int):
            return str(value).encode()
        raise TypeError(f"a rate limit key function returns str, bytes, int or None, not {type(value).__name__}")

    return call


@dataclass(frozen=True)
class RateLimit:
    """`rate`: "N/unit" or "N/Munit" (units s, m, h, d, or their names: "10/s", "100/minute", "5/10s").
    `key`: "ip", "sub" or "header:NAME". `name`: the policy's name in the RateLimit fields."""

    rate: str
    key: str | Callable[[KeyRequest], Any] = "ip"
    name: str | None = None
    count: int = field(init=False)
    period: int = field(init=False)  # seconds

    def __post_init__(self):
        m = _RATE.fullmatch(self.rate.lower())
        if not m or m.group(3) not in _UNITS:
            raise ValueError(f"rate limit {self.rate!r}: expected N/unit such as '10/s', '100/minute' or '5/10s'")
        count, every = int(m.group(1)), int(m.group(2) or 1)
        period = every * _UNITS[m.group(3)]
        if not 1 <= count <= 1_000_000_000 or not 1 <= period <= 366 * 86400:
            raise ValueError(f"rate limit {self.rate!r}: 1 to 10^9 requests per 1 s to a year")
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "period", period)
        if callable(self.key):
            if self.name is None:
                raise ValueError("a rate limit with a key function needs a name= (the policy's name)")
        else:
            kind, _, arg = self.key.partition(":")
            if not (self.key in ("ip", "sub") or (kind == "header" and _FIELD.fullmatch(arg))):
                raise ValueError(f"rate limit key {self.key!r}: expected 'ip', 'sub', 'header:NAME' or a function")
        if self.name is not None and not _NAME.fullmatch(self.name):
            raise ValueError(f"rate limit name {self.name!r}: 1 to 64 printable ASCII characters, no '\"' or '\\'")

    @property
    def policy(self) -> str:
        """The name in RateLimit-Policy: given, or made of the key and the rate ("ip-10-per-1s")."""
        return self.name or f"{self.key.replace(':', '-')}-{self.count}-per-{self.period}s"

    def c_spec(self, scope: str) -> tuple[Any, ...]:
        """What the C side takes: (id, name, count, period in ns, key kind, key argument). The id is the same in
        every worker and on every machine for the same scope and limit, so they count together."""
        label = f"{self.key.__module__}.{self.key.__qualname__}" if callable(self.key) else self.key
        digest = hashlib.blake2b(f"{scope}|{self.policy}|{self.count}|{self.period}|{label}".encode(), digest_size=8)
        head = (int.from_bytes(digest.digest(), "little"), self.policy, self.count, self.period * 1_000_000_000)
        if callable(self.key):
            return (*head, KEY_PYTHON, b"", _key_caller(self.key))
        kind, _, arg = self.key.partition(":")
        code = {"ip": KEY_IP, "sub": KEY_SUB, "header": KEY_HEADER}[kind]
        return (*head, code, arg.lower().encode())


def limits_of(value: Any) -> list[RateLimit]:
    """A rate_limit= argument as a list: one RateLimit or a sequence of them."""
    if value is None:
        return []
    items = [value] if isinstance(value, RateLimit) else list(value)
    for item in items:
        if not isinstance(item, RateLimit):
            raise TypeError(f"rate_limit takes RateLimit objects, got {item!r}")
    return items


@dataclass(frozen=True)
class RedisStore:
    """Counts the API's rate limits in Redis, shared by every server that names the same Redis.

    `url`: redis://[:password@]host[:port][/db]. `on_error`: what a request gets when Redis cannot
    decide within `timeout` seconds (down, unreachable, too slow): "allow" (fail open) or "refuse"
    (fail closed: 503 with Retry-After). `pool`: connections per worker. `prefix`: of the keys."""

    url: str = "redis://127.0.0.1:6379/0"
    on_error: str = "allow"
    timeout: float = 0.1
    pool: int = 4
    prefix: str = "meltemi:rl:"

    def __post_init__(self):
        parts = urlsplit(self.url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"RedisStore url {self.url!r}: expected redis://[:password@]host[:port][/db]")
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ValueError(f"RedisStore url {self.url!r}: the database is a number")
        if self.on_error not in ("allow", "refuse"):
            raise ValueError("RedisStore on_error: 'allow' (fail open) or 'refuse' (fail closed)")
        if not 0.001 <= self.timeout <= 60 or not 1 <= self.pool <= 256 or len(self.prefix.encode()) > 128:
            raise ValueError("RedisStore: timeout from 0.001 to 60 s, pool from 1 to 256, prefix up to 128 bytes")

    def c_spec(self) -> tuple[Any, ...]:
        """What the C side takes: ("redis", host, port, password or None, db, timeout in ms, pool,
        fail open, prefix)."""
        parts = urlsplit(self.url)
        password = unquote(parts.password) if parts.password else None
        return (
            "redis",
            parts.hostname,
            parts.port or 6379,
            password,
            int(parts.path.strip("/") or 0),
            max(1, round(self.timeout * 1000)),
            self.pool,
            self.on_error == "allow",
            self.prefix.encode(),
        )
