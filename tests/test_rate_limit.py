"""The in-process rate limit: a sliding minute per principal, and the wait it tells the door
(`server/http.py`) without counting a call."""

from __future__ import annotations

import pytest

from mcp_imagegen.errors import LimitError
from mcp_imagegen.server.limits import RateLimiter

pytestmark = pytest.mark.anyio


async def test_the_wait_is_until_the_oldest_call_in_the_window_frees(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("mcp_imagegen.server.limits.time.monotonic", lambda: now[0])
    limiter = RateLimiter(3)
    assert await limiter.wait_s("alice") == 0.0  # asking counts nothing
    for at in (1000.0, 1010.0, 1020.0):
        now[0] = at
        await limiter.admit("alice")
    now[0] = 1030.0
    assert await limiter.wait_s("alice") == pytest.approx(30.0)
    assert await limiter.wait_s("bob") == 0.0
    with pytest.raises(LimitError, match="try again in 30 s"):
        await limiter.admit("alice")
    now[0] = 1060.0  # the first call left the window
    assert await limiter.wait_s("alice") == 0.0
    await limiter.admit("alice")
    assert await limiter.wait_s("alice") == pytest.approx(10.0)


async def test_no_limit_means_no_wait() -> None:
    limiter = RateLimiter(0)
    for _ in range(100):
        await limiter.admit("alice")
    assert await limiter.wait_s("alice") == 0.0
