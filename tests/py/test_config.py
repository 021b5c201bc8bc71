"""The configuration table: precedence, validation messages, generated docs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from meltemi import config
from meltemi.cli import build_parser
from meltemi.config import Address, ConfigError, resolve


def parse_cli(*argv: str) -> dict:
    return config.cli_values(build_parser().parse_args(["app:app", *argv]))


def test_defaults():
    resolved = resolve({}, {}, None)
    assert resolved.bind == (Address("127.0.0.1", 8000),)
    assert resolved.workers == 1
    assert resolved.threads == 4
    assert resolved.max_requests == 0
    assert resolved.graceful_timeout == 30.0
    assert resolved.head_timeout == 10.0
    assert resolved.keepalive_timeout == 5.0
    assert resolved.max_request_line == 8190
    assert resolved.max_head_size == 16384
    assert resolved.max_body_size == 100 * 1024 * 1024
    assert resolved.max_connections == 10000
    assert resolved.backlog == 2048
    assert resolved.access_log is None
    assert resolved.log_level == "info"
    assert resolved.preload is False
    assert all(resolved.source(option.name) == "default" for option in config.OPTIONS)


def test_precedence_cli_then_env_then_django_then_default():
    django = {"WORKERS": 2, "THREADS": 3, "MAX_REQUESTS": 7, "BACKLOG": 100}
    environ = {"MELTEMI_WORKERS": "5", "MELTEMI_THREADS": "6"}
    resolved = resolve(parse_cli("--workers", "9"), environ, django)
    assert resolved.workers == 9 and resolved.source("workers") == "--workers"
    assert resolved.threads == 6 and resolved.source("threads") == "MELTEMI_THREADS"
    assert resolved.max_requests == 7 and resolved.source("max_requests") == "settings.MELTEMI"
    assert resolved.backlog == 100
    assert resolved.head_timeout == 10.0 and resolved.source("head_timeout") == "default"


def test_empty_environment_variable_counts_as_unset():
    assert resolve({}, {"MELTEMI_WORKERS": ""}, {"WORKERS": 3}).workers == 3


def test_repeated_bind_replaces_lower_sources():
    resolved = resolve(
        parse_cli("--bind", "127.0.0.1:0", "-b", "[::1]:8001", "--bind", "unix:/tmp/m.sock"),
        {"MELTEMI_BIND": "0.0.0.0:80"},
        None,
    )
    assert resolved.bind == (Address("127.0.0.1", 0), Address("::1", 8001), Address(path="/tmp/m.sock"))
    from_env = resolve({}, {"MELTEMI_BIND": "127.0.0.1:1, unix:/run/a.sock  [::]:3"}, None)
    assert from_env.bind == (Address("127.0.0.1", 1), Address(path="/run/a.sock"), Address("::", 3))
    from_django = resolve({}, {}, {"BIND": "0.0.0.0:8080"})
    assert from_django.bind == (Address("0.0.0.0", 8080),)
    assert resolve({}, {}, {"BIND": ["localhost:1", "unix:x.sock"]}).bind == (
        Address("localhost", 1),
        Address(path="x.sock"),
    )


def test_values_from_django_may_be_python_values_or_text():
    resolved = resolve(
        {},
        {},
        {
            "WORKERS": "auto",
            "GRACEFUL_TIMEOUT": 2,
            "KEEPALIVE_TIMEOUT": "0.5",
            "MAX_BODY_SIZE": "1M",
            "PRELOAD": True,
            "ACCESS_LOG": True,
            "LOG_LEVEL": "WARNING",
        },
    )
    assert resolved.workers == (os.cpu_count() or 1)
    assert resolved.graceful_timeout == 2.0
    assert resolved.keepalive_timeout == 0.5
    assert resolved.max_body_size == 1 << 20
    assert resolved.preload is True
    assert resolved.access_log == "-"
    assert resolved.log_level == "warning"
    # Keys that are not server options belong to other parts of meltemi.
    assert resolve({}, {}, {"API": "myproject.api.api"}).workers == 1


@pytest.mark.parametrize(
    "text, value",
    [("16384", 16384), ("64K", 65536), ("64k", 65536), ("64KiB", 65536), ("100M", 100 << 20), ("1G", 1 << 30)],
)
def test_sizes(text, value):
    assert resolve({}, {"MELTEMI_MAX_HEAD_SIZE": text}, None).max_head_size == value


def test_flags_and_access_log_on_the_command_line():
    assert resolve(parse_cli("--preload"), {}, None).preload is True
    assert resolve(parse_cli("--no-preload"), {"MELTEMI_PRELOAD": "yes"}, None).preload is False
    assert resolve(parse_cli("--access-log", "-"), {}, None).access_log == "-"
    assert resolve(parse_cli("--access-log", "/tmp/a.log"), {}, None).access_log == "/tmp/a.log"
    assert resolve(parse_cli("--access-log", "off"), {"MELTEMI_ACCESS_LOG": "-"}, None).access_log is None


@pytest.mark.parametrize(
    "cli, environ, django, message",
    [
        (["--workers", "x"], {}, None, "--workers: expected a positive integer or 'auto', got 'x'"),
        (["--workers", "0"], {}, None, "--workers: expected a positive integer or 'auto', got '0'"),
        (["--threads", "-1"], {}, None, "--threads: expected a positive integer, got '-1'"),
        ([], {"MELTEMI_THREADS": "many"}, None, "MELTEMI_THREADS: expected a positive integer, got 'many'"),
        ([], {}, {"WORKERS": "x"}, "settings.MELTEMI['WORKERS']: expected a positive integer or 'auto', got 'x'"),
        ([], {}, {"WORKERS": True}, "settings.MELTEMI['WORKERS']: expected a positive integer or 'auto', got True"),
        (
            ["--bind", "localhost"],
            {},
            None,
            "--bind: expected HOST:PORT, [IPV6]:PORT or unix:PATH, got 'localhost'",
        ),
        (
            ["--bind", "1.2.3.4:70000"],
            {},
            None,
            "--bind: expected HOST:PORT, [IPV6]:PORT or unix:PATH, got '1.2.3.4:70000'",
        ),
        ([], {}, {"BIND": []}, "settings.MELTEMI['BIND']: expected HOST:PORT, [IPV6]:PORT or unix:PATH, got []"),
        (["--graceful-timeout", "soon"], {}, None, "--graceful-timeout: expected a number of seconds >= 0, got 'soon'"),
        (["--head-timeout", "0"], {}, None, "--head-timeout: expected a number of seconds > 0, got '0'"),
        (["--head-timeout", "nan"], {}, None, "--head-timeout: expected a number of seconds > 0, got 'nan'"),
        (
            ["--max-body-size", "10X"],
            {},
            None,
            "--max-body-size: expected a size in bytes such as 16384, 64K or 100M, got '10X'",
        ),
        (["--log-level", "loud"], {}, None, "--log-level: expected one of debug, info, warning, error, got 'loud'"),
        (
            [],
            {"MELTEMI_PRELOAD": "maybe"},
            None,
            "MELTEMI_PRELOAD: expected a boolean (true/false, yes/no, on/off, 1/0), got 'maybe'",
        ),
    ],
)
def test_bad_values_name_their_source(cli, environ, django, message):
    with pytest.raises(ConfigError) as info:
        resolve(parse_cli(*cli), environ, django)
    assert str(info.value) == message


def test_django_setting_must_be_a_dict():
    with pytest.raises(ConfigError, match=r"settings.MELTEMI: expected a dict, got list"):
        resolve({}, {}, ["WORKERS", 2])


def test_worker_options_are_the_core_keywords():
    resolved = resolve(parse_cli("--workers", "2", "--threads", "8", "--max-body-size", "1K"), {}, None)
    options = config.worker_options(resolved)
    assert options == {
        "threads": 8,
        "max_request_line": 8190,
        "max_head_size": 16384,
        "max_headers": 100,
        "max_body_size": 1024,
        "head_timeout": 10.0,
        "body_timeout": 30.0,
        "keepalive_timeout": 5.0,
        "write_timeout": 30.0,
        "write_buffer": 262144,
        "max_connections": 10000,
        "url_scheme": "http",
        "multiprocess": True,
        "compress": "zstd,br,gzip",
        "compress_min_size": 512,
        "gzip_level": 6,
        "brotli_level": 4,
        "zstd_level": 3,
        "static": [],
        "static_max_age": 60,
        "static_compress_cache": 16 << 20,
        "breach_padding": False,
        "access_log_format": "common",
        "request_id_header": "X-Request-ID",
        "forwarded_allow_ips": "127.0.0.0/8,::1/128,unix",
    }


def test_compression_and_static_options(tmp_path, monkeypatch):
    (tmp_path / "public").mkdir()
    (tmp_path / "media").mkdir()
    monkeypatch.chdir(tmp_path)
    resolved = resolve(
        parse_cli("--compress", "gzip, br", "--static", "/assets=public", "--static", "/m/=media"), {}, None
    )
    options = config.worker_options(resolved)
    assert options["compress"] == "gzip,br"
    assert options["static"] == [("/assets/", os.path.abspath("public")), ("/m/", os.path.abspath("media"))]
    assert config.worker_options(resolve(parse_cli("--compress", "off"), {}, None))["compress"] == ""
    with pytest.raises(ConfigError, match="--compress: expected a comma-separated list"):
        resolve(parse_cli("--compress", "deflate"), {}, None)
    with pytest.raises(ConfigError, match="--static: expected URL_PREFIX=DIRECTORY"):
        resolve(parse_cli("--static", "static"), {}, None)
    with pytest.raises(ConfigError, match="--static: expected URL_PREFIX=DIRECTORY .an existing directory."):
        resolve(parse_cli("--static", "/s/=missing"), {}, None)
    with pytest.raises(ConfigError, match="--gzip-level: expected an integer from 1 to 9, got '10'"):
        resolve(parse_cli("--gzip-level", "10"), {}, None)


def test_each_option_is_declared_once_with_flag_env_and_setting():
    names = [option.name for option in config.OPTIONS]
    assert len(names) == len(set(names))
    for option in config.OPTIONS:
        assert option.flag == "--" + option.name.replace("_", "-")
        assert option.env == "MELTEMI_" + option.name.upper()
        assert option.setting == option.name.upper()
        assert option.help.endswith(".") and option.section in config.SECTIONS
        # The default, written as the docs show it, parses back to itself.
        if option.multiple:
            assert tuple(option.type.parse(text) for text in option.show_default().split()) == option.default
        else:
            assert option.type.parse(option.show_default()) == option.default


def test_config_docs_are_fresh():
    """docs/config.md is generated; edit meltemi/config.py and run scripts/gen_config_docs.py."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "config.md").read_text()
    assert text.splitlines()[0].startswith("<!-- Generated by scripts/gen_config_docs.py")
    for option in config.OPTIONS:
        assert f"### {option.name.replace('_', '-')}" in text
        assert option.env in text
