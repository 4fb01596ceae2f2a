"""Keep large freed buffers in the process instead of handing them back to the OS.

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh mmap and
unmaps it on free. The next batch's arrays of the same size then fault in every 4 KB page again,
and a page fault costs about as much as writing the page, so a large im2col into fresh pages
runs several times slower than into reused ones (figures: benchmarks/results/cpu_measurements.md).
Raising the mmap and trim thresholds makes malloc reuse those buffers from its heap, as PyTorch's
allocator effectively does. The price: the process keeps its peak memory instead of returning it.

Set MINICNN_MALLOC_TUNING=0 to leave malloc alone. Elsewhere than glibc this does nothing.
"""
import ctypes
import os

M_TRIM_THRESHOLD = -1   # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
ONE_GIB = 1 << 30


def keep_large_buffers():
    """Ask glibc to serve allocations up to 1 GiB from its heap and keep freed memory there.
    Returns True when the setting took effect."""
    if os.environ.get("MINICNN_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, ONE_GIB)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 * ONE_GIB - 1))
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
