"""The scenarios as plain Django views (served by meltemi's WSGI bridge, gunicorn, Granian and uvicorn).

The ASGI servers (meltemi-asgi, uvicorn, granian-asgi) get the `async def` hellos below for the
plaintext and JSON scenarios (bench/servers.py): under Django's ASGI handler a sync view is one more
trip to a thread (sync_to_async) per request."""

import asyncio
import time

import msgspec
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_POST

from .models import Row
from .payloads import MESSAGE, RECORDS, WAIT_SECONDS


class Item(msgspec.Struct):
    name: str
    price: float
    tags: list[str] = []


def plaintext(request):
    return HttpResponse(MESSAGE, content_type="text/plain")


def json_hello(request):
    return JsonResponse({"message": MESSAGE})


async def plaintext_async(request):
    return HttpResponse(MESSAGE, content_type="text/plain")


async def json_hello_async(request):
    return JsonResponse({"message": MESSAGE})


def json_10k(request):
    return JsonResponse(RECORDS, safe=False)


@gzip_page
def json_10k_gzip(request):
    return JsonResponse(RECORDS, safe=False)


@require_GET
def get_item(request, item_id):
    return JsonResponse({"item_id": item_id, "q": request.GET.get("q")})


@csrf_exempt
@require_POST
def create_item(request):
    if request.content_type != "application/json":
        return JsonResponse({"detail": "expected application/json"}, status=415)
    try:
        item = msgspec.json.decode(request.body, type=Item)
    except msgspec.ValidationError as error:
        return JsonResponse({"detail": str(error)}, status=422)
    except msgspec.DecodeError:
        return JsonResponse({"detail": "malformed JSON"}, status=400)
    return JsonResponse(msgspec.to_builtins(item), status=201)


def orm_rows(request):
    rows = list(Row.objects.order_by("id").values("id", "name", "price", "stock")[:10])
    return JsonResponse(rows, safe=False)


def page(request):
    """A full Django page: the default middleware stack, the session, a template with a CSRF token."""
    visits = request.session.get("visits", 0)
    rows = Row.objects.order_by("id")[:5]
    return render(request, "page.html", {"title": "meltemi bench", "visits": visits, "rows": rows})


def wait(request):
    time.sleep(WAIT_SECONDS)
    return HttpResponse("waited", content_type="text/plain")


async def wait_async(request):
    await asyncio.sleep(WAIT_SECONDS)
    return HttpResponse("waited", content_type="text/plain")
