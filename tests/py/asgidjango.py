"""A Django project in one module (settings, URLs, views) served through Django's ASGI handler."""

import asyncio
import threading

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

SECRET_KEY = "asgi-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["meltemi.django"]
ROOT_URLCONF = "asgidjango"
DATABASES = {}
USE_TZ = True


async def async_view(request):
    await asyncio.sleep(0)
    return JsonResponse(
        {
            "kind": "async",
            "method": request.method,
            "path": request.path,
            "q": request.GET.get("q"),
            "thread": threading.current_thread().name,
        }
    )


def sync_view(request):
    return JsonResponse({"kind": "sync", "body": request.body.decode(), "thread": threading.current_thread().name})


async def stream_view(request):
    async def parts():
        for i in range(3):
            yield f"chunk {i}\n"
            await asyncio.sleep(0)

    return StreamingHttpResponse(parts(), content_type="text/plain")


def hello(request):
    return HttpResponse("Hello, world!", content_type="text/plain")


urlpatterns = [
    path("async/", async_view),
    path("sync/", sync_view),
    path("stream/", stream_view),
    path("hello/", hello),
]
