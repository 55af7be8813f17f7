"""Keep freed memory in the process: CPU inference and training allocate the same large
temporaries on every forward pass, and glibc's default hands each one back to the operating
system when it is freed (`munmap` for blocks above its mmap threshold, heap trimming for the
rest), so the next pass page-faults every page of them in again.

`keep_freed_memory()` tells glibc (through `mallopt`) to serve every block from its heaps
(`M_MMAP_MAX` 0), to trim a heap only when more than 1 GiB lies free at its top, and to grow it
256 MiB at a time. Outputs do not change; the price is resident memory that stays at the peak a
pass needs (measured figures in the README). It is the same as starting Python with
`GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=268435456`.

The commands s2d runs as their own process (`python -m s2d ...`, `python -m s2d.bench`) call it
at start-up; `S2D_MALLOC=default` leaves glibc's behaviour alone. A library user calls it once,
early, in a process that does inference (it is process-wide and cannot be undone cleanly).
Other C libraries (musl, macOS, Windows) are left as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory", "SETTINGS"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4

#: (parameter, value) pairs applied, in order.
SETTINGS = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20))

_applied: bool | None = None


def keep_freed_memory(*, force: bool = False) -> bool:
    """Apply `SETTINGS` once per process; True when glibc took them. Does nothing (False) under
    `S2D_MALLOC=default`, outside glibc, or when the user set `GLIBC_TUNABLES` for malloc already
    (theirs wins) unless `force`."""
    global _applied
    if _applied is not None and not force:
        return _applied
    _applied = False
    if not force and (os.environ.get("S2D_MALLOC", "").lower() == "default"
                      or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = all(mallopt(param, value) == 1 for param, value in SETTINGS)
    return _applied
