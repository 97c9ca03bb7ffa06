"""Shared plumbing for provider HTTP calls: timeouts, progress milestones, SSE, JSON replies, redaction.

Every provider sends through `send()` (or `open_stream()` for streamed replies) so that
connection errors, timeouts and undecodable replies read the same everywhere, never
carry a secret, and report the same progress steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

from mcp_imagegen.errors import ProviderError, ProviderUnreachableError
from mcp_imagegen.providers.base import SILENT, CallEvents

CONNECT_TIMEOUT_S = 15.0
REDACTED = "[redacted]"

ErrorMapper = Callable[[httpx2.Response], ProviderError]
MultipartFiles = Sequence[tuple[str, tuple[str, bytes, str]]]


def image_timeout(total_s: float) -> httpx2.Timeout:
    """A short connect timeout and a long read timeout: image models take minutes."""
    return httpx2.Timeout(total_s, connect=min(CONNECT_TIMEOUT_S, total_s))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-trivial secret in `text`."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class Exchange:
    """One provider request: where it goes, what it carries, how long it may take."""

    provider: str
    url: str
    headers: Mapping[str, str]
    timeout_s: float
    map_error: ErrorMapper
    params: Mapping[str, str] | None = None
    json_body: Mapping[str, Any] | None = None
    form: Mapping[str, str] | None = None
    files: MultipartFiles | None = None

    @property
    def host(self) -> str:
        return httpx2.URL(self.url).host


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its `event:` name (empty if none) and its joined `data:` lines."""

    event: str
    data: str


async def send(
    client: httpx2.AsyncClient, exchange: Exchange, events: CallEvents = SILENT
) -> httpx2.Response:
    """POST and return a 2xx response with its body read (see `open_stream` for the rest)."""
    async with open_stream(client, exchange, events) as response:
        started = time.monotonic()
        await response.aread()
        events.step(
            f"received {_size_text(len(response.content))} from {exchange.provider} "
            f"in {time.monotonic() - started:.1f} s"
        )
    return response


@asynccontextmanager
async def open_stream(
    client: httpx2.AsyncClient, exchange: Exchange, events: CallEvents = SILENT
) -> AsyncIterator[httpx2.Response]:
    """POST and yield the 2xx response as soon as its headers are in; the body is read inside.

    Reports "request sent" and "started answering" to `events`. The whole exchange, body
    included, is bounded by `exchange.timeout_s`, so a trickling reply still ends. Raises
    ProviderError for an error reply and ProviderUnreachableError for transport failures
    and timeouts. Leaving the block early (or being cancelled) closes the connection.
    """
    with anyio.move_on_after(exchange.timeout_s) as deadline:
        async with _open(client, exchange, events) as response:
            yield response
    if deadline.cancelled_caught:
        raise _timed_out(exchange, "in total")


async def sse_events(response: httpx2.Response) -> AsyncIterator[SSEEvent]:
    """The events of a text/event-stream body (WHATWG rules: `event:`, `data:`, a blank line
    ends an event, `:` starts a comment), stopping at `data: [DONE]` if a server sends it."""
    name = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                if data == ["[DONE]"]:
                    return
                yield SSEEvent(name, "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field_name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field_name == "event":
            name = value
        elif field_name == "data":
            data.append(value)
    if data and data != ["[DONE]"]:
        yield SSEEvent(name, "\n".join(data))


@asynccontextmanager
async def _open(
    client: httpx2.AsyncClient, exchange: Exchange, events: CallEvents
) -> AsyncIterator[httpx2.Response]:
    """Send the request and yield the response once its headers are in (body not read)."""
    request = client.build_request(
        "POST",
        exchange.url,
        headers=dict(exchange.headers),
        params=dict(exchange.params) if exchange.params else None,
        json=exchange.json_body,
        data=dict(exchange.form) if exchange.form is not None else None,
        files=list(exchange.files) if exchange.files is not None else None,
        timeout=image_timeout(exchange.timeout_s),
        extensions={"trace": _milestones(exchange, events)},
    )
    try:
        response = await client.send(request, stream=True)
    except httpx2.TimeoutException as exc:
        phase = "connecting" if isinstance(exc, httpx2.ConnectTimeout) else "waiting for the image"
        raise _timed_out(exchange, f"while {phase}") from None
    except httpx2.TransportError as exc:
        raise ProviderUnreachableError(
            f"could not reach {exchange.provider} at {exchange.host}: {type(exc).__name__}. Nothing was "
            "stored; check the network and the provider's base URL."
        ) from None
    try:
        if response.status_code >= 400:
            await response.aread()
            raise exchange.map_error(response)
        yield response
    except httpx2.TimeoutException:
        raise _timed_out(exchange, "while receiving the reply") from None
    except httpx2.TransportError as exc:
        raise ProviderUnreachableError(
            f"{exchange.provider} broke off its reply ({type(exc).__name__}). Nothing was stored from "
            "the unfinished part; try again."
        ) from None
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


def _milestones(exchange: Exchange, events: CallEvents) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore trace hook that turns connection events into progress steps."""
    sent_at: list[float] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_body.complete"):
            sent_at.append(time.monotonic())
            events.step(f"request sent to {exchange.provider}")
        elif name.endswith("receive_response_headers.complete"):
            waited = time.monotonic() - sent_at[0] if sent_at else 0.0
            events.step(f"{exchange.provider} started answering after {waited:.1f} s")

    return trace


def _timed_out(exchange: Exchange, phase: str) -> ProviderUnreachableError:
    return ProviderUnreachableError(
        f"{exchange.provider} timed out {phase} ({exchange.host}, limit {exchange.timeout_s:.0f} s). "
        "Nothing was stored; try again, or raise the provider's timeout."
    )


def _size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} kB"


def read_json_object(response: httpx2.Response, provider: str) -> dict[str, Any]:
    """The reply as a JSON object, or ProviderUnreachableError saying what was wrong with it."""
    content_type = response.headers.get("content-type", "")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise ProviderUnreachableError(
            f"{provider} sent a reply that is not valid JSON (content-type {content_type or 'missing'}, "
            f"{len(response.content)} bytes). Nothing was stored."
        ) from None
    if not isinstance(body, dict):
        raise ProviderUnreachableError(f"{provider} sent JSON that is not an object. Nothing was stored.")
    return body


def json_error_body(response: httpx2.Response) -> dict[str, Any] | None:
    """The parsed body of an error reply, if it is a JSON object."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def retry_after_seconds(response: httpx2.Response) -> float | None:
    """`Retry-After` in seconds when it is given as a number (the common case for APIs)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
