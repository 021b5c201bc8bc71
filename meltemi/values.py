"""The value types of meltemi's options (meltemi/config.py declares the options).

A type turns text (from the command line or the environment) or a Python
value (from Django settings) into the value meltemi uses, or raises
ValueError; `config.resolve` turns that into a ConfigError that names the
source. `expected` is what the error message and docs/config.md say a value
must be.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any


class ConfigError(Exception):
    """A configuration value that cannot be used; str() is one line for the user."""


class OutOfRange(ValueError):
    """A well-formed value outside its type's range; args[0] is what was expected, range included."""


class ValueType:
    expected = "a value"
    metavar = "VALUE"

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def coerce(self, value: Any) -> Any:
        """Accepts a value from Django settings: text, or a native Python value."""
        if isinstance(value, str):
            return self.parse(value)
        raise ValueError

    def show(self, value: Any) -> str:
        """The value as a user would write it (for the docs)."""
        return str(value)

    def describe(self) -> str:
        """What is expected, range included (for the docs and for OutOfRange)."""
        return self.expected


class Integer(ValueType):
    metavar = "N"

    def __init__(self, minimum: int = 0, maximum: int | None = None):
        self.minimum = minimum
        self.maximum = maximum
        self.expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if minimum == 0:
            self.expected = "a non-negative integer"
        if maximum is not None:
            self.expected = f"an integer from {minimum} to {maximum}"

    def parse(self, text: str) -> int:
        text = text.strip()
        if not re.fullmatch(r"[+]?\d+", text):
            raise ValueError
        return self.check(int(text))

    def coerce(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return self.check(value)
        return super().coerce(value)

    def check(self, value: int) -> int:
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise ValueError
        return value


class Workers(Integer):
    expected = "a positive integer or 'auto'"

    def __init__(self):
        super().__init__(minimum=1)
        self.expected = Workers.expected
        self.metavar = "N|auto"

    def parse(self, text: str) -> int:
        if text.strip().lower() == "auto":
            return os.cpu_count() or 1
        return super().parse(text)


class Seconds(ValueType):
    metavar = "SECONDS"

    def __init__(self, allow_zero: bool = False, maximum: float | None = None):
        self.allow_zero = allow_zero
        self.maximum = maximum
        self.expected = "a number of seconds >= 0" if allow_zero else "a number of seconds > 0"

    def parse(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError from None
        return self.check(value)

    def coerce(self, value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self.check(float(value))
        return super().coerce(value)

    def check(self, value: float) -> float:
        if not math.isfinite(value) or value < 0 or (value == 0 and not self.allow_zero):
            raise ValueError
        if self.maximum is not None and value > self.maximum:
            raise OutOfRange(self.describe())
        return value

    def show(self, value: float) -> str:
        return f"{value:g}"

    def describe(self) -> str:
        if self.maximum is None:
            return self.expected
        return f"{self.expected} and at most {self.show(self.maximum)}"


class Size(ValueType):
    """A size in bytes, with an optional binary suffix: 16384, 64K, 100M, 1G."""

    expected = "a size in bytes such as 16384, 64K or 100M"
    metavar = "BYTES"
    UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def __init__(self, minimum: int = 1, maximum: int | None = None):
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, text: str) -> int:
        found = re.fullmatch(r"(\d+)\s*([KMG]?)(?:I?B)?", text.strip().upper())
        if not found:
            raise ValueError
        return self.check(int(found.group(1)) * self.UNITS[found.group(2)])

    def coerce(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return self.check(value)
        return super().coerce(value)

    def check(self, value: int) -> int:
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise OutOfRange(self.describe())
        return value

    def describe(self) -> str:
        if self.maximum is None:
            return f"{self.expected}, at least {self.show(self.minimum)}"
        return f"{self.expected}, from {self.show(self.minimum)} to {self.show(self.maximum)}"

    def show(self, value: int) -> str:
        for suffix in ("G", "M", "K"):
            unit = self.UNITS[suffix]
            if value >= unit and value % unit == 0:
                return f"{value // unit}{suffix}"
        return str(value)


class Choice(ValueType):
    def __init__(self, *choices: str):
        self.choices = choices
        self.expected = "one of " + ", ".join(choices)
        self.metavar = "{" + ",".join(choices) + "}"

    def parse(self, text: str) -> str:
        value = text.strip().lower()
        if value not in self.choices:
            raise ValueError
        return value


class Flag(ValueType):
    expected = "a boolean (true/false, yes/no, on/off, 1/0)"
    TRUE = {"1", "true", "yes", "on"}
    FALSE = {"0", "false", "no", "off"}

    def parse(self, text: str) -> bool:
        value = text.strip().lower()
        if value in self.TRUE:
            return True
        if value in self.FALSE:
            return False
        raise ValueError

    def coerce(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        return super().coerce(value)

    def show(self, value: bool) -> str:
        return "on" if value else "off"


@dataclass(frozen=True)
class Address:
    """One address to listen on: TCP (host, port) or a Unix socket path."""

    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Bind(ValueType):
    expected = "HOST:PORT, [IPV6]:PORT or unix:PATH"
    metavar = "ADDRESS"

    def parse(self, text: str) -> Address:
        text = text.strip()
        if text.startswith("unix:"):
            path = text[len("unix:") :]
            if not path:
                raise ValueError
            return Address(path=path)
        found = re.fullmatch(r"\[([0-9A-Fa-f:.%\w]+)\]:(\d+)|([^\s:\[\]/]+):(\d+)", text)
        if not found:
            raise ValueError
        host = found.group(1) or found.group(3)
        port = int(found.group(2) or found.group(4))
        if port > 65535:
            raise ValueError
        return Address(host=host, port=port)

    def show(self, value: Address) -> str:
        return str(value)


class MetricsAddress(Bind):
    """Where the master serves Prometheus metrics: a TCP address, or None (off)."""

    expected = "HOST:PORT, [IPV6]:PORT or 'off'"

    def parse(self, text: str) -> Address | None:  # type: ignore[override]
        if text.strip().lower() in Flag.FALSE:
            return None
        address = super().parse(text)
        if address.is_unix:
            raise ValueError
        return address

    def coerce(self, value: Any) -> Address | None:
        if value is None or value is False:
            return None
        return super().coerce(value)

    def show(self, value: Address | None) -> str:
        return "off" if value is None else str(value)


class AccessLog(ValueType):
    """Where the access log goes: None (off), "-" (standard error) or a file path."""

    expected = "'-' (standard error), a file path, or 'off'"
    metavar = "FILE"

    def parse(self, text: str) -> str | None:
        text = text.strip()
        if not text:
            raise ValueError
        if text.lower() in Flag.FALSE:
            return None
        return text

    def coerce(self, value: Any) -> str | None:
        # In settings, True and False read naturally: True logs to stderr.
        if value is None or value is False:
            return None
        if value is True:
            return "-"
        return super().coerce(value)

    def show(self, value: str | None) -> str:
        return "off" if value is None else value


class FieldName(ValueType):
    """An HTTP field name (a token without '_'), or "" for none. The server drops request fields whose name has
    an '_' (in the WSGI environ they could pose as another field), so such a name could never be read."""

    expected = "an HTTP field name (letters, digits and !#$%&'*+-.^`|~, no '_'), or '' for none"
    metavar = "NAME"

    def parse(self, text: str) -> str:
        text = text.strip()
        if text and not re.fullmatch(r"[!#$%&'*+\-.^`|~0-9A-Za-z]{1,64}", text):
            raise ValueError
        return text

    def show(self, value: str) -> str:
        return value or "''"


class TrustedProxies(ValueType):
    """The peers whose Forwarded / X-Forwarded-* fields are believed: addresses and CIDR ranges (IPv4 or
    IPv6), `unix` (peers on a Unix socket), `*` (everyone); comma- or space-separated. "" or "none": nobody."""

    expected = "addresses or CIDR ranges, 'unix' or '*', separated by commas (or 'none')"
    metavar = "ADDRESSES"

    def parse(self, text: str) -> tuple[str, ...]:
        import ipaddress

        items = [item for item in re.split(r"[,\s]+", text.strip()) if item]
        if items == ["none"]:
            return ()
        networks = []
        for item in items:
            if item in ("*", "unix"):
                networks.append(item)
                continue
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(item) from None
        if len([n for n in networks if n not in ("*", "unix")]) > 64:
            raise OutOfRange("at most 64 addresses or ranges")
        return tuple(networks)

    def coerce(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return self.parse(",".join(value))
        return super().coerce(value)

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value) if value else "none"


class Codings(ValueType):
    """Content codings to offer, in no particular order: "zstd,br,gzip"; "off" for none."""

    expected = "a comma-separated list of zstd, br, gzip, or 'off'"
    metavar = "CODINGS"
    KNOWN = ("zstd", "br", "gzip")

    def parse(self, text: str) -> tuple[str, ...]:
        text = text.strip().lower()
        if text in Flag.FALSE or text == "none":
            return ()
        codings = tuple(item.strip() for item in text.split(",") if item.strip())
        if not codings or any(coding not in self.KNOWN for coding in codings):
            raise ValueError
        return tuple(dict.fromkeys(codings))

    def coerce(self, value: Any) -> tuple[str, ...]:
        if value is False or value is None:
            return ()
        if isinstance(value, list | tuple):
            return self.parse(",".join(str(item) for item in value) or "off")
        return super().coerce(value)

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value) if value else "off"


@dataclass(frozen=True)
class Mount:
    """A URL prefix served from a directory by the C static file handler."""

    prefix: str
    root: str

    def __str__(self) -> str:
        return f"{self.prefix}={self.root}"


class ObjectPath(ValueType):
    expected = "'module:attribute' (or 'module.attribute'), e.g. myproject.api:api"
    metavar = "MODULE:ATTR"

    def parse(self, text: str) -> str | None:
        text = text.strip()
        if not text:
            return None  # none: e.g. to override a setting from the command line
        if ":" not in text and "." in text:
            module, _, attr = text.rpartition(".")
            text = f"{module}:{attr}"
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", text):
            raise ValueError
        return text

    def show(self, value: str | None) -> str:
        return value or ""


class FilePath(ValueType):
    expected = "a file path"
    metavar = "PATH"

    def parse(self, text: str) -> str | None:
        text = text.strip()
        if "\0" in text:
            raise ValueError
        return text or None  # empty: none (to override a setting from the command line)

    def show(self, value: str | None) -> str:
        return value or ""


class Account(ValueType):
    """A user or group of this machine, by name or number; checked when the configuration is read."""

    metavar = "NAME"

    def __init__(self, kind: str):
        self.kind = kind
        self.expected = f"an existing {kind} (name or id)"

    def parse(self, text: str) -> str | None:
        import grp
        import pwd

        text = text.strip()
        if not text:
            return None
        lookup = (pwd.getpwuid, pwd.getpwnam) if self.kind == "user" else (grp.getgrgid, grp.getgrnam)
        try:
            entry = lookup[0](int(text)) if text.isdigit() else lookup[1](text)
        except (KeyError, OverflowError):
            raise ValueError from None
        return entry[0]  # the name

    def show(self, value: str | None) -> str:
        return value or ""


class MountType(ValueType):
    expected = "URL_PREFIX=DIRECTORY (an existing directory), e.g. /static/=staticfiles"
    metavar = "PREFIX=DIR"

    def parse(self, text: str) -> Mount:
        prefix, sep, root = text.strip().partition("=")
        if not sep or not prefix.startswith("/") or not root or not os.path.isdir(root):
            raise ValueError
        if not prefix.endswith("/"):
            prefix += "/"
        return Mount(prefix, os.path.abspath(root))

    def show(self, value: Mount) -> str:
        return str(value)


class CorsPolicy(ValueType):
    """The project-wide CORS policy: `auto`, `off`, or the allowed origins (meltemi/cors.py)."""

    expected = "'auto', 'off', or origins (scheme://host[:port], '*' for any) separated by commas"
    metavar = "{auto,off,ORIGINS}"

    def parse(self, text: str) -> Any:
        from .cors import CORS

        value = text.strip()
        if value.lower() in ("auto", "off"):
            return value.lower()
        origins = [item for item in re.split(r"[,\s]+", value) if item]
        if not origins:
            raise ValueError
        return CORS(allow_origins=tuple(origins))

    def coerce(self, value: Any) -> Any:
        from collections.abc import Mapping

        from .cors import CORS

        if isinstance(value, CORS):
            return value
        if isinstance(value, Mapping):
            return CORS.from_mapping(value)
        if value is False or value is None:
            return "off"
        return super().coerce(value)

    def show(self, value: Any) -> str:
        return value if isinstance(value, str) else repr(value)
