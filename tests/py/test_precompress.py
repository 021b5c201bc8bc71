"""Precompressed static variants: _core.precompress_file, `python -m meltemi.precompress`,
`manage.py precompress` and the PrecompressedManifestStaticFilesStorage backend.

Every variant is decoded by the reference decoders (gzip, brotli, zstandard) and compared byte for byte."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import os
import random
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import brotli
import pytest
import zstandard
from conftest import ROOT

from meltemi import _core
from meltemi import precompress as pc

DECODE = {
    ".gz": gzip.decompress,
    ".br": brotli.decompress,
    ".zst": lambda data: zstandard.ZstdDecompressor().decompress(data),
}
SUFFIX = {"gzip": ".gz", "br": ".br", "zstd": ".zst"}


def text(n: int, seed: int = 0) -> bytes:
    """n bytes of compressible, JSON-like text."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "static", "meltemi", "django", "variant"]
    out = io.StringIO()
    while out.tell() < n:
        out.write(json.dumps({"id": rng.randrange(10**6), "name": " ".join(rng.choices(words, k=4))}) + "\n")
    return out.getvalue().encode()[:n]


def variants(path: Path) -> dict[str, Path]:
    return {s: Path(str(path) + s) for s in DECODE if Path(str(path) + s).exists()}


def assert_variants_decode(path: Path, suffixes=(".gz", ".br", ".zst")) -> None:
    original = path.read_bytes()
    found = variants(path)
    assert sorted(found) == sorted(suffixes), found
    src = path.stat()
    for suffix, variant in found.items():
        assert DECODE[suffix](variant.read_bytes()) == original, variant
        assert variant.stat().st_size < src.st_size
        assert variant.stat().st_mtime_ns == src.st_mtime_ns, "the variant carries the source's mtime"


def make_tree(root: Path, count: int = 200) -> list[Path]:
    kinds = [".css", ".js", ".json", ".svg", ".txt", ".html"]
    files = []
    for i in range(count):
        path = root / f"d{i % 7}" / f"sub{i % 3}" / f"f{i}{kinds[i % len(kinds)]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text(600 + 97 * i, seed=i))
        files.append(path)
    # Not candidates: already-compressed types and a variant-looking file.
    (root / "logo.png").write_bytes(os.urandom(4000))
    (root / "font.woff2").write_bytes(os.urandom(4000))
    (root / "archive.tar.gz").write_bytes(gzip.compress(text(5000)))
    return files


# ---- _core.precompress_file -------------------------------------------------


def test_variants_decode_to_the_original(tmp_path):
    path = tmp_path / "app.css"
    path.write_bytes(text(200_000))
    path.chmod(0o640)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    assert _core.precompress_file(str(path)) == ["zstd", "br", "gzip"]
    assert_variants_decode(path)
    for variant in variants(path).values():
        assert stat.S_IMODE(variant.stat().st_mode) == 0o640
        assert variant.stat().st_mtime_ns == 1_700_000_000_987_654_321
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.css", "app.css.br", "app.css.gz", "app.css.zst"]


def test_codings_order_and_path_like(tmp_path):
    path = tmp_path / "a.js"
    path.write_bytes(text(5000))
    assert _core.precompress_file(path, "gzip, ZSTD") == ["gzip", "zstd"]
    assert_variants_decode(path, (".gz", ".zst"))
    assert _core.precompress_file(path, "") == []


def test_empty_and_tiny_inputs(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert _core.precompress_file(str(empty), min_size=0) == []
    one = tmp_path / "one.txt"
    one.write_bytes(b"x" * 600)
    assert _core.precompress_file(str(one)) == ["zstd", "br", "gzip"]
    assert_variants_decode(one)


def test_levels(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(text(50_000))
    # gzip's XFL header byte: 2 for the slowest level, 4 for the fastest.
    _core.precompress_file(str(path), "gzip")
    assert Path(str(path) + ".gz").read_bytes()[8] == 2
    _core.precompress_file(str(path), "gzip", levels={"gzip": 1})
    assert Path(str(path) + ".gz").read_bytes()[8] == 4
    assert_variants_decode(path, (".gz",))
    assert _core.precompress_file(str(path), "zstd,br", levels={"zstd": 1, "br": 0, "x-gzip": 5}) == ["zstd", "br"]
    assert_variants_decode(path, (".gz", ".zst", ".br"))
    with pytest.raises(ValueError, match="out of range for zstd"):
        _core.precompress_file(str(path), levels={"zstd": 23})
    with pytest.raises(ValueError, match="out of range for br"):
        _core.precompress_file(str(path), levels={"br": -1})
    with pytest.raises(ValueError, match="unknown content coding"):
        _core.precompress_file(str(path), levels={"lz4": 1})
    with pytest.raises(TypeError):
        _core.precompress_file(str(path), levels={"gzip": "9"})
    with pytest.raises(TypeError):
        _core.precompress_file(str(path), levels=[("gzip", 9)])
    with pytest.raises(ValueError, match="unknown content coding 'lz4'"):
        _core.precompress_file(str(path), "gzip,lz4")
    with pytest.raises(ValueError, match="min_size"):
        _core.precompress_file(str(path), min_size=-1)


def test_small_and_incompressible_files_get_no_variant(tmp_path):
    small = tmp_path / "small.css"
    small.write_bytes(b"body{}" * 50)  # 300 bytes, under min_size
    noise = tmp_path / "noise.txt"
    noise.write_bytes(random.Random(1).randbytes(20_000))
    for path in (small, noise):
        # A stale variant from an earlier run (when the file was different) is removed.
        for suffix in DECODE:
            Path(str(path) + suffix).write_bytes(b"stale")
        assert _core.precompress_file(str(path)) == []
        assert variants(path) == {}
    # Below min_size by the caller's choice too.
    big = tmp_path / "big.json"
    big.write_bytes(text(10_000))
    assert _core.precompress_file(str(big), min_size=10_001) == []
    assert _core.precompress_file(str(big), min_size=10_000) == ["zstd", "br", "gzip"]


def test_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.css"
    with pytest.raises(FileNotFoundError) as info:
        _core.precompress_file(str(missing))
    assert info.value.filename == str(missing)
    with pytest.raises(IsADirectoryError) as info:
        _core.precompress_file(str(tmp_path))
    assert info.value.filename == str(tmp_path)
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="Not a regular file"):  # and it does not block on open
        _core.precompress_file(str(fifo))
    # The variant cannot be written: its name is taken by a directory.
    path = tmp_path / "a.css"
    path.write_bytes(text(5000))
    Path(str(path) + ".gz").mkdir()
    with pytest.raises(OSError) as info:
        _core.precompress_file(str(path), "gzip")
    assert info.value.filename == str(path) + ".gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.css", "a.css.gz", "pipe.txt"], "no temporary file left"
    with pytest.raises(ValueError):
        _core.precompress_file(str(path) + "\0x")


def test_the_gil_is_released(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(text(3_000_000))
    done = threading.Event()
    ticks = 0

    def work():
        try:
            _core.precompress_file(str(path), "zstd,br")
        finally:
            done.set()

    thread = threading.Thread(target=work)
    start = time.monotonic()
    thread.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    thread.join()
    elapsed = time.monotonic() - start
    assert elapsed > 0.2, "the file should take a while at zstd 19 and br 11"
    # Holding the GIL, the call would leave this loop no tick at all until it returned.
    assert ticks > max(10, elapsed * 20), (ticks, elapsed)
    assert_variants_decode(path, (".zst", ".br"))


# ---- meltemi.precompress -------------------------------------------------------


def test_compressible_names():
    for name in ["app.css", "app.4f3a9c1b2d3e.js", "m.mjs", "x.map", "d.json", "i.svg", "r.txt", "p.html", "f.ttf"]:
        assert pc.is_compressible(name), name
    for name in ["a.png", "a.jpg", "f.woff2", "f.woff", "x.css.gz", "x.css.br", "x.css.zst", "z.zip", "noext", "v.mp4"]:
        assert not pc.is_compressible(name), name
    assert _core.compressible_type("text/css; charset=utf-8")
    assert not _core.compressible_type("image/png")


def test_tree_in_parallel_then_unchanged_then_changed(tmp_path, monkeypatch):
    files = make_tree(tmp_path)
    active = peak = 0
    lock = threading.Lock()
    real = _core.precompress_file

    def counting(*args):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return real(*args)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(pc._core, "precompress_file", counting)
    result = pc.precompress_root(str(tmp_path), jobs=4)
    assert (result.files, result.compressed, result.unchanged, result.no_gain, result.errors) == (200, 200, 0, 0, [])
    assert peak >= 2, "the files were compressed on several threads at once"
    assert result.bytes_in == sum(p.stat().st_size for p in files)
    assert set(result.bytes_out) == {"zstd", "br", "gzip"}
    assert 0 < result.best_out < min(result.bytes_out.values()) * 1.01
    for path in files:
        assert_variants_decode(path)
    assert not variants(tmp_path / "logo.png") and not variants(tmp_path / "font.woff2")
    assert not Path(str(tmp_path / "archive.tar.gz") + ".gz").exists()

    monkeypatch.setattr(pc._core, "precompress_file", real)
    again = pc.precompress_root(str(tmp_path), jobs=4)
    assert (again.files, again.compressed, again.unchanged) == (200, 0, 200)

    # One file gets new content, another only a new mtime: both are redone, the rest skipped.
    files[5].write_bytes(text(3000, seed=999))
    st = files[9].stat()
    os.utime(files[9], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = pc.precompress_root(str(tmp_path), jobs=2)
    assert (third.compressed, third.unchanged) == (2, 198)
    assert_variants_decode(files[5])
    assert_variants_decode(files[9])

    forced = pc.precompress_root(str(tmp_path), jobs=2, force=True)
    assert (forced.compressed, forced.unchanged) == (200, 0)


def test_new_codings_are_added_later(tmp_path):
    path = tmp_path / "a.css"
    path.write_bytes(text(8000))
    assert pc.precompress_root(str(tmp_path), "gzip").compressed == 1
    assert sorted(variants(path)) == [".gz"]
    gz_before = Path(str(path) + ".gz").stat().st_ino
    result = pc.precompress_root(str(tmp_path))
    assert result.compressed == 1 and result.bytes_out.keys() == {"zstd", "br"}, "only the missing codings"
    assert Path(str(path) + ".gz").stat().st_ino == gz_before
    assert_variants_decode(path)
    assert pc.precompress_root(str(tmp_path)).unchanged == 1


def test_small_and_incompressible_in_a_tree(tmp_path):
    (tmp_path / "small.css").write_bytes(b"a{}")
    noise = tmp_path / "noise.txt"
    noise.write_bytes(random.Random(2).randbytes(5000))
    stale = Path(str(noise) + ".br")
    stale.write_bytes(b"old")
    result = pc.precompress_root(str(tmp_path))
    assert (result.files, result.compressed, result.no_gain) == (2, 0, 2)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.txt", "small.css"]


def test_progress_bar_on_a_tty(tmp_path):
    make_tree(tmp_path, 20)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out, err = Tty(), io.StringIO()
    assert pc.run(str(tmp_path), {"jobs": 2}, out=out, err=err) == 0
    text_out = out.getvalue()
    assert text_out.startswith("\r[")
    assert "] 20/20 files  " in text_out and " -> " in text_out
    assert text_out.splitlines()[-1].startswith("precompressed 20 of 20 files")
    assert err.getvalue() == ""


def subprocess_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as conftest does: Django compiled once, not per process
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "meltemi.precompress", *args],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=subprocess_env(),
        timeout=120,
    )


def test_cli(tmp_path):
    make_tree(tmp_path, 30)
    first = run_cli(str(tmp_path), "--jobs", "2")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    lines = first.stdout.splitlines()
    assert len(lines) == 1 and "\r" not in first.stdout, "not a TTY: one summary line"
    assert lines[0].startswith("precompressed 30 of 30 files, ")
    assert "0 unchanged" in lines[0] and " -> zstd " in lines[0]
    second = run_cli(str(tmp_path))
    assert second.stdout.startswith("precompressed 0 of 30 files, 30 unchanged, 0 not worth compressing in ")
    quiet = run_cli(str(tmp_path), "--force", "--quiet", "--codings", "gzip")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_cli_errors(tmp_path):
    missing = run_cli(str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"precompress: the static root {tmp_path / 'nope'} does not exist"
    (tmp_path / "file").write_text("x")
    not_dir = run_cli(str(tmp_path / "file"))
    assert not_dir.returncode == 1 and "is not a directory" in not_dir.stderr, not_dir.stderr
    bad = run_cli(str(tmp_path), "--codings", "gzip,lz4")
    assert bad.returncode == 1 and "unknown content coding 'lz4'" in bad.stderr, bad.stderr
    jobs = run_cli(str(tmp_path), "--jobs", "0")
    assert jobs.returncode == 1 and "--jobs" in jobs.stderr, jobs.stderr
    # A file that cannot be precompressed is reported, the others are done, and the exit status is 1.
    (tmp_path / "ok.css").write_bytes(text(3000))
    (tmp_path / "bad.css").write_bytes(text(3000))
    (tmp_path / "bad.css.gz").mkdir()
    failed = run_cli(str(tmp_path))
    assert failed.returncode == 1
    assert f"precompress: {tmp_path / 'bad.css'}: " in failed.stderr and "bad.css.gz" in failed.stderr
    assert "1 failed" in failed.stdout
    assert_variants_decode(tmp_path / "ok.css")


# ---- Django --------------------------------------------------------------------

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.staticfiles", "meltemi.django"]
STATIC_URL = "static/"
STATICFILES_DIRS = [{src!r}]
{root}
STORAGES = {{"staticfiles": {{"BACKEND": {backend!r}}}}}
"""


def django_project(tmp_path: Path, static_root: Path | None, backend: str) -> dict:
    src = tmp_path / "src"
    (src / "css").mkdir(parents=True)
    (src / "css" / "app.css").write_text('@import "base.css";\nbody { background: url("../img/bg.png"); }\n' * 40)
    (src / "css" / "base.css").write_text("p { margin: 0 }\n" * 100)
    (src / "img").mkdir()
    (src / "img" / "bg.png").write_bytes(os.urandom(2000))
    (src / "tiny.js").write_text("x=1")
    root = f"STATIC_ROOT = {str(static_root)!r}" if static_root else ""
    (tmp_path / "pcsettings.py").write_text(SETTINGS.format(src=str(src), root=root, backend=backend))
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")])
    env["DJANGO_SETTINGS_MODULE"] = "pcsettings"
    return env


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "django", *args], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=120
    )


def test_management_command(tmp_path):
    static_root = tmp_path / "static"
    env = django_project(tmp_path, static_root, "django.contrib.staticfiles.storage.StaticFilesStorage")
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    first = manage(env, "precompress", "--jobs", "2")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("precompressed 2 of 3 files, "), first.stdout
    assert first.stdout.count("\n") == 1
    assert "1 not worth compressing" in first.stdout
    assert_variants_decode(static_root / "css" / "app.css")
    assert_variants_decode(static_root / "css" / "base.css")
    assert not variants(static_root / "tiny.js") and not variants(static_root / "img" / "bg.png")
    second = manage(env, "precompress")
    assert second.returncode == 0 and "2 unchanged" in second.stdout

    unset = django_project(tmp_path / "unset", None, "django.contrib.staticfiles.storage.StaticFilesStorage")
    failed = manage(unset, "precompress")
    assert failed.returncode == 1
    assert "STATIC_ROOT is not set" in failed.stderr
    missing = manage(
        django_project(tmp_path / "m", tmp_path / "never", "django.contrib.staticfiles.storage.StaticFilesStorage"),
        "precompress",
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_storage_backend_precompresses_collectstatic(tmp_path):
    static_root = tmp_path / "static"
    env = django_project(tmp_path, static_root, "meltemi.django.storage.PrecompressedManifestStaticFilesStorage")
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = static_root / manifest["css/app.css"]
    assert hashed.name != "app.css" and b"base." in hashed.read_bytes()
    for name in ("css/app.css", "css/base.css"):
        assert_variants_decode(static_root / name)
        assert_variants_decode(static_root / manifest[name])
    assert not variants(static_root / manifest["img/bg.png"])
    assert not variants(static_root / "tiny.js")
    # collectstatic again: the unchanged copies keep their variants (Django rewrites the hashed files
    # whose references it adjusts, so theirs are redone, and still match).
    before = {p: p.stat().st_ino for p in (static_root / "css").glob("*.css.zst") if p.name.count(".") == 2}
    assert len(before) == 2
    again = manage(env, "collectstatic", "--noinput")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_ino for p in before} == before
    for name in ("css/app.css", "css/base.css"):
        assert_variants_decode(static_root / manifest[name])


# ---- served by meltemi ---------------------------------------------------------


def test_variants_are_served_by_the_static_handler(tmp_path, start_server):
    files = make_tree(tmp_path, 12)
    assert pc.precompress_root(str(tmp_path)).compressed == 12
    server = start_server("apps:hello", "--static", f"/static/={tmp_path}")
    server.wait_for("Listening at")
    for path in files[:6]:
        name = path.relative_to(tmp_path).as_posix()
        for accept, coding in [("zstd, br, gzip", "zstd"), ("br;q=1, gzip;q=0.5", "br"), ("gzip", "gzip"), ("", None)]:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
            conn.request("GET", f"/static/{name}", headers={"Accept-Encoding": accept} if accept else {})
            response = conn.getresponse()
            body = response.read()
            conn.close()
            assert response.status == 200, name
            assert response.getheader("Content-Encoding") == coding, (name, accept)
            if coding:
                assert body == Path(str(path) + SUFFIX[coding]).read_bytes()
                assert DECODE[SUFFIX[coding]](body) == path.read_bytes()
            else:
                assert body == path.read_bytes()
