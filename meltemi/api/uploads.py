"""Forms: urlencoded and multipart bodies, and uploaded files.

Multipart bodies are parsed by Django's own MultiPartParser with the
project's upload handlers and limits (FILE_UPLOAD_HANDLERS: kept in memory
up to FILE_UPLOAD_MAX_MEMORY_SIZE, spooled to a temporary file above it;
DATA_UPLOAD_MAX_NUMBER_FIELDS, DATA_UPLOAD_MAX_NUMBER_FILES,
DATA_UPLOAD_MAX_MEMORY_SIZE). Temporary files are closed, and so deleted,
when the request ends.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from .errors import HTTPException

if TYPE_CHECKING:
    from .request import Request
    from .signature import FormData


class UploadFile:
    """A file of a multipart form. `file` is a binary file object (in memory
    or a temporary file on disk); `django_file` is Django's UploadedFile, for
    FileField.save() and storage APIs."""

    __slots__ = ("django_file",)

    def __init__(self, django_file: Any):
        self.django_file = django_file

    @property
    def filename(self) -> str:
        return self.django_file.name

    @property
    def content_type(self) -> str:
        return self.django_file.content_type

    @property
    def size(self) -> int:
        return self.django_file.size

    @property
    def file(self) -> Any:
        return self.django_file.file

    def read(self, size: int = -1) -> bytes:
        return self.django_file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.django_file.seek(offset, whence)

    def chunks(self, chunk_size: int | None = None):
        return self.django_file.chunks(chunk_size)

    def close(self) -> None:
        self.django_file.close()

    def __repr__(self) -> str:
        return f"<UploadFile {self.filename!r} {self.content_type} {self.size} bytes>"


def parse_form(request: Request) -> FormData:
    from .._core import parse_query
    from .signature import FormData

    ctype = request.content_type
    if ctype == "application/x-www-form-urlencoded":
        body = request.body
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, "The form is not valid UTF-8") from None
        parsed = parse_query(text) if text else {}
        return FormData({k: v if isinstance(v, list) else [v] for k, v in parsed.items()}, {})
    if ctype == "multipart/form-data":
        return _parse_multipart(request)
    if not request.headers.get("content-type") and not request.body:
        return FormData({}, {})
    raise HTTPException(
        415,
        f"Unsupported media type {ctype!r}: a form must be application/x-www-form-urlencoded or multipart/form-data",
    )


def _parse_multipart(request: Request) -> FormData:
    from django.conf import settings
    from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
    from django.core.files.uploadhandler import load_handler
    from django.http.multipartparser import MultiPartParser, MultiPartParserError

    from .signature import FormData

    body = request.body  # the server bounds it (--max-body-size); chunked bodies have no Content-Length
    meta = {"CONTENT_TYPE": request.headers.get("content-type", ""), "CONTENT_LENGTH": str(len(body))}
    django_request = request.django_request()
    handlers = [load_handler(h, django_request) for h in settings.FILE_UPLOAD_HANDLERS]
    try:
        parser = MultiPartParser(meta, io.BytesIO(body), handlers, "utf-8")
        post, files = parser.parse()
    except RequestDataTooBig as exc:
        raise HTTPException(413, str(exc) or "The form is too large") from None
    except TooManyFieldsSent as exc:
        raise HTTPException(400, str(exc)) from None
    except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
        raise HTTPException(400, f"Malformed multipart body: {exc}") from None
    uploads: dict[str, list[UploadFile]] = {}
    for name in files:
        found = [UploadFile(f) for f in files.getlist(name)]
        uploads[name] = found
        for up in found:
            request.add_cleanup(up.close)
    return FormData({k: post.getlist(k) for k in post}, uploads)
