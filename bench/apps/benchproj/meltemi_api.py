"""The scenarios written for meltemi's typed API (`--api benchproj.meltemi_api:api`); other paths fall
through to the Django project's URLconf. Sync handlers: they run on meltemi's handler threads."""

import msgspec

from meltemi import API
from meltemi.api.auth import JWTAuth
from meltemi.api.ratelimit import RateLimit

from .models import Row
from .payloads import MESSAGE, RECORDS

api = API(prefix="")

# The ceiling: answered in C, Python never called.
api.constant("/plain", b"Hello, World!", content_type="text/plain")
# The rate-limited scenario: the same route with a limit of 1 a day per client address, so every
# request after the first is counted and refused (429) in C.
api.constant("/limited", b"Hello, World!", content_type="text/plain", rate_limit=RateLimit("1/day"))


class Item(msgspec.Struct):
    name: str
    price: float
    tags: list[str] = []


@api.get("/plaintext")
def plaintext(request) -> str:
    return MESSAGE


@api.get("/json")
def json_hello(request):
    return {"message": MESSAGE}


# The async scenario: an `async def` endpoint, served on the worker's loop (meltemi/api/aio.py).
@api.get("/async/json")
async def json_hello_async(request):
    return {"message": MESSAGE}


@api.get("/json10k")
def json_10k(request):
    return RECORDS


@api.get("/items/{item_id}")
def get_item(request, item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@api.post("/items", status=201)
def create_item(request, item: Item) -> Item:
    return item


@api.get("/orm")
def orm_rows(request):
    return list(Row.objects.order_by("id").values("id", "name", "price", "stock")[:10])


# The JWT scenarios: HS256 with the settings' SECRET_KEY; a bad token is answered 401 in C.
@api.get("/auth/json", auth=JWTAuth())
def auth_json(request):
    return {"message": MESSAGE}
