"""The typed API's JSON hello, sync and async, for bench/asgi_cpu.py (served with hello_app:app and --api)."""

from meltemi import API

api = API(prefix="/api", openapi_url=None, docs_url=None, redoc_url=None, scalar_url=None)


@api.get("/hello")
def hello():
    return {"hello": "world"}


@api.get("/ahello")
async def ahello():
    return {"hello": "world"}
