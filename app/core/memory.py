"""Large blocks of memory go back to the operating system once freed.

glibc serves a large allocation with its own mapping, returned when freed, but raises that
threshold to the size of every such block freed: after the first password hash (argon2id
takes 19 MiB) every later one comes from the heap, which keeps it. Each hashing thread, and
the event loop's bursts, would then hold tens of megabytes for good. A fixed threshold
keeps the first behaviour (bench/results/history.md has the figures).
"""

import ctypes
import ctypes.util
import platform
from functools import cache

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BLOCK = 1 << 20


@cache  # once per process
def return_large_blocks() -> bool:
    """Fix the threshold on glibc (elsewhere nothing changes); True if it was set."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))
