"""A Django Channels project in one module (settings, URLs, consumers) served by meltemi.

The database (sessions and users) is the SQLite file named by CHAT_DB; the channel layer is the in-memory one, or
channels_redis against the Redis server at CHAT_REDIS (host:port) when it is set.
"""

import json
import os
import sys
import threading

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer, JsonWebsocketConsumer
from django.contrib.auth import authenticate, login
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

SECRET_KEY = "channels-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channels",
    "meltemi.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "chatproject"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("CHAT_DB", ":memory:")}}
USE_TZ = True
ASGI_APPLICATION = "chatproject_asgi.application"
if os.environ.get("CHAT_REDIS"):
    host, port = os.environ["CHAT_REDIS"].rsplit(":", 1)
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [(host, int(port))]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def report(**fields):
    """One line on stderr that the tests read (the server prints what its workers print)."""
    sys.stderr.write("chat-report " + json.dumps(fields) + "\n")
    sys.stderr.flush()


class ChatConsumer(AsyncWebsocketConsumer):
    """A room: each text message goes to everyone in it, with its sender's user name and worker pid."""

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = f"chat-{self.room}"
        user = self.scope["user"]
        self.name = user.username if user.is_authenticated else "anonymous"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(json.dumps({"hello": self.name, "pid": os.getpid()}))

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "text": text_data, "user": self.name, "pid": os.getpid()}
        )

    async def chat_message(self, event):
        await self.send(json.dumps({"text": event["text"], "user": event["user"], "pid": event["pid"]}))

    async def chat_left(self, event):
        await self.send(json.dumps({"left": event["user"], "code": event["code"]}))

    async def disconnect(self, code):
        report(event="disconnect", room=self.room, user=self.name, code=code)
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.channel_layer.group_send(self.group, {"type": "chat.left", "user": self.name, "code": code})


class EchoJsonConsumer(JsonWebsocketConsumer):
    """A sync consumer (Channels runs it in a thread): echoes JSON, and broadcasts through the layer from sync
    code."""

    def connect(self):
        async_to_sync(self.channel_layer.group_add)("json", self.channel_name)
        self.accept()

    def receive_json(self, content):
        if "broadcast" in content:
            async_to_sync(self.channel_layer.group_send)("json", {"type": "json.broadcast", "value": content})
        else:
            self.send_json({"echo": content, "thread": threading.current_thread().name})

    def json_broadcast(self, event):
        self.send_json({"broadcast": event["value"]["broadcast"]})

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)("json", self.channel_name)
        report(event="json-disconnect", code=code)


@csrf_exempt
def login_view(request):
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    return HttpResponse("logged in")


def whoami(request):
    return JsonResponse({"user": request.user.username if request.user.is_authenticated else None})


urlpatterns = [path("login/", login_view), path("whoami/", whoami)]
