"""The providers' HTTP transport, made at the first request instead of at start-up.

Making httpx's transport imports httpcore (36 ms here) and loads the CA bundle into an SSL context
(28 ms), 60 ms of every start; a host starting the server only asks for initialize and tools/list,
which never reach a provider. The first request pays it instead, made in a worker thread so that
other requests are not held up meanwhile, and concurrent first requests wait for one transport.
"""

from __future__ import annotations

import functools

import anyio
import anyio.to_thread
import httpx2


class LazyTransport(httpx2.AsyncBaseTransport):
    """`httpx2.AsyncHTTPTransport(limits=limits)`, once something is sent."""

    def __init__(self, limits: httpx2.Limits) -> None:
        self._limits = limits
        self._transport: httpx2.AsyncHTTPTransport | None = None
        self._making = anyio.Lock()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        transport = self._transport or await self._made()
        return await transport.handle_async_request(request)

    async def _made(self) -> httpx2.AsyncHTTPTransport:
        async with self._making:
            if self._transport is None:
                make = functools.partial(httpx2.AsyncHTTPTransport, limits=self._limits)
                self._transport = await anyio.to_thread.run_sync(make)
            return self._transport

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
