"""The ASGI hello applications of bench/asgi_cpu.py: a bare ASGI 3 callable and a Starlette app."""

MESSAGE = b"Hello, World!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": MESSAGE})


def _starlette():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request):
        return PlainTextResponse("Hello, World!")

    return Starlette(routes=[Route("/", hello)])


def __getattr__(name):
    if name == "starlette_app":
        return _starlette()
    raise AttributeError(name)
