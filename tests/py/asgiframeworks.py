"""Starlette and FastAPI applications for tests/py/test_asgi_frameworks.py."""

import asyncio
import contextlib
import os

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

FILE = os.environ.get("ASGI_TEST_FILE", "/dev/null")


async def s_hello(request: Request):
    return PlainTextResponse("Hello, world!")


async def s_echo(request: Request):
    body = await request.body()
    return JSONResponse({"length": len(body), "state": request.state.started})


async def s_stream(request: Request):
    async def numbers():
        for i in range(5):
            yield f"{i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(numbers(), media_type="text/plain")


async def s_file(request: Request):
    return FileResponse(FILE)


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"started": "yes"}


starlette_app = Starlette(
    routes=[
        Route("/hello", s_hello),
        Route("/echo", s_echo, methods=["POST"]),
        Route("/stream", s_stream),
        Route("/file", s_file),
    ],
    lifespan=lifespan,
)

fastapi_app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@fastapi_app.get("/hello")
async def f_hello():
    return {"message": "Hello, world!"}


@fastapi_app.post("/items")
async def f_items(item: Item):
    return {"name": item.name, "total": item.price * 2}


@fastapi_app.get("/sync")
def f_sync():
    return {"sync": True}


@fastapi_app.get("/stream")
async def f_stream():
    async def gen():
        for i in range(3):
            yield f"line {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain")


@fastapi_app.get("/file")
async def f_file():
    return FileResponse(FILE)
