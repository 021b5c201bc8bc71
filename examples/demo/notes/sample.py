"""The file served by /download/: 256 KiB of deterministic bytes, generated into MEDIA_ROOT."""

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings

SAMPLE_NAME = "meltemi-sample.bin"
SAMPLE_SIZE = 256 * 1024


def sample_bytes() -> bytes:
    """Concatenated SHA-256 digests of a counter: incompressible, yet the same on every machine."""
    blocks = (hashlib.sha256(b"meltemi-demo-%d" % i).digest() for i in range(SAMPLE_SIZE // 32))
    return b"".join(blocks)


def sample_path() -> Path:
    return Path(settings.MEDIA_ROOT) / "downloads" / SAMPLE_NAME


def ensure_sample_file() -> Path:
    """Writes the sample file unless it is already there; atomic, so concurrent workers can race safely."""
    path = sample_path()
    try:
        if path.stat().st_size == SAMPLE_SIZE:
            return path
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sample-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(sample_bytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
