"""The scenarios written for FastAPI (served by uvicorn): Pydantic models, async endpoints."""

import asyncio
import os

from benchproj.payloads import MESSAGE, RECORDS, WAIT_SECONDS
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

app = FastAPI()
app.add_middleware(GZipMiddleware, minimum_size=500)

static_dir = os.path.join(os.environ.get("BENCH_WORK", "/tmp/meltemi-bench"), "static")
if os.path.isdir(static_dir):
    app.mount("/static", StaticFiles(directory=static_dir), name="static")


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():
    return MESSAGE


@app.get("/json")
async def json_hello():
    return {"message": MESSAGE}


@app.get("/json10k")
async def json_10k():
    return RECORDS


@app.get("/items/{item_id}")
async def get_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


@app.get("/wait-async", response_class=PlainTextResponse)
async def wait():
    await asyncio.sleep(WAIT_SECONDS)
    return "waited"
