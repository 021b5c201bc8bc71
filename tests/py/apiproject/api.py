"""The test project's API: one route per feature the tests check."""

import dataclasses
import datetime
import decimal
import enum
import os
import tempfile
import uuid
from typing import Annotated, Literal

import msgspec
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse

from meltemi import (
    API,
    Body,
    Cookie,
    Depends,
    File,
    FileResponse,
    Form,
    Header,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Query,
    RedirectResponse,
    Request,
    Response,
    Router,
    StreamingResponse,
    UploadFile,
)

from .models import Item as ItemRow

api = API(prefix="/api", title="Test API", version="2.0")


class Item(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []


class ItemOut(msgspec.Struct):
    id: int
    name: str
    price: float
    tags: list[str]


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    red = "red"
    blue = "blue"


# ---- path parameters ----


@api.get("/types/int/{v}")
def t_int(v: int):
    return {"v": v, "type": type(v).__name__}


@api.get("/types/float/{v}")
def t_float(v: float):
    return {"v": v, "type": type(v).__name__}


@api.get("/types/bool/{v}")
def t_bool(v: bool):
    return {"v": v, "type": type(v).__name__}


@api.get("/types/str/{v}")
def t_str(v: str):
    return {"v": v}


@api.get("/types/uuid/{v}")
def t_uuid(v: uuid.UUID):
    return {"v": str(v), "type": type(v).__name__}


@api.get("/types/date/{v}")
def t_date(v: datetime.date):
    return {"v": v.isoformat(), "type": type(v).__name__}


@api.get("/types/datetime/{v}")
def t_datetime(v: datetime.datetime):
    return {"v": v.isoformat(), "type": type(v).__name__}


@api.get("/types/decimal/{v}")
def t_decimal(v: decimal.Decimal):
    return {"v": str(v), "type": type(v).__name__}


@api.get("/types/enum/{v}")
def t_enum(v: Color):
    return {"v": v.value}


@api.get("/types/bounded/{v}")
def t_bounded(v: Annotated[int, msgspec.Meta(ge=1, le=10)]):
    return {"v": v}


@api.get("/files/{rest:path}")
def t_path(rest: str):
    return {"rest": rest}


@api.get("/two/{a}/{b}")
def t_two(a: int, b: str):
    return [a, b]


@api.get("/items/new")
def items_new():
    return "the static segment wins"


# ---- query, header, cookie ----


@api.get("/query")
def query(
    q: str,
    limit: int = 10,
    ratio: float | None = None,
    flag: bool = False,
    tags: list[str] = [],  # noqa: B006 - never mutated
    ids: Annotated[list[int], Query(alias="id")] = [],  # noqa: B006
    short: Annotated[str, Query(max_length=3)] = "abc",
    kind: Literal["a", "b"] = "a",
    when: datetime.date | None = None,
):
    return {
        "q": q,
        "limit": limit,
        "ratio": ratio,
        "flag": flag,
        "tags": tags,
        "ids": ids,
        "short": short,
        "kind": kind,
        "when": when,
    }


@api.get("/headers")
def headers(
    user_agent: Annotated[str, Header()],
    x_token: Annotated[str | None, Header(alias="X-Token")] = None,
    x_num: Annotated[int, Header()] = 0,
    accept: Annotated[list[str], Header()] = [],  # noqa: B006
):
    return {"user_agent": user_agent, "x_token": x_token, "x_num": x_num, "accept": accept}


@api.get("/cookies")
def cookies(session_id: Annotated[str, Cookie()], theme: Annotated[str, Cookie()] = "light"):
    return {"session_id": session_id, "theme": theme}


@api.get("/request")
def whole_request(request: Request):
    return {
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "query": request.query,
        "host": request.headers.get("host"),
    }


# ---- bodies ----


@api.post("/items", status=201)
def create_item(item: Item) -> ItemOut:
    row = ItemRow.objects.create(name=item.name, price=item.price, tags=item.tags)
    return row  # converted from the model's attributes


@api.get("/items/{item_id}")
def get_item(item_id: int) -> ItemOut:
    try:
        return ItemRow.objects.get(pk=item_id)
    except ItemRow.DoesNotExist:
        raise Http404(f"no item {item_id}") from None


@api.get("/items")
def list_items(limit: int = 10) -> list[ItemOut]:
    return list(ItemRow.objects.order_by("id")[:limit])


@api.put("/items/{item_id}")
def replace_item(item_id: int, item: Item) -> ItemOut:
    updated = ItemRow.objects.filter(pk=item_id).update(name=item.name, price=item.price, tags=item.tags)
    if not updated:
        raise HTTPException(404, "no such item")
    return ItemRow.objects.get(pk=item_id)


@api.delete("/items/{item_id}", status=204)
def delete_item(item_id: int):
    ItemRow.objects.filter(pk=item_id).delete()
    return Response(status=204)


@api.post("/embed")
def embed(item: Item, point: Point, note: Annotated[str, Body()] = "none"):
    return {"item": item, "point": point, "note": note}


@api.post("/point")
def point(p: Point):
    return {"sum": p.x + p.y}


@api.post("/raw")
def raw_body(request: Request):
    return {"length": len(request.body), "json": request.json() if request.body else None}


@api.post("/optional-body")
def optional_body(item: Item | None = None):
    return {"item": item}


# ---- forms and files ----


@api.post("/form")
def form(name: Annotated[str, Form()], age: Annotated[int, Form()] = 0, tags: Annotated[list[str], Form()] = []):  # noqa: B006
    return {"name": name, "age": age, "tags": tags}


SEEN_UPLOADS: list[str] = []


@api.post("/upload")
def upload(doc: Annotated[UploadFile, File()], title: Annotated[str, Form()] = ""):
    import hashlib

    data = doc.read()
    path = getattr(doc.file, "name", None)
    on_disk = isinstance(path, str) and os.path.exists(path)
    if on_disk:
        SEEN_UPLOADS.append(path)
    return {
        "filename": doc.filename,
        "content_type": doc.content_type,
        "size": doc.size,
        "sha256": hashlib.sha256(data).hexdigest(),
        "title": title,
        "on_disk": on_disk,
        "temp_path": path if on_disk else None,
    }


@api.get("/upload/leftover")
def upload_leftover():
    return {"exists": [p for p in SEEN_UPLOADS if os.path.exists(p)]}


@api.post("/uploads")
def uploads(docs: Annotated[list[UploadFile], File()]):
    return [{"filename": d.filename, "size": d.size} for d in docs]


# ---- dependencies ----

CALLS = {"db": 0, "closed": 0}


def get_token(x_token: Annotated[str | None, Header()] = None) -> str:
    if x_token != "secret":
        raise HTTPException(401, "bad token", headers={"WWW-Authenticate": "Token"})
    return x_token


def get_db():
    CALLS["db"] += 1
    try:
        yield {"connection": CALLS["db"]}
    finally:
        CALLS["closed"] += 1


def get_user(token: Annotated[str, Depends(get_token)], db: Annotated[dict, Depends(get_db)]):
    return {"token": token, "db": db["connection"]}


@api.get("/deps")
def deps(
    user: Annotated[dict, Depends(get_user)],
    db: Annotated[dict, Depends(get_db)],
    page: int = 1,
):
    return {"user": user, "same_db": user["db"] == db["connection"], "page": page}


@api.get("/deps/calls")
def dep_calls():
    return dict(CALLS)


def paging(page: int = 1, size: Annotated[int, Query(le=100)] = 20):
    return {"page": page, "size": size}


@api.get("/paged")
def paged(p: Annotated[dict, Depends(paging)]):
    return p


# ---- responses ----


@api.get("/r/text")
def r_text():
    return "plain words"


@api.get("/r/bytes")
def r_bytes():
    return b"\x00\x01\x02"


@api.get("/r/html")
def r_html():
    return HTMLResponse("<h1>hi</h1>")


@api.get("/r/plain")
def r_plain():
    return PlainTextResponse("text", status=202, headers={"X-Extra": "1"})


@api.get("/r/json")
def r_json():
    return JSONResponse({"a": [1, 2]}, status=203)


@api.get("/r/redirect")
def r_redirect():
    return RedirectResponse("/api/r/text")


@api.get("/r/cookie")
def r_cookie():
    r = JSONResponse({"ok": True})
    r.set_cookie("flavour", "oat", max_age=60, httponly=True, samesite="Lax", secure=True, path="/api")
    r.set_cookie("other", "x y")
    r.delete_cookie("gone")
    return r


_FILE = os.path.join(tempfile.gettempdir(), f"meltemi-apiproject-{os.getpid()}.bin")


@api.get("/r/file")
def r_file():
    if not os.path.exists(_FILE):
        with open(_FILE, "wb") as f:
            f.write(bytes(range(256)) * 1000)
    return FileResponse(_FILE, filename="data.bin", as_attachment=True)


STREAM = {"closed": 0}


@api.get("/r/stream")
def r_stream(n: int = 3):
    def gen():
        try:
            for i in range(n):
                yield f"line {i}\n"
        finally:
            STREAM["closed"] += 1

    return StreamingResponse(gen(), media_type="text/plain")


@api.get("/r/stream/closed")
def r_stream_closed():
    return STREAM


@api.get("/r/django")
def r_django():
    r = HttpResponse("from django", content_type="text/plain", status=201)
    r["X-Django"] = "yes"
    r.set_cookie("dj", "1")
    return r


@api.get("/r/django-json")
def r_django_json():
    return JsonResponse({"django": True})


@api.get("/r/struct")
def r_struct() -> Item:
    return Item(name="n", price=1.5)


@api.get("/r/dict-as-struct")
def r_dict_as_struct() -> Item:
    return {"name": "n", "price": 2}


@api.get("/r/wrong-shape")
def r_wrong_shape() -> Item:
    return {"name": "n"}  # no price: a bug in the handler


@api.get("/r/model", response_model=list[int])
def r_model():
    return (1, 2, 3)


@api.get("/r/none")
def r_none():
    return None


@api.get("/r/big")
def r_big(n: int = 10000):
    return {"data": "x" * n}


# ---- errors ----


@api.get("/e/http")
def e_http():
    raise HTTPException(409, {"reason": "conflict"}, headers={"X-Why": "because"})


@api.get("/e/404")
def e_404():
    raise Http404("nothing here")


@api.get("/e/403")
def e_403():
    raise PermissionDenied


@api.get("/e/500")
def e_500():
    raise RuntimeError("boom in handler")


class Teapot(Exception):
    pass


@api.exception_handler(Teapot)
def teapot(request, exc):
    return JSONResponse({"detail": "I'm a teapot"}, status=418)


@api.get("/e/custom")
def e_custom():
    raise Teapot()


# ---- Django inside handlers ----


@api.get("/me")
def me(request: Request):
    user = request.user
    return {"authenticated": user.is_authenticated, "username": user.get_username()}


@api.get("/settings")
def settings_view():
    from django.conf import settings

    return {"secret_key_len": len(settings.SECRET_KEY), "debug": settings.DEBUG}


@api.get("/signals")
def signals_seen():
    from django.db import connection

    return {"queries_reset": len(connection.queries) == 0}


# ---- routers, methods, trailing slash ----

v2 = Router(prefix="/v2", tags=["v2"])


@v2.get("/hello")
def v2_hello():
    return {"version": 2}


@v2.route("/multi", methods=["GET", "POST", "PATCH"])
def v2_multi(request: Request):
    return {"method": request.method}


@v2.get("/slash/")
def v2_slash():
    return {"slash": True}


api.include_router(v2, tags=["included"])

api.constant("/health", b'{"ok":true}', content_type="application/json")


@api.get("/many/{a}/{b}/{c}/{d}")
def many(a: int, b: float, c: bool, d: uuid.UUID):
    return [a, b, c, str(d)]


@api.get("/optional-constrained")
def optional_constrained(
    q: Annotated[str | None, Query(max_length=3)] = None,
    n: Annotated[int | None, Query(ge=1)] = None,
):
    return [q, n]


class ItemPage(msgspec.Struct):
    count: int
    items: list[ItemOut]


@api.get("/items-page")
def items_page() -> ItemPage:
    rows = list(ItemRow.objects.order_by("id")[:3])
    return ItemPage(count=len(rows), items=rows)  # model instances inside the Struct


@api.get("/items-page-wrong")
def items_page_wrong() -> ItemPage:
    return ItemPage(count=1, items=[object()])
