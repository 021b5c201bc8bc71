"""An API for the OpenAPI tests: one route per thing the document must say.
Needs no Django (served with --api by test_api_openapi.py's server test)."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

import msgspec

from meltemi import API, Cookie, Depends, File, Form, Header, HTMLResponse, Query, Router, UploadFile

api = API(
    prefix="/api",
    title="Shop API",
    version="3.2.1",
    description="Items and their **prices**.",
    servers=[{"url": "https://shop.example", "description": "production"}],
)


class Item(msgspec.Struct):
    """An item for sale."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []


class ItemOut(msgspec.Struct):
    id: int
    item: Item


class Opaque:
    """A type msgspec has no JSON Schema for."""


# ---- a router included with a prefix and tags ----

items = Router(tags=["items"])


@items.get("/items/{item_id}")
def get_item(item_id: int, q: str | None = None) -> ItemOut:
    """Reads one item.

    The query string's `q` is ignored."""
    return ItemOut(item_id, Item("x", 1.0))


@items.post("/items", status=201, summary="Create an item", responses={409: "Already there"})
def create_item(item: Item) -> ItemOut:
    return ItemOut(1, item)


@items.delete("/items/{item_id}", status=204, responses={404: "No such item"})
def delete_item(item_id: int) -> None:
    return None


api.include_router(items, prefix="/v1", tags=["shop"])


# ---- parameter kinds and types ----


@api.get("/types/{u}/{d}")
def types(
    u: uuid.UUID,
    d: datetime.date,
    f: float,
    b: bool = False,
    ids: list[int] = [],  # noqa: B006 - never mutated
    limit: Annotated[int, Query(description="At most this many", examples=[10])] = 20,
    secret: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> dict:
    return {}


@api.get("/headers")
def headers(
    request_id: Annotated[str, Header(alias="X-Request-ID", description="Echoed back")],
    x_retries: Annotated[int, Header(), msgspec.Meta(ge=0, description="Retries so far")] = 0,
    session: Annotated[str | None, Cookie()] = None,
) -> str:
    return "ok"


@api.get("/files/{rest:path}")
def files(rest: str) -> bytes:
    return b""


@api.post("/upload")
def upload(
    doc: Annotated[UploadFile, File(description="The document")],
    extra: Annotated[list[UploadFile], File()] = [],  # noqa: B006
    title: Annotated[str, Form()] = "",
) -> dict:
    return {}


@api.post("/form")
def form(name: Annotated[str, Form()], age: Annotated[int, Form()] = 0) -> dict:
    return {}


@api.post("/pair")
def pair(first: Item, second: Item) -> list[Item]:
    return [first, second]


def paging(page: int = 1, size: Annotated[int, Query(alias="page-size")] = 50) -> tuple[int, int]:
    return page, size


@api.get("/paged")
def paged(p: Annotated[tuple[int, int], Depends(paging)]) -> dict:
    return {}


# ---- operation details ----


@api.get("/old", deprecated=True, tags=["legacy"])
def old_thing() -> dict:
    return {}


@api.route("/multi", methods=["GET", "PUT"], operation_id="multiThing")
def multi() -> dict:
    return {}


@api.get("/page")
def page() -> HTMLResponse:
    return HTMLResponse("<p>hi</p>")


@api.get("/opaque", response_model=Opaque)
def opaque() -> dict:
    return {}


@api.get("/hidden", include_in_schema=False)
def hidden() -> dict:
    return {}


api.constant("/health", "ok")
