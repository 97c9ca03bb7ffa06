"""Wait for something another thread or process does (a fake seeing a disconnect, a file going away)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio


async def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Return once `condition()` holds; fail naming `what` if it does not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await anyio.sleep(0.02)
