"""The application of the trusted-proxy tests (test_forwarded.py): it answers
with what its environ says about the client, as JSON."""

import json


def app(environ, start_response):
    body = json.dumps(
        {
            "remote_addr": environ.get("REMOTE_ADDR"),
            "remote_port": environ.get("REMOTE_PORT"),
            "scheme": environ["wsgi.url_scheme"],
            "host": environ.get("HTTP_HOST"),
            "server_name": environ["SERVER_NAME"],
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    """The same view through ASGI: the scope's client and scheme."""
    if scope["type"] != "http":
        return
    client = scope.get("client")
    body = json.dumps(
        {"client": list(client) if client else None, "scheme": scope["scheme"], "server": list(scope["server"])}
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
