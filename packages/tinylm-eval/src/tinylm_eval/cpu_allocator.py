"""Keep freed large buffers in the process heap (glibc Linux), for batched forwards on CPU.

By default glibc serves an allocation above its mmap threshold (which adapts, up to 32 MiB) with a
fresh mapping, and hands freed heap memory back to the OS past its trim threshold. Every batched
forward then faults in and zeroes its activations and key/value copies page by page, again and
again. Pinning the threshold at its maximum and never trimming keeps those pages in the heap. In
tools/bench/bench_eval_batching.py at the tinylm-0.5b shape (40 questions a subject, one thread),
shared-prefix batches went from 4.2x to 4.8x the one-at-a-time rate (`--glibc-defaults` measures
without); one-row prompts ran as before. PyTorch's CPU tuning guide swaps in jemalloc or tcmalloc
for the same reason.
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses a larger mmap threshold on 64-bit systems (4 MiB * sizeof(long)).
MAX_MMAP_THRESHOLD = 32 * 2**20
NEVER_TRIM = 2**31 - 1


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory() -> bool:
    """Apply the settings to this process; False, with nothing changed, where libc is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    applied = (
        libc.mallopt(M_MMAP_THRESHOLD, MAX_MMAP_THRESHOLD) == 1
        and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
    )
    if applied:
        logger.debug("glibc malloc: mmap threshold 32 MiB, freed memory kept in the heap")
    return applied
