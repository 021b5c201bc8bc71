"""meltemi's typed API layer: routes declared with decorators, parameters
read from annotations and validated by msgspec, routed in C.

    from meltemi.api import API

    api = API(prefix="/api")

    @api.get("/items/{item_id}")
    def get_item(request, item_id: int, q: str | None = None) -> Item: ...

See docs/api.md.
"""

from ..cors import CORS
from .app import API, Endpoint
from .errors import HTTPException, ResponseValidationError, ValidationError
from .mounting import NoReverseMatch
from .pagination import (
    CursorPage,
    CursorPagination,
    LimitOffsetPage,
    LimitOffsetPagination,
    Page,
    PageNumberPagination,
    paginate,
)
from .params import Body, Cookie, Depends, File, Form, Header, Path, Query
from .request import Request
from .responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .routing import Router
from .uploads import UploadFile
from .views import APIView, operation
from .viewsets import ModelViewSet, model_struct

__all__ = [
    "API",
    "APIView",
    "CursorPage",
    "CursorPagination",
    "LimitOffsetPage",
    "LimitOffsetPagination",
    "ModelViewSet",
    "NoReverseMatch",
    "Page",
    "PageNumberPagination",
    "model_struct",
    "operation",
    "paginate",
    "Body",
    "CORS",
    "Cookie",
    "Depends",
    "Endpoint",
    "File",
    "FileResponse",
    "Form",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "JSONResponse",
    "Path",
    "PlainTextResponse",
    "Query",
    "RedirectResponse",
    "Request",
    "Response",
    "ResponseValidationError",
    "Router",
    "StreamingResponse",
    "UploadFile",
    "ValidationError",
]
