"""`python -m meltemi.precompress ROOT`: writes the precompressed variants of a static root.

meltemi's static file handler (src/core/static/static.c) answers a request for
`app.css` with `app.css.zst`, `app.css.br` or `app.css.gz` when the client
accepts that coding and the variant is not older than the file.  This command
writes those variants once, at the highest levels (zstd 19, brotli 11, gzip 9),
typically right after `collectstatic` (or through `manage.py precompress`, or
the storage backend `meltemi.django.storage.PrecompressedManifestStaticFilesStorage`).

- Only files of a compressible type are considered (the server's allowlist:
  text, JSON, XML, JavaScript, SVG, uncompressed fonts...); images, archives,
  woff2 and the variants themselves are not.
- A variant is written only when it is smaller than the file, atomically
  (a temporary file renamed), and with the file's mtime: a later run skips the
  files whose variants all carry the same mtime as the file (unchanged since),
  unless --force.  Files below --min-size get no variant; a variant left over
  from an earlier run that no longer helps is removed.
- The compression runs in C without the GIL, on --jobs threads at once.

Exit status: 0, or 1 when the root is missing or a file could not be written.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from . import _core

CODINGS = ("zstd", "br", "gzip")
SUFFIXES = {"zstd": ".zst", "br": ".br", "gzip": ".gz"}
DEFAULT_LEVELS = {"zstd": 19, "br": 11, "gzip": 9}
MIN_SIZE = 512

# The content types src/core/static/static.c answers with, by extension: they decide,
# before Python's mimetypes (which depends on the system's mime.types).
STATIC_TYPES = {
    "avif": "image/avif",
    "bmp": "image/bmp",
    "css": "text/css",
    "csv": "text/csv",
    "eot": "application/vnd.ms-fontobject",
    "gif": "image/gif",
    "gz": "application/gzip",
    "htm": "text/html",
    "html": "text/html",
    "ico": "image/x-icon",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "js": "text/javascript",
    "json": "application/json",
    "jsonld": "application/ld+json",
    "m4a": "audio/mp4",
    "map": "application/json",
    "md": "text/markdown",
    "mjs": "text/javascript",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "ogv": "video/ogg",
    "otf": "font/otf",
    "pdf": "application/pdf",
    "png": "image/png",
    "svg": "image/svg+xml",
    "tar": "application/x-tar",
    "ttf": "font/ttf",
    "txt": "text/plain",
    "wasm": "application/wasm",
    "wav": "audio/wav",
    "webm": "video/webm",
    "webmanifest": "application/manifest+json",
    "webp": "image/webp",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "xml": "text/xml",
    "zip": "application/zip",
    "zst": "application/zstd",
}
VARIANT_SUFFIXES = (".zst", ".br", ".gz")


def content_type(name: str) -> str | None:
    """The content type of a file name: static.c's table, then mimetypes."""
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if ext in STATIC_TYPES:
        return STATIC_TYPES[ext]
    return mimetypes.guess_type(name, strict=False)[0]


def is_compressible(name: str) -> bool:
    """Whether a file name is worth precompressing: a compressible type, not a variant itself."""
    if name.endswith(VARIANT_SUFFIXES):
        return False
    kind = content_type(name)
    return kind is not None and _core.compressible_type(kind)


def parse_codings(text: str | Iterable[str]) -> tuple[str, ...]:
    """ "zstd,br,gzip" (or a list) as canonical coding names; ValueError for an unknown one."""
    names = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        name = {"x-gzip": "gzip"}.get(name, name)
        if name not in SUFFIXES:
            raise ValueError(f"unknown content coding {raw.strip()!r} (choose from zstd, br, gzip)")
        if name not in out:
            out.append(name)
    return tuple(out)


def stale_codings(path: str, codings: Iterable[str], min_size: int = MIN_SIZE) -> tuple[list[str], int]:
    """The codings whose variant of `path` needs (re)writing, and the file's size.

    A variant is up to date when it carries the file's mtime (precompress_file
    copies it).  A file below `min_size` needs nothing unless an old variant is
    there to remove.  A file whose earlier run found a coding not worth it has
    no variant for it, so that coding is tried again."""
    st = os.stat(path)
    todo = []
    for coding in codings:
        try:
            vst = os.stat(path + SUFFIXES[coding])
        except FileNotFoundError:
            if st.st_size >= min_size:
                todo.append(coding)
            continue
        if st.st_size < min_size or vst.st_mtime_ns != st.st_mtime_ns or not stat.S_ISREG(vst.st_mode):
            todo.append(coding)
    return todo, st.st_size


def walk(root: str) -> Iterator[str]:
    """The compressible files under root, in a stable order (symbolic links to directories not followed)."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        dirnames.sort()
        for name in sorted(filenames):
            if is_compressible(name):
                yield os.path.join(dirpath, name)


def _raise(exc: OSError) -> None:
    raise exc


@dataclass
class Result:
    """What a run did.  `files` counts the candidates; each ends in exactly one of
    compressed (at least one variant written), unchanged (skipped: variants up to
    date), no_gain (no variant written: too small or incompressible) or errors."""

    files: int = 0
    compressed: int = 0
    unchanged: int = 0
    no_gain: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    bytes_in: int = 0  # the files compressed in this run
    bytes_out: dict[str, int] = field(default_factory=dict)  # their variants, by coding
    best_out: int = 0  # the smallest representation of each, summed
    done: int = 0  # files handled so far (for progress)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"precompressed {self.compressed} of {self.files} files"]
        if self.compressed:
            sizes = ", ".join(f"{c} {human(n)}" for c, n in self.bytes_out.items())
            parts.append(f"{human(self.bytes_in)} -> {sizes}")
        parts.append(f"{self.unchanged} unchanged")
        parts.append(f"{self.no_gain} not worth compressing")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def precompress(
    paths: Iterable[str],
    codings: str | Iterable[str] = CODINGS,
    *,
    jobs: int | None = None,
    force: bool = False,
    levels: dict[str, int] | None = None,
    min_size: int = MIN_SIZE,
    progress: Callable[[Result], None] | None = None,
) -> Result:
    """Precompresses the given files on `jobs` threads (default: the CPU count).

    `progress` is called (from the calling thread) after each file.  Failures
    of single files are collected in Result.errors, not raised."""
    codings = parse_codings(codings)
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    paths = list(paths)
    result = Result(files=len(paths))
    lock = threading.Lock()
    start = time.monotonic()

    def one(path: str) -> None:
        try:
            todo, size = stale_codings(path, codings, min_size)
            if force:
                todo = list(codings)
            if not todo:
                kind = "unchanged" if size >= min_size else "no_gain"
                written: list[str] = []
            else:
                written = _core.precompress_file(path, ",".join(todo), levels, min_size)
                if written:
                    kind = "compressed"
                else:
                    # Nothing new: still unchanged when the other codings' variants are current.
                    current = [c for c in codings if c not in todo and os.path.exists(path + SUFFIXES[c])]
                    kind = "unchanged" if current else "no_gain"
            sizes = {c: os.stat(path + SUFFIXES[c]).st_size for c in written}
        except OSError as exc:
            with lock:
                result.errors.append((path, str(exc)))
            return
        with lock:
            setattr(result, kind, getattr(result, kind) + 1)
            if written:
                result.bytes_in += size
                for c in codings:
                    if c in sizes:
                        result.bytes_out[c] = result.bytes_out.get(c, 0) + sizes[c]
                result.best_out += min(sizes.values())

    with ThreadPoolExecutor(max_workers=min(jobs, max(1, len(paths)))) as pool:
        for _ in as_completed([pool.submit(one, path) for path in paths]):
            result.done += 1
            result.seconds = time.monotonic() - start
            if progress:
                progress(result)
    result.seconds = time.monotonic() - start
    return result


def precompress_root(root: str, codings: str | Iterable[str] = CODINGS, **options) -> Result:
    """Precompresses the compressible files under the directory `root` (see precompress())."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no such directory: {root}")
    return precompress(walk(root), codings, **options)


class ProgressBar:
    """`[####      ] 123/456 files  12.3 MB -> 3.4 MB` redrawn in place, at most 10 times a second."""

    WIDTH = 30

    def __init__(self, stream) -> None:
        self.stream = stream
        self.last = 0.0

    def __call__(self, r: Result) -> None:
        now = time.monotonic()
        if r.done < r.files and now - self.last < 0.1:
            return
        self.last = now
        filled = self.WIDTH * r.done // r.files if r.files else self.WIDTH
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {r.done}/{r.files} files  {human(r.bytes_in)} -> {human(r.best_out)}")
        self.stream.flush()

    def close(self) -> None:
        if self.last:
            self.stream.write("\n")
            self.stream.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by this command and `manage.py precompress`."""
    parser.add_argument(
        "--codings",
        default=",".join(CODINGS),
        help="comma-separated codings to write: zstd (.zst), br (.br), gzip (.gz); default: %(default)s",
    )
    parser.add_argument("--jobs", "-j", type=int, default=None, help="threads (default: the CPU count)")
    parser.add_argument("--force", action="store_true", help="recompress files even when their variants are current")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--min-size", type=int, default=MIN_SIZE, help="smaller files get no variant (default: %(default)s bytes)"
    )


def run(root: str, options: dict, out=None, err=None) -> int:
    """Runs the command on `root` with parsed `options`; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        codings = parse_codings(options.get("codings") or ",".join(CODINGS))
    except ValueError as exc:
        err.write(f"precompress: {exc}\n")
        return 1
    if not codings:
        err.write("precompress: no codings given\n")
        return 1
    jobs = options.get("jobs")
    if jobs is not None and jobs < 1:
        err.write("precompress: --jobs must be at least 1\n")
        return 1
    if not os.path.isdir(root):
        what = "is not a directory" if os.path.exists(root) else "does not exist"
        err.write(f"precompress: the static root {root} {what}\n")
        return 1
    quiet = options.get("quiet", False)
    bar = ProgressBar(out) if not quiet and _isatty(out) else None
    try:
        result = precompress_root(
            root,
            codings,
            jobs=jobs,
            force=options.get("force", False),
            min_size=options.get("min_size", MIN_SIZE),
            progress=bar,
        )
    except OSError as exc:
        if bar:
            bar.close()
        err.write(f"precompress: cannot read {root}: {exc}\n")
        return 1
    if bar:
        bar.close()
    for path, message in result.errors:
        err.write(f"precompress: {path}: {message}\n")
    if not quiet:
        out.write(result.summary() + "\n")
    return 1 if result.errors else 0


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meltemi.precompress",
        description="Writes .zst, .br and .gz variants beside the compressible files of a static root, "
        "for meltemi's static file handler.",
    )
    parser.add_argument("root", help="the directory to precompress (STATIC_ROOT after collectstatic)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.root, vars(args))


if __name__ == "__main__":
    sys.exit(main())
