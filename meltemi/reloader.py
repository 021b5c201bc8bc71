"""`--reload`: the master watches the application's source tree with inotify.

The tree is the folder that holds the application's top-level package or
module (for `myproject.wsgi:application`, the folder of `myproject/`: the
Django project with its apps), found without importing the application, so
the master stays free of its code. Every folder below it is watched, except
hidden ones, `__pycache__`, `node_modules` and virtual environments; folders
created later are added as they appear.

A change to a `.py` file makes the master replace its workers exactly as
SIGHUP does, after a quiet period (`DEBOUNCE`) so that an editor's or a
`git checkout`'s burst of writes gives one reload. A replacement that cannot
import the new code exits with its traceback printed, and the previous
workers go on serving until the code is fixed and saved again.

Threads: used by the master's single thread only (`fileno()` goes into its
selector).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import struct

_logger = logging.getLogger("meltemi.master")

__all__ = ["SourceWatcher", "source_root"]

DEBOUNCE = 0.3
MAX_WATCHED = 10000

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_ISDIR = 0x40000000
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCH_MASK = IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
SKIPPED = {"__pycache__", "node_modules", "site-packages"}


def source_root(app_spec: str) -> str:
    """The folder holding the top-level package or module of `module:attribute`, without importing it."""
    top = app_spec.partition(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise ValueError(f"--reload: cannot find the module {top!r}")
    if spec.submodule_search_locations:
        folder = list(spec.submodule_search_locations)[0]
    elif spec.origin and os.path.isfile(spec.origin):
        return os.path.dirname(os.path.abspath(spec.origin))
    else:
        raise ValueError(f"--reload: {top!r} is not a module with source files")
    return os.path.dirname(os.path.abspath(folder))


class SourceWatcher:
    """inotify watches on a tree; `changed()` reads the pending events and returns the source files they name."""

    def __init__(self, root: str, suffixes: tuple[str, ...] = (".py",)):
        self.root = root
        self.suffixes = suffixes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        self.paths: dict[int, str] = {}  # watch descriptor -> folder
        self._watch_tree(root)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _watch_tree(self, top: str) -> None:
        for folder, subfolders, _ in os.walk(top):
            if len(self.paths) >= MAX_WATCHED:
                _logger.warning("--reload: watching only the first %d folders under %s", MAX_WATCHED, self.root)
                return
            self._watch(folder)
            subfolders[:] = [name for name in subfolders if not _skipped(os.path.join(folder, name))]

    def _watch(self, folder: str) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(folder), WATCH_MASK)
        if wd >= 0:
            self.paths[wd] = folder

    def changed(self) -> list[str]:
        """The source files that changed since the last call (reads without blocking)."""
        found: list[str] = []
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return found
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _, length = EVENT.unpack_from(data, offset)
                raw = data[offset + EVENT.size : offset + EVENT.size + length].rstrip(b"\0")
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    found.append(self.root)  # events were lost: reload to be safe
                    continue
                folder = self.paths.get(wd)
                if folder is None:
                    continue
                if mask & IN_DELETE_SELF:
                    del self.paths[wd]
                    continue
                path = os.path.join(folder, os.fsdecode(raw))
                if mask & IN_ISDIR:
                    if mask & (IN_CREATE | IN_MOVED_TO) and not _skipped(path):
                        self._watch_tree(path)
                    continue
                if path.endswith(self.suffixes):
                    found.append(path)


def _skipped(folder: str) -> bool:
    name = os.path.basename(folder)
    return name.startswith(".") or name in SKIPPED or os.path.exists(os.path.join(folder, "pyvenv.cfg"))
