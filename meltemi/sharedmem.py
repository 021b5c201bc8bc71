"""The memory the workers of one machine share: the rate limits' table.

The master maps it (anonymous, shared, zero-filled) before it forks any
worker, so every worker, and every worker that replaces one, inherits the
same pages; the C side (src/core/api/ratelimit.c) lays the table out on
first use. A process without a master (meltemi.testing, a lone worker)
maps its own. Pages are only backed by memory once touched.
"""

from __future__ import annotations

import mmap

# 1 MiB: a 64-byte header and 131,064 slots of 8 bytes, of which the table
# uses the largest power of two (65,536 keys, in lines of 8).
RATE_LIMIT_TABLE_SIZE = 1 << 20

_table: mmap.mmap | None = None


def rate_limit_table() -> mmap.mmap:
    """The shared table's memory, mapped now if this process has none yet."""
    global _table
    if _table is None:
        _table = mmap.mmap(-1, RATE_LIMIT_TABLE_SIZE, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    return _table
