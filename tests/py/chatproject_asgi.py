"""The Channels application of chatproject: HTTP to Django's ASGI handler, WebSockets to the consumers."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()  # before the consumers are imported: it sets Django up

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from chatproject import ChatConsumer, EchoJsonConsumer  # noqa: E402
from django.urls import path  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": AuthMiddlewareStack(
            URLRouter(
                [
                    path("ws/chat/<str:room>/", ChatConsumer.as_asgi()),
                    path("ws/json/", EchoJsonConsumer.as_asgi()),
                ]
            )
        ),
    }
)
