"""Keep the memory of large, short-lived buffers in one place.

A call holds a provider's reply, its base64 text and the decoded image for a moment: tens of
megabytes at 4K, decoded and encoded in worker threads. glibc's malloc gives each thread that
allocates at the same time as another an arena of its own (up to eight per core), and memory freed
in an arena stays resident for that arena's next use: after a few 3840x2160 calls the server held
several arenas' worth of buffers, 357 MiB at peak after six calls against 173 MiB after one.
With a single arena the freed buffers are reused by whichever thread needs them next: 207 MiB
after eight calls, at the same speed (benchmarks/startup_and_overhead.py). Returning the memory
to the system instead (a fixed mmap threshold) kept the peak at 176 MiB but made every call fault
its buffers in again, 60 ms more per 4K call here, so it is not done. Threads still allocate
small objects through Python's own allocator, which does not use these arenas.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (malloc.h)."""


def share_one_arena() -> bool:
    """Limit glibc's malloc to one arena for this process; whether it was set (False elsewhere).
    Call it before any worker thread starts."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (AttributeError, ValueError, OSError):  # not glibc, or not a POSIX system
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        logger.debug("mallopt is not available; memory is left to the allocator's defaults")
        return False
