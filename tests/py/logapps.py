"""Applications for the access log and request id tests (test_access_log.py).

`app` (WSGI) answers /id with the request id it saw in its environ, /set-id
with an X-Request-ID of its own in the response, /post with the length of
the body it read, and 404 for anything else. `api` has a constant route
(answered in C), a GET route (so a POST gets the C 405) and a route that
returns the request id from its headers.
"""

from meltemi import API, Request

api = API(prefix="/api", docs_url=None, openapi_url=None)
api.constant("/health", b'{"ok":true}', content_type="application/json")


@api.get("/items/{n}")
def item(n: int):
    return {"n": n}


@api.get("/id")
def request_id(request: Request):
    return {"id": request.headers.get("x-request-id"), "request_id": request.request_id}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain")]
    if path == "/id":
        body = environ.get("HTTP_X_REQUEST_ID", "none").encode()
        status = "200 OK"
    elif path == "/set-id":
        body = b"set"
        status = "200 OK"
        headers.append(("X-Request-ID", "from-the-app"))
    elif path == "/post":
        body = str(len(environ["wsgi.input"].read())).encode()
        status = "200 OK"
    else:
        body = b"not here"
        status = "404 Not Found"
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]
