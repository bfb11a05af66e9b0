"""Process-level settings that make CPU training faster; no effect on results.

glibc returns freed blocks above its mmap threshold (and above its trim threshold at the heap top) to
the OS, so every training step page-faults its activation memory in afresh, a cost that grows with the
number of hidden states on top of the compute. Raising both thresholds keeps freed activation memory in
the process for the next step. ``python -m bench.supernet`` with and without ``--default-malloc``
compares the two.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_MAX = 32 * 2**20  # glibc's largest allowed mmap threshold on 64-bit
_TRIM = 2**30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds (Linux + glibc only); returns whether it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM))
