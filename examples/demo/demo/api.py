"""The demo's typed API, served by meltemi at /api/ (docs at /api/docs,
/api/redoc and /api/scalar; more routes in demo/catalog.py).

Items live in the database (notes.models.Item, also in the admin). Routing,
path conversion and 404/405/422 for malformed paths happen in C; each
handler runs in one GIL hold with its parameters validated by msgspec.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Annotated

import msgspec
from django.db.models import Q
from notes.models import Item, Note

from meltemi import API, CORS, HTTPException, Query, Request, Response, Router, ValidationError
from meltemi.api import LimitOffsetPagination, paginate
from meltemi.api.ratelimit import RateLimit
from meltemi.api.websocket import WebSocket

from . import catalog

api = API(
    prefix="/api",
    title="meltemi demo API",
    version="1.0.0",
    description="Items backed by the Django ORM, served by meltemi's typed API layer.",
    # A front end in development (e.g. `npm run dev`) at http://localhost:3000 may call this API from the
    # browser: CORS decided in C, preflights answered without Python (docs/api.md, "CORS").
    cors=CORS(allow_origins=["http://localhost:3000"], expose_headers=["X-Request-ID"]),
)


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a client sends to create or replace an item."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    price: decimal.Decimal  # msgspec has no bounds for Decimal: checked by check_price
    description: str = ""
    in_stock: bool = True


class ItemPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields to change; the others stay as they are."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    price: decimal.Decimal | None = None
    description: str | None = None
    in_stock: bool | None = None


class ItemOut(msgspec.Struct):
    id: int
    name: str
    description: str
    price: decimal.Decimal
    in_stock: bool
    created: datetime.datetime


items = Router(prefix="/items", tags=["items"])


def check_price(price: decimal.Decimal | None) -> None:
    if price is not None and not (price.is_finite() and price >= 0 and price.as_tuple().exponent >= -2):
        raise ValidationError(
            [{"loc": ["body", "price"], "msg": "Expected a price >= 0 with at most 2 decimals", "type": "value_error"}]
        )


def get_or_404(item_id: int) -> Item:
    try:
        return Item.objects.get(pk=item_id)
    except Item.DoesNotExist:
        raise HTTPException(404, f"item {item_id} does not exist") from None


@items.get("")
@paginate(LimitOffsetPagination, default_limit=20, max_limit=100)
def list_items(
    q: Annotated[str | None, Query(description="Search in names and descriptions", max_length=100)] = None,
    in_stock: bool | None = None,
) -> list[ItemOut]:
    """List items, newest last, with an optional search (?limit=&offset=)."""
    rows = Item.objects.all()
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(description__icontains=q))
    if in_stock is not None:
        rows = rows.filter(in_stock=in_stock)
    return rows


@items.get("/{item_id}")
def get_item(item_id: int) -> ItemOut:
    """One item by its id."""
    return get_or_404(item_id)


@items.post("", status=201)
def create_item(item: ItemIn) -> ItemOut:
    """Create an item."""
    check_price(item.price)
    return Item.objects.create(**msgspec.structs.asdict(item))


@items.put("/{item_id}")
def replace_item(item_id: int, item: ItemIn) -> ItemOut:
    """Replace every field of an item."""
    check_price(item.price)
    row = get_or_404(item_id)
    for name, value in msgspec.structs.asdict(item).items():
        setattr(row, name, value)
    row.save()
    return row


@items.patch("/{item_id}")
def update_item(item_id: int, changes: ItemPatch) -> ItemOut:
    """Change some fields of an item."""
    check_price(changes.price)
    row = get_or_404(item_id)
    for name, value in msgspec.structs.asdict(changes).items():
        if value is not None:
            setattr(row, name, value)
    row.save()
    return row


@items.delete("/{item_id}", status=204)
def delete_item(item_id: int) -> Response:
    """Delete an item."""
    get_or_404(item_id).delete()
    return Response(status=204)


api.include_router(items)


class Greeting(msgspec.Struct):
    message: str


@api.get("/hello", tags=["misc"])
def hello(name: str = "World") -> Greeting:
    """A greeting (the JSON hello of the benchmarks)."""
    return Greeting(message=f"Hello, {name}!")


@api.get("/item-count", tags=["misc"])
async def item_count() -> dict:
    """An `async def` endpoint: it runs on the worker's event loop, with Django's async ORM."""
    return {"items": await Item.objects.acount()}


@api.websocket("/ws/notes")
async def notes_feed(ws: WebSocket, upper: bool = False) -> None:
    """A WebSocket route (ws://127.0.0.1:8000/api/ws/notes): the number of notes first, then each text
    message back (upper-cased with ?upper=true). The query is validated before the 101, as an HTTP
    endpoint's; the frames are the C WebSocket code's."""
    await ws.accept()
    await ws.send_json({"notes": await Note.objects.acount()})
    async for message in ws:
        await ws.send_text(message.upper() if upper else message)


@api.get("/me", tags=["misc"])
def me(request: Request) -> dict:
    """Who the session cookie says you are (log in at /admin/)."""
    user = request.user
    return {"authenticated": user.is_authenticated, "username": user.get_username()}


api.include_router(catalog.router)

api.health("/health")  # answered in C
api.readiness("/ready")  # 503 when the database does not answer


@api.get("/limited", tags=["misc"], rate_limit=RateLimit("5/minute", name="demo"))
def limited() -> Greeting:
    """Rate-limited in C: 5 requests a minute per client address (behind a trusted proxy, the client
    it names), shared by every worker. The 6th gets 429 with Retry-After and the RateLimit fields, before
    Python runs."""
    return Greeting(message="Within the limit.")


# Authentication (demo/secure.py): a token endpoint, JWT- and API-key-protected routes.
from demo.secure import auth as auth_routes  # noqa: E402
from demo.secure import secure  # noqa: E402

api.include_router(auth_routes)
api.include_router(secure)
