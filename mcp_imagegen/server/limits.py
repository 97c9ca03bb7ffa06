"""Per-principal rate limits for the tools that call providers (each call costs money)."""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

from mcp_imagegen.errors import LimitError

WINDOW_S = 60.0


class RateLimit(Protocol):
    """A sliding one-minute window of calls per principal: `RateLimiter` in this process, or
    `SharedRateLimiter` in the database that replicas share."""

    async def admit(self, client: str) -> None:
        """Count one call for `client`, or raise LimitError saying when to try again."""
        ...

    async def wait_s(self, client: str) -> float:
        """Seconds until `client` may make its next call (0: now), counting nothing."""
        ...


def refusal(per_minute: int, wait_s: float) -> LimitError:
    return LimitError(
        f"rate limit: at most {per_minute} image calls per minute per client "
        f"(IMAGEGEN_RATE_LIMIT_PER_MINUTE); try again in {max(1.0, wait_s):.0f} s"
    )


class RateLimiter:
    """In this process's memory; 0 calls per minute means no limit."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._calls: dict[str, deque[float]] = {}

    async def admit(self, client: str) -> None:
        if not self._per_minute:
            return
        now = time.monotonic()
        calls = self._calls.setdefault(client, deque())
        while calls and now - calls[0] >= WINDOW_S:
            calls.popleft()
        if len(calls) >= self._per_minute:
            raise refusal(self._per_minute, WINDOW_S - (now - calls[0]))
        calls.append(now)
        if len(self._calls) > 10_000:  # forget idle clients so the table stays small
            for key in [
                key for key, window in self._calls.items() if not window or now - window[-1] >= WINDOW_S
            ]:
                del self._calls[key]

    async def wait_s(self, client: str) -> float:
        calls = self._calls.get(client)
        if not self._per_minute or not calls or len(calls) < self._per_minute:
            return 0.0
        now = time.monotonic()
        in_window = [at for at in calls if now - at < WINDOW_S]
        if len(in_window) < self._per_minute:
            return 0.0
        return WINDOW_S - (now - in_window[-self._per_minute])
