"""The scenarios written for Django Bolt (served by `manage.py runbolt --processes 1`), async as its docs advise."""

import asyncio

import msgspec
from django_bolt import BoltAPI
from django_bolt.auth import IsAuthenticated, JWTAuthentication
from django_bolt.responses import PlainText
from django_bolt.websocket import WebSocket, WebSocketDisconnect

from .models import Row
from .payloads import MESSAGE, RECORDS, WAIT_SECONDS

api = BoltAPI()


class Item(msgspec.Struct):
    name: str
    price: float
    tags: list[str] = []


@api.get("/plaintext")
async def plaintext():
    return PlainText(MESSAGE)


@api.get("/json")
async def json_hello():
    return {"message": MESSAGE}


@api.get("/json10k")
async def json_10k():
    return RECORDS


@api.get("/items/{item_id}")
async def get_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@api.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


@api.get("/orm")
async def orm_rows():
    return [row async for row in Row.objects.order_by("id").values("id", "name", "price", "stock")[:10]]


@api.get("/wait-async")
async def wait():
    await asyncio.sleep(WAIT_SECONDS)
    return PlainText("waited")


# The JWT scenarios: HS256 with the settings' SECRET_KEY; the guard enforces (Bolt's auth only attempts).
@api.get("/auth/json", auth=[JWTAuthentication()], guards=[IsAuthenticated()])
async def auth_json():
    return {"message": MESSAGE}


@api.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
