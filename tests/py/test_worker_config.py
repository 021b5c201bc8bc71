"""One source of truth across the language boundary: meltemi/config.py builds
the one object meltemi._core.Worker takes (WorkerConfig), and the C side reads
exactly its fields, restating no default and no range."""

from __future__ import annotations

import dataclasses
import os

import pytest
from conftest import needs_api

from meltemi import _core, config
from meltemi.config import ConfigError, WorkerConfig, resolve, worker_config


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Recording:
    """Forwards attribute reads to a WorkerConfig (or DispatchPolicy) and notes their names."""

    def __init__(self, target, prefix: str, seen: set[str]):
        self._target = target
        self._prefix = prefix
        self._seen = seen

    def __getattr__(self, name):
        self._seen.add(self._prefix + name)
        value = getattr(self._target, name)
        if dataclasses.is_dataclass(value):
            return Recording(value, f"{self._prefix}{name}.", self._seen)
        return value


def test_worker_config_fields_are_the_core_options():
    core = {option.name for option in config.OPTIONS if option.core}
    fields = {item.name for item in dataclasses.fields(WorkerConfig)}
    # multiprocess comes from --workers; dispatch gathers dispatch, stall_ms and sched_batch.
    # cors is the project's policy, from the cors option and the Django settings (meltemi/cors.py).
    assert fields == core | {"multiprocess", "dispatch", "cors"}


def test_the_c_side_reads_every_field_and_nothing_else():
    seen: set[str] = set()
    resolved = worker_config(resolve({}, {}, None))
    _core.Worker(hello, [], Recording(resolved, "", seen))
    policy = {f"dispatch.{item.name}" for item in dataclasses.fields(config.DispatchPolicy)}
    assert seen == {item.name for item in dataclasses.fields(WorkerConfig)} | policy


@pytest.mark.parametrize("name", [item.name for item in dataclasses.fields(WorkerConfig)])
def test_a_missing_field_is_named(name):
    values = dataclasses.asdict(worker_config(resolve({}, {}, None)))
    values["dispatch"] = config.DispatchPolicy(**values["dispatch"])
    del values[name]
    partial = type("Partial", (), values)()
    with pytest.raises(AttributeError, match=name):
        _core.Worker(hello, [], partial)


def test_c_refuses_only_what_does_not_fit_its_types():
    resolved = worker_config(resolve({}, {}, None))
    with pytest.raises(OverflowError, match=r"WorkerConfig\.max_headers"):
        _core.Worker(hello, [], dataclasses.replace(resolved, max_headers=1 << 40))
    with pytest.raises(OverflowError, match=r"WorkerConfig\.head_timeout"):
        _core.Worker(hello, [], dataclasses.replace(resolved, head_timeout=1e12))
    # A value config.py would refuse but that fits: C takes it as it is.
    _core.Worker(hello, [], dataclasses.replace(resolved, max_headers=20000))


@pytest.mark.parametrize(
    "cli, message",
    [
        (
            {"max_body_size": "0"},
            "--max-body-size: expected a size in bytes such as 16384, 64K or 100M, from 1 to 1024G, got '0'",
        ),
        (
            {"max_request_line": "2M"},
            "--max-request-line: expected a size in bytes such as 16384, 64K or 100M, from 16 to 1M, got '2M'",
        ),
        ({"max_headers": "20000"}, "--max-headers: expected an integer from 1 to 10000, got '20000'"),
        ({"max_connections": "99999999"}, "--max-connections: expected an integer from 1 to 16777216, got '99999999'"),
        ({"head_timeout": "1e9"}, "--head-timeout: expected a number of seconds > 0 and at most 604800, got '1e9'"),
        (
            {"write_timeout": "604801"},
            "--write-timeout: expected a number of seconds > 0 and at most 604800, got '604801'",
        ),
        (
            {"write_buffer": "2048"},
            "--write-buffer: expected a size in bytes such as 16384, 64K or 100M, from 4K to 1024G, got '2048'",
        ),
        (
            {"static_max_age": "3000000000"},
            "--static-max-age: expected an integer from 0 to 2147483647, got '3000000000'",
        ),
        ({"stall_ms": "5000"}, "--stall-ms: expected an integer from 0 to 1000, got '5000'"),
        ({"dispatch": "random"}, "--dispatch: expected one of lazy, eager, got 'random'"),
        ({"sched_batch": "always"}, "--sched-batch: expected one of auto, on, off, got 'always'"),
    ],
)
def test_values_the_worker_refused_at_boot_fail_at_config_time(cli, message):
    """Before, --max-body-size 0 (and the others) passed config.py and failed when the worker booted."""
    with pytest.raises(ConfigError) as info:
        resolve(cli, {}, None)
    assert str(info.value) == message


def test_out_of_range_settings_name_the_setting():
    with pytest.raises(ConfigError) as info:
        resolve({}, {}, {"MAX_BODY_SIZE": 0})
    assert str(info.value) == (
        "settings.MELTEMI['MAX_BODY_SIZE']: expected a size in bytes such as 16384, 64K or 100M, from 1 to 1024G, got 0"
    )


@pytest.mark.parametrize(
    "cli, wake_each, stall_ms, sched_batch",
    [
        ({"dispatch": "lazy"}, False, 2, True),  # lazy dispatch, so SCHED_BATCH, with --threads 4
        ({"dispatch": "lazy", "threads": "1"}, False, 2, True),  # SCHED_BATCH with one handler thread
        ({"dispatch": "lazy", "threads": "1", "sched_batch": "off"}, False, 2, False),
        ({"dispatch": "lazy", "sched_batch": "on"}, False, 2, True),
        ({"dispatch": "lazy", "stall_ms": "0"}, False, 0, True),
        ({"dispatch": "lazy", "stall_ms": "10"}, False, 10, True),
        ({"dispatch": "eager"}, True, 0, False),  # every request wakes a handler: no stall to watch
    ],
)
def test_dispatch_policy(cli, wake_each, stall_ms, sched_batch):
    policy = worker_config(resolve(cli, {}, None)).dispatch
    assert policy == config.DispatchPolicy(wake_each=wake_each, stall_ms=stall_ms, sched_batch=sched_batch)


def test_defaults_of_the_build():
    """The GIL build: 4 threads, lazy dispatch (one handler runs at a time unless
    one blocks) with SCHED_BATCH. Free-threaded CPython without the GIL: one
    thread per core (at least 4), eager dispatch, so handlers run side by side."""
    resolved = resolve({}, {}, None)
    policy = worker_config(resolved).dispatch
    if config.FREE_THREADED:
        assert resolved.threads == max(4, os.cpu_count() or 1) and resolved.dispatch == "eager"
        assert policy == config.DispatchPolicy(wake_each=True, stall_ms=0, sched_batch=False)
    else:
        assert resolved.threads == 4 and resolved.dispatch == "lazy"
        assert policy == config.DispatchPolicy(wake_each=False, stall_ms=2, sched_batch=True)
    assert resolved.source("threads") == resolved.source("dispatch") == "default"


@needs_api
def test_the_test_client_runs_with_production_defaults(monkeypatch):
    """The TestClient's worker is built by worker.build from the resolved
    configuration: compression is on, as in production (it was off)."""
    import gzip
    import json

    from meltemi import API
    from meltemi.testing import TestClient

    for name in list(os.environ):
        if name.startswith(config.ENV_PREFIX):
            monkeypatch.delenv(name)
    api = API(prefix="", docs_url=None, openapi_url=None)
    api.add_route("/big", lambda: {"items": ["meltemi"] * 200}, ("GET",))
    with TestClient(api, app=hello) as client:
        production = worker_config(resolve({}, {}, None))
        assert worker_config(client.config) == dataclasses.replace(
            production, threads=1, dispatch=dataclasses.replace(production.dispatch, sched_batch=True)
        )
        r = client.get("/big", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert json.loads(gzip.decompress(r.content)) == {"items": ["meltemi"] * 200}
        # Without Accept-Encoding, as http.client and most test code send.
        assert client.get("/big").json() == {"items": ["meltemi"] * 200}


@needs_api
def test_the_test_client_takes_a_config():
    from meltemi import API
    from meltemi.testing import TestClient

    api = API(prefix="", docs_url=None, openapi_url=None)
    api.add_route("/big", lambda: {"items": ["meltemi"] * 200}, ("GET",))
    with TestClient(api, app=hello, config=resolve({"compress": "off"}, {}, None)) as client:
        r = client.get("/big", headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in r.headers


@needs_api
def test_the_api_takes_the_c_routers_methods_and_types():
    from meltemi.api import routing

    assert routing.METHODS is _core.API_METHODS
    assert _core.API_METHODS == ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    assert _core.API_PARAM_TYPES == ("int", "float", "uuid", "bool", "str", "path")
    with pytest.raises(ValueError, match="unsupported method 'TRACE'"):
        routing.Router().add_route("/x", hello, ("TRACE",))


@needs_api
def test_the_c_routers_422_is_the_body_python_made():
    from meltemi import API
    from meltemi.api.errors import path_error_body
    from meltemi.testing import TestClient

    api = API(prefix="", docs_url=None, openapi_url=None)

    def item(item_id: int, flag: bool):
        return {"item_id": item_id}

    api.add_route("/items/{item_id}/{flag}", item, ("GET",))
    with TestClient(api, app=hello) as client:
        r = client.get("/items/x/true")
        assert r.status_code == 422
        assert r.content == path_error_body("item_id", "int")
        # Byte for byte what C used to format itself.
        assert r.content == (
            b'{"detail":[{"loc":["path","item_id"],"msg":"Expected `int`, got `str`","type":"int_parsing"}]}'
        )
        assert client.get("/items/1/maybe").content == path_error_body("flag", "bool")
