"""A staticfiles storage that precompresses what collectstatic writes.

    STORAGES = {
        ...,
        "staticfiles": {"BACKEND": "meltemi.django.storage.PrecompressedManifestStaticFilesStorage"},
    }

`collectstatic` then writes the hashed names of ManifestStaticFilesStorage and,
once they are all written, the .zst, .br and .gz variants of the compressible
ones (and of their unhashed copies) that are not current already, in parallel.
It is the same as running `manage.py precompress` after every `collectstatic`.
`PrecompressMixin` adds the same to another storage that keeps files on the
local file system.
"""

from __future__ import annotations

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage

from meltemi import precompress


class PrecompressMixin:
    """Precompresses the files post_process() went through, after they are all written.

    Class attributes tune it: the codings, the threads (None: the CPU count),
    and the levels (None: zstd 19, br 11, gzip 9)."""

    precompress_codings: tuple[str, ...] = precompress.CODINGS
    precompress_jobs: int | None = None
    precompress_levels: dict[str, int] | None = None
    precompress_min_size: int = precompress.MIN_SIZE

    def post_process(self, paths, dry_run=False, **options):
        names = set(paths)
        parent = getattr(super(), "post_process", None)
        if parent is not None:
            for name, hashed_name, processed in parent(paths, dry_run, **options):
                yield name, hashed_name, processed
                if hashed_name and not isinstance(processed, Exception):
                    names.add(hashed_name)
        if dry_run:
            return
        files = [self.path(name) for name in sorted(names) if precompress.is_compressible(name) and self.exists(name)]
        result = precompress.precompress(
            files,
            self.precompress_codings,
            jobs=self.precompress_jobs,
            levels=self.precompress_levels,
            min_size=self.precompress_min_size,
        )
        for path, message in result.errors:
            yield path, None, OSError(f"precompressing {path}: {message}")


class PrecompressedManifestStaticFilesStorage(PrecompressMixin, ManifestStaticFilesStorage):
    """ManifestStaticFilesStorage whose collectstatic also writes precompressed variants."""
