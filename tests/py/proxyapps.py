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
