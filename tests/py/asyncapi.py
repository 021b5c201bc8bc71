"""An API with `async def` endpoints (and one sync endpoint beside them),
served with apiproject's Django settings by tests/py/test_api_async.py,
through a real server and through TestClient."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Annotated

import msgspec
from apiproject.models import Item as ItemRow
from asgiref.sync import sync_to_async

from meltemi import API, Depends, HTTPException, JSONResponse, PlainTextResponse, Query, Request
from meltemi.api.auth import APIKeyAuth
from meltemi.api.websocket import WebSocket

api = API(prefix="/api", title="Async API")
keyed = APIKeyAuth({"ci": "key-ci-1"})


class Item(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    price: Annotated[float, msgspec.Meta(gt=0)]


class ItemOut(msgspec.Struct):
    id: int
    name: str
    price: float


@api.get("/health")
def health():
    return {"ok": True}


@api.get("/sync")
def sync_hello():
    return {"hello": "world"}


@api.get("/hello")
async def hello():
    return {"hello": "world"}


@api.get("/where")
async def where():
    """The thread the coroutine ran on, and whether a loop runs there."""
    loop = asyncio.get_running_loop()
    return {"thread": threading.current_thread().name, "running": loop.is_running()}


@api.get("/orm-connection")
async def orm_connection(query: bool = False):
    """Whether the async ORM's thread (asgiref's sync thread) holds an open database connection (after a
    query there, with `query`)."""
    from django.db import connection

    if query:
        await ItemRow.objects.acount()
    return {"open": await sync_to_async(lambda: connection.connection is not None)()}


@api.get("/items/{item_id}")
async def get_item(item_id: int, detail: bool = False, limit: Annotated[int, Query(ge=1, le=10)] = 5):
    return {"id": item_id, "detail": detail, "limit": limit}


@api.post("/items", status=201)
async def create_item(item: Item) -> ItemOut:
    row = await ItemRow.objects.acreate(name=item.name, price=item.price, tags=[])
    return ItemOut(id=row.id, name=row.name, price=row.price)


@api.get("/items/{item_id}/row")
async def read_item(item_id: int) -> ItemOut:
    try:
        row = await ItemRow.objects.aget(pk=item_id)
    except ItemRow.DoesNotExist:
        raise HTTPException(404, "no such item") from None
    return ItemOut(id=row.id, name=row.name, price=row.price)


@api.get("/count")
async def count():
    n = await ItemRow.objects.acount()
    names = await sync_to_async(lambda: sorted(ItemRow.objects.values_list("name", flat=True)))()
    return {"count": n, "names": names}


@api.get("/boom")
async def boom():
    await asyncio.sleep(0)
    raise RuntimeError("async boom")


@api.get("/teapot")
async def teapot():
    raise HTTPException(418, "short and stout")


@api.get("/text")
async def text():
    return PlainTextResponse("plain", headers={"X-Async": "1"})


@api.get("/json")
async def json_response():
    return JSONResponse({"a": 1}, 202)


@api.get("/sleep")
async def sleep(seconds: float = 0.5):
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@api.get("/words/{word}")
async def word(word: str):
    return {"word": word}


@api.get("/block")
async def block(seconds: float = 0.3):
    time.sleep(seconds)  # blocks the loop: the requests behind it queue up and come in one batch
    return {"blocked": seconds}


async def current_user(x_user: Annotated[str, Query(alias="user")] = "anonymous") -> str:
    await asyncio.sleep(0)
    return x_user.upper()


@api.get("/whoami")
async def whoami(user: Annotated[str, Depends(current_user)]):
    return {"user": user}


@api.get("/whoami-sync")
def whoami_sync(user: Annotated[str, Depends(current_user)]):
    return {"user": user}


@api.get("/secret", auth=keyed)
async def secret(request):
    return {"key": request.auth_subject}


# ---- WebSocket routes (tests/py/test_api_async.py) ----


@api.websocket("/ws/echo")
async def ws_echo(ws: WebSocket):
    await ws.accept()
    async for message in ws:
        if isinstance(message, str):
            await ws.send_text(message)
        else:
            await ws.send_bytes(message)


@api.websocket("/ws/rooms/{room}")
async def ws_room(ws: WebSocket, room: str, n: Annotated[int, Query(ge=1, le=5)] = 1):
    await ws.accept()
    await ws.send_json({"room": room, "n": n, "thread": threading.current_thread().name})
    said = await ws.receive_text()
    await ws.close(4000 + n, said)


@api.websocket("/ws/items/{item_id}")
async def ws_item(ws: WebSocket, item_id: int):
    await ws.accept()
    await ws.send_json({"id": item_id})


@api.websocket("/ws/secret", auth=keyed)
async def ws_secret(ws: WebSocket, request: Request):
    await ws.accept()
    await ws.send_text(request.auth_subject)


@api.websocket("/ws/wait")
async def ws_wait(ws: WebSocket):
    await ws.accept()
    await ws.send_text("ready")
    async for _ in ws:
        pass


@api.websocket("/ws/boom")
async def ws_boom(ws: WebSocket):
    await ws.accept()
    raise RuntimeError("websocket boom")


@api.websocket("/ws/refuse")
async def ws_refuse(ws: WebSocket):
    await ws.close()  # before accept(): the handshake is refused with 403
