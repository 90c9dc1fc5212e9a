"""Keeps glibc's allocator from handing image-sized buffers back to the kernel.

Every question of a run allocates and frees a few buffers of the image's size: the blob
SQLite assembles from its overflow pages, the Python ``bytes`` read from it, the request
sent. With glibc's defaults, a free that leaves more than about twice the largest recent
buffer at the top of the heap gives the memory back to the kernel (``brk``/``madvise``),
and the next allocation faults every page in again: with 200 KB images that was 25 to 50
page faults per question, about a third of the evaluator's CPU per question
(bench/run_throughput.py).

:func:`keep_freed_memory` raises the trim threshold and fixes the mmap threshold, so such
buffers are reused from the heap. The cost is that up to ``trim_bytes`` of freed memory per
malloc arena stays with the process. Elsewhere than glibc it does nothing. The evaluator
calls it at start-up (``app.serve``) unless ``gmai-eval serve --no-tune-malloc`` is given.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

TRIM_BYTES = 64 << 20
"""Freed memory at the top of a heap that glibc keeps instead of returning it."""

MMAP_BYTES = 16 << 20
"""Allocations from this size up get their own mapping (below it, the heap is reused)."""

_applied: bool | None = None


def keep_freed_memory(trim_bytes: int = TRIM_BYTES, mmap_bytes: int = MMAP_BYTES) -> bool:
    """Tune glibc's malloc for a process that churns image-sized buffers (once per process).

    Args:
        trim_bytes: ``M_TRIM_THRESHOLD``.
        mmap_bytes: ``M_MMAP_THRESHOLD`` (glibc caps it at 32 MiB on 64-bit systems).

    Returns:
        True if glibc accepted both settings (now or on an earlier call); False off glibc.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, mmap_bytes)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_bytes)
    )
    if not _applied:
        log.warning("glibc refused the malloc thresholds; image buffers will page-fault")
    return _applied
