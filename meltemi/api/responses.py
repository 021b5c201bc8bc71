"""Response classes a handler may return instead of plain data.

A handler's return value becomes the response this way:

- a `Response` (or one of Django's `HttpResponse`) is sent as it is;
- `str` is text/plain, `bytes` application/octet-stream;
- anything else (msgspec Struct, dict, list, dataclass, ...) is JSON encoded
  by msgspec, after `msgspec.convert` to the handler's declared response type.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import msgspec

_json_encode = msgspec.json.Encoder().encode

_status_lines: dict[int, str] = {}


def status_line(status: int) -> str:
    """ "200 OK" for 200; cached, since every response needs one."""
    line = _status_lines.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        if not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status {status}")
        line = _status_lines[status] = f"{status} {phrase}"
    return line


class Response:
    """A body of bytes with a status, a media type, headers and cookies."""

    media_type: str | None = None
    charset = "utf-8"

    def __init__(
        self,
        content: Any = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ):
        self.status = status
        if media_type is not None:
            self.media_type = media_type
        self.headers: dict[str, str] = dict(headers or {})
        self.cookies: SimpleCookie = SimpleCookie()
        self.body = self.render(content)

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if content is None:
            return b""
        raise TypeError(f"{type(self).__name__} content must be bytes or str, not {type(content).__name__}")

    def content_type(self) -> str | None:
        mt = self.media_type
        if mt is not None and mt.startswith("text/") and "charset" not in mt:
            return f"{mt}; charset={self.charset}"
        return mt

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | float | None = None,
        expires: str | datetime | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
    ) -> None:
        """Django's HttpResponse.set_cookie, option for option."""
        from django.http import HttpResponse

        # Django's own implementation, so the corner cases (expires as a
        # datetime, max_age as a timedelta, SameSite values) behave alike.
        helper = HttpResponse.__new__(HttpResponse)
        helper.cookies = self.cookies
        HttpResponse.set_cookie(helper, key, value, max_age, expires, path, domain, secure, httponly, samesite)

    def delete_cookie(self, key: str, path: str = "/", domain: str | None = None, samesite: str | None = None) -> None:
        secure = key.startswith(("__Secure-", "__Host-")) or (samesite or "").lower() == "none"
        self.set_cookie(
            key,
            max_age=0,
            path=path,
            domain=domain,
            secure=secure,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
            samesite=samesite,
        )

    def wsgi_headers(self, length: int | None) -> list[tuple[str, str]]:
        headers = []
        ct = self.content_type()
        if ct is not None and "content-type" not in (k.lower() for k in self.headers):
            headers.append(("Content-Type", ct))
        headers.extend(self.headers.items())
        for morsel in self.cookies.values():
            headers.append(("Set-Cookie", morsel.OutputString()))
        return headers

    def wsgi_body(self, file_wrapper: Any) -> Iterable[bytes]:
        return [self.body]


class JSONResponse(Response):
    """`content` encoded as JSON by msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _json_encode(content)


class HTMLResponse(Response):
    media_type = "text/html"


class PlainTextResponse(Response):
    media_type = "text/plain"


class RedirectResponse(Response):
    """A redirect to `url` (307 by default, which keeps the method)."""

    def __init__(self, url: str, status: int = 307, headers: Mapping[str, str] | None = None):
        super().__init__(b"", status, headers)
        self.headers["Location"] = quote(str(url), safe=":/%#?=@[]!$&'()*+,;")


class StreamingResponse(Response):
    """A body produced by an iterable (a generator, typically) of bytes or
    str, sent as it is produced: chunked, or compressed and flushed per
    chunk. The iterable's close() is called when the response ends, also when
    the client goes away."""

    def __init__(
        self,
        content: Iterable[bytes | str],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ):
        super().__init__(b"", status, headers, media_type)
        self.iterable = content

    def wsgi_body(self, file_wrapper: Any) -> Iterable[bytes]:
        return _Encoded(self.iterable, self.charset)


class _Encoded:
    """An iterable of bytes over one of bytes or str, whose close() reaches the original."""

    def __init__(self, iterable: Iterable[bytes | str], charset: str):
        self._iterable = iterable
        self._it = iter(iterable)
        self._charset = charset

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        chunk = next(self._it)
        return chunk.encode(self._charset) if isinstance(chunk, str) else chunk

    def close(self) -> None:
        close = getattr(self._iterable, "close", None) or getattr(self._it, "close", None)
        if close is not None:
            close()


class FileResponse(Response):
    """A file sent with sendfile(2): `path` (a filesystem path) or an open
    binary file. `filename` and `as_attachment` make Content-Disposition;
    the media type is guessed from the name when not given."""

    def __init__(
        self,
        path: str | os.PathLike | Any,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        filename: str | None = None,
        as_attachment: bool = False,
    ):
        if isinstance(path, (str, os.PathLike)):
            self.file = open(path, "rb")  # noqa: SIM115 - closed by the server when the response ends
            name = os.path.basename(os.fspath(path))
        else:
            self.file = path
            name = os.path.basename(getattr(path, "name", "") or "")
        super().__init__(b"", status, headers, media_type)
        if self.media_type is None:
            guessed, encoding = mimetypes.guess_type(filename or name)
            self.media_type = (
                {"gzip": "application/gzip", "bzip2": "application/x-bzip", "xz": "application/x-xz"}.get(encoding)
                if encoding
                else guessed
            ) or "application/octet-stream"
        try:
            size = os.fstat(self.file.fileno()).st_size - self.file.tell()
            self.headers.setdefault("Content-Length", str(size))
        except (AttributeError, OSError, ValueError):
            pass
        if filename or as_attachment:
            disposition = "attachment" if as_attachment else "inline"
            shown = filename or name
            try:
                shown.encode("ascii")
                escaped = shown.replace("\\", "\\\\").replace('"', '\\"')
                value = f'{disposition}; filename="{escaped}"'
            except UnicodeEncodeError:
                value = f"{disposition}; filename*=utf-8''{quote(shown)}"
            self.headers.setdefault("Content-Disposition", value)

    def content_type(self) -> str | None:
        return self.media_type

    def wsgi_body(self, file_wrapper: Any) -> Iterable[bytes]:
        return file_wrapper(self.file, 64 * 1024)
