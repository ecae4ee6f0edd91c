"""Process-level tuning applied when the `visionkit` command starts.

glibc's malloc hands every block over 32 MB straight back to the OS and page-faults it in again
on the next use; conv nets allocate such blocks every step. Keeping them in the heap (no mmap,
high trim threshold, generous top pad) removes that cost. Set VISIONKIT_MALLOC_TUNING=0 to
leave the allocator alone. It is a no-op where glibc is not the C library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
SETTINGS = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 8 << 30, M_TOP_PAD: 512 << 20}


def tune_allocator() -> bool:
    """Apply the glibc malloc settings above; True when they took effect."""
    if os.environ.get("VISIONKIT_MALLOC_TUNING", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, min(value, 2**31 - 1)) == 1 for param, value in SETTINGS.items())


def warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 line: str | None = None) -> str:
    """Warnings as one line in the command's words, without the source line Python echoes
    (installed as ``warnings.formatwarning`` by the `visionkit` command)."""
    return f"warning: {message}\n"
