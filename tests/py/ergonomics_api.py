"""The API of tests/py/test_api_ergonomics.py: pagination, class-based views,
a model viewset, a mounted API, names to reverse, health and readiness.
Served by TestClient (Django set up by apiclient.django_ready) and by a real
server (`--api ergonomics_api:api` next to apiproject's settings)."""

from __future__ import annotations

import datetime
from typing import Annotated

import msgspec
from apiproject.models import Item

from meltemi.api import (
    API,
    APIView,
    CursorPagination,
    HTTPException,
    LimitOffsetPagination,
    ModelViewSet,
    PageNumberPagination,
    Query,
    Request,
    Router,
    operation,
    paginate,
)

api = API(prefix="/api", title="Ergonomics", version="1.0")


class Row(msgspec.Struct):
    id: int
    name: str
    when: datetime.datetime


START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
# 23 rows; "when" is not in id order, so an order by "when" is not the id's.
ROWS = [Row(i, f"row{i}", START + datetime.timedelta(hours=(i * 7) % 23)) for i in range(1, 24)]


class ItemOut(msgspec.Struct):
    id: int
    name: str
    price: float


# ---- pagination ----


@api.get("/rows/pages", tags=["pagination"])
@paginate(PageNumberPagination, page_size=5, max_page_size=10)
def row_pages(request: Request, prefix: Annotated[str, Query(max_length=10)] = "") -> list[Row]:
    """Rows by page number."""
    return [r for r in ROWS if r.name.startswith(prefix)]


@api.get("/rows/slices", tags=["pagination"])
@paginate(LimitOffsetPagination, default_limit=4, max_limit=8)
def row_slices() -> list[Row]:
    return ROWS


@api.get("/rows/cursor", tags=["pagination"])
@paginate(CursorPagination, ordering=("-when",), page_size=5, max_page_size=10)
def row_cursor() -> list[Row]:
    return ROWS


@api.get("/items/pages", tags=["pagination"])
@paginate(PageNumberPagination(page_size=3))
def item_pages(min_price: float = 0) -> list[ItemOut]:
    return Item.objects.filter(price__gte=min_price).order_by("id")


@api.get("/items/cursor", tags=["pagination"])
@paginate(CursorPagination, ordering=("-price",), page_size=3)
def item_cursor() -> list[ItemOut]:
    return Item.objects.all()


# ---- a class-based view ----

store: dict[int, str] = {}


class NoteOut(msgspec.Struct):
    id: int
    text: str
    served_by: str


class NoteIn(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1)]


@api.view("/notes/{note_id}", name="note")
class NoteView(APIView):
    tags = ["notes"]

    def find(self, note_id: int) -> str:
        if note_id not in store:
            raise HTTPException(404, f"note {note_id} not found")
        return store[note_id]

    def get(self, note_id: int) -> NoteOut:
        """One note."""
        return NoteOut(note_id, self.find(note_id), f"{self.request.method} {id(self)}")

    @operation(status=201, summary="Write a note")
    def put(self, request: Request, note_id: int, note: NoteIn) -> NoteOut:
        store[note_id] = note.text
        return NoteOut(note_id, note.text, request.method)

    @operation(status=204)
    def delete(self, note_id: int) -> None:
        self.find(note_id)
        del store[note_id]


# ---- a model viewset ----


class ItemViewSet(ModelViewSet):
    model = Item
    filter_fields = ["name", "name__icontains", "price__gte", "price__lte"]
    ordering_fields = ["price", "name"]
    ordering = ["id"]
    pagination = PageNumberPagination(page_size=5, max_page_size=50)


api.register("/crud/items", ItemViewSet)


class CheapItemViewSet(ModelViewSet):
    """Declared Structs, a narrower queryset, no pagination, two actions."""

    model = Item
    out_schema = ItemOut
    actions = ["list", "retrieve"]

    def get_queryset(self):
        return Item.objects.filter(price__lt=10)


api.register("/crud/cheap", CheapItemViewSet, name="cheap")


# ---- a mounted API, names ----

v2 = API(prefix="/somewhere", title="v2")
files = Router(prefix="/files", tags=["files"])


class Teapot(Exception):
    pass


@v2.exception_handler(Teapot)
def teapot(request, exc):
    from meltemi.api import JSONResponse

    return JSONResponse({"detail": "teapot"}, 418)


@v2.get("/hello/{name}", name="hello")
def v2_hello(name: str) -> dict:
    return {"hello": name}


@files.get("/{path:path}", name="file")
def v2_file(path: str) -> dict:
    return {"path": path}


@v2.get("/flags/{on}/{n}/{ratio}", name="flags")
def v2_flags(on: bool, n: int, ratio: float) -> dict:
    return {"on": on, "n": n, "ratio": ratio}


@v2.get("/teapot")
def v2_teapot() -> dict:
    raise Teapot


v2.include_router(files)
api.mount("/v2", v2, namespace="v2")

# ---- health ----

api.health("/health")
api.readiness("/ready")
api.readiness("/ready/extra", checks={"always": lambda: True, "never": lambda: False}, name="ready-extra")
