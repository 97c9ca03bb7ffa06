"""How much image work runs at once: CPU-bound work (decoding, resizing, encoding previews) in worker
threads, no more at once than the cores this process may use; and large provider replies in hand
(read, decoded, stored and previewed) at most twice that many.

More threads would not finish sooner (Pillow works on the CPU), but each one holds a decoded image
and its copies. And a burst of calls whose replies all arrive at once would otherwise read every
body, then hold every image while the previews take their turn: 64 high-entropy 1024x1024 results
held over 300 MB. A reply that waits for room stays in its connection (the kernel's buffers, then
the provider's), and the server reads it when one in hand is done.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

T = TypeVar("T")

LARGE_REPLY_BYTES = 1024 * 1024
"""Replies from this size (or of unknown size) wait for room; smaller ones are read at once."""

DECODE_PIXELS = 96 * 1024 * 1024
"""Pixels of input images decoded at once across all calls (about 384 MiB as RGBA): twelve large
inputs sent together decode a few at a time instead of all at once. An image larger than this
(a raised IMAGEGEN_MAX_PIXELS) decodes alone."""

_WORKERS: RunVar[anyio.CapacityLimiter] = RunVar("image_workers")
_DECODING: RunVar[PixelRoom] = RunVar("decoding")
_REPLIES: RunVar[anyio.CapacityLimiter] = RunVar("replies_in_hand")


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as a container sets it), at least one."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _limiter(var: RunVar[anyio.CapacityLimiter], tokens: int) -> anyio.CapacityLimiter:
    """One limiter per event loop (anyio keeps its own default limiter the same way)."""
    try:
        return var.get()
    except LookupError:
        made = anyio.CapacityLimiter(tokens)
        var.set(made)
        return made


def workers() -> anyio.CapacityLimiter:
    return _limiter(_WORKERS, usable_cores())


def replies_in_hand() -> anyio.CapacityLimiter:
    """Held by a call from before it reads a large reply until its images are stored and previewed."""
    return _limiter(_REPLIES, 2 * usable_cores())


async def run_image_work(work: Callable[[], T]) -> T:
    """Run `work` in a worker thread once one of the image workers is free."""
    return await anyio.to_thread.run_sync(work, limiter=workers())


class PixelRoom:
    """A budget of pixels shared by the decodes in progress: a decode takes its image's declared
    pixels (from the header, before any pixel is decoded) and waits while they do not fit."""

    def __init__(self, pixels: int) -> None:
        self.total = pixels
        self.free = pixels
        self._changed = anyio.Condition()

    @asynccontextmanager
    async def holding(self, pixels: int) -> AsyncIterator[None]:
        need = max(1, min(pixels, self.total))
        async with self._changed:
            while self.free < need:
                await self._changed.wait()
            self.free -= need
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                async with self._changed:
                    self.free += need
                    self._changed.notify_all()


def decoding() -> PixelRoom:
    try:
        return _DECODING.get()
    except LookupError:
        made = PixelRoom(DECODE_PIXELS)
        _DECODING.set(made)
        return made


async def run_decode(pixels: int, work: Callable[[], T]) -> T:
    """Run `work`, which decodes an image of `pixels` declared pixels, once its pixels fit the
    decoding budget and an image worker is free."""
    async with decoding().holding(pixels):
        return await run_image_work(work)
