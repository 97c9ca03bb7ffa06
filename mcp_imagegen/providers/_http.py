"""Shared plumbing for provider HTTP calls: timeouts, progress milestones, SSE, JSON replies, redaction.

Every provider sends through `send()` (or `open_stream()` for streamed replies) so that
connection errors, timeouts and undecodable replies read the same everywhere, never
carry a secret, and report the same progress steps.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx2

from mcp_imagegen.errors import ImagegenError, MalformedReplyError, ProviderError, ProviderUnreachableError
from mcp_imagegen.images import b64
from mcp_imagegen.providers import image_json
from mcp_imagegen.providers.base import SILENT, CallEvents, Capabilities

CONNECT_TIMEOUT_S = 15.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_ERRORS = (httpx2.ConnectError, httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError)
"""Failures before a reply starts: the request can be sent again."""

logger = logging.getLogger(__name__)

ErrorMapper = Callable[[httpx2.Response], ProviderError]
MultipartFiles = Sequence[tuple[str, tuple[str, bytes, str]]]


def image_timeout(total_s: float) -> httpx2.Timeout:
    """A short connect timeout and a long read timeout: image models take minutes."""
    return httpx2.Timeout(total_s, connect=min(CONNECT_TIMEOUT_S, total_s))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a provider request that may succeed next time."""

    max_retries: int = 3
    base_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 60.0
    """A `Retry-After` longer than this is not waited for: the error goes to the user."""

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half the doubling step, plus up to half again at random."""
        step = min(self.max_backoff_s, self.base_s * 2.0 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - jitter, not a secret


DEFAULT_RETRY = RetryPolicy()


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
    retry: RetryPolicy = DEFAULT_RETRY
    method: Literal["GET", "POST"] = "POST"

    @property
    def host(self) -> str:
        return httpx2.URL(self.url).host


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its `event:` name (empty if none) and its joined `data:` lines."""

    event: str
    data: str


class HttpProvider:
    """What every provider that talks HTTP keeps: its name, capabilities, the shared client, its
    time limit and its retry policy."""

    def __init__(
        self,
        name: str,
        client: httpx2.AsyncClient,
        capabilities: Capabilities,
        timeout_s: float,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._name = name
        self._client = client
        self._capabilities = capabilities
        self._timeout_s = timeout_s
        self._retry = retry

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities


async def send(
    client: httpx2.AsyncClient, exchange: Exchange, events: CallEvents = SILENT
) -> httpx2.Response:
    """POST and return a 2xx response with its body read (see `open_stream` for the rest)."""
    async with open_stream(client, exchange, events) as response:
        length = response.headers.get("content-length", "")
        await events.reply_arriving(int(length) if length.isdigit() else None)
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
    """Yield the first 2xx response once its headers are in (body not read), then close it."""
    response = await _send_with_retries(client, exchange, events)
    try:
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


async def _send_with_retries(
    client: httpx2.AsyncClient, exchange: Exchange, events: CallEvents
) -> httpx2.Response:
    """Send until a 2xx response arrives, retrying what is worth retrying.

    Retried: 429, 500, 502, 503 and 504 replies, and connections that fail or are reset
    before a reply starts, with exponential backoff and jitter, or after the reply's
    `Retry-After` when it gives one. Not retried: other errors, and a reply that stalls
    (its read timeout already took minutes). A wait that would end past the call's
    deadline, or a `Retry-After` longer than the policy allows, is not waited for: the
    last error is raised instead.
    """
    policy = exchange.retry
    attempts = policy.max_retries + 1
    for attempt in range(1, attempts + 1):
        request = _build_request(client, exchange, events)
        try:
            response = await client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            if not isinstance(exc, httpx2.ConnectTimeout):
                raise _timed_out(exchange, "while waiting for the image") from None
            failure: ImagegenError = _timed_out(exchange, "while connecting", attempt)
            reason, delay = "connecting timed out", policy.backoff(attempt)
        except httpx2.TransportError as exc:
            failure = ProviderUnreachableError(
                f"could not reach {exchange.provider} at {exchange.host}: {type(exc).__name__}"
                f"{_after(attempt)}. Nothing was stored; check the network and the provider's base URL."
            )
            if not isinstance(exc, RETRYABLE_ERRORS):
                raise failure from None
            reason, delay = type(exc).__name__, policy.backoff(attempt)
        else:
            if response.status_code < 400:
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
            failure = exchange.map_error(response)
            if response.status_code not in RETRY_STATUSES:
                raise failure
            retry_after = retry_after_seconds(response)
            if retry_after is not None and retry_after > policy.max_retry_after_s:
                raise failure
            reason = f"HTTP {response.status_code}"
            delay = retry_after if retry_after is not None else policy.backoff(attempt)
        if attempt == attempts or not _fits_deadline(delay):
            raise failure
        events.step(
            f"{exchange.provider}: {reason}; retrying in {delay:.1f} s (attempt {attempt + 1} of {attempts})"
        )
        logger.info(
            "%s: %s; retry %d of %d in %.1f s", exchange.provider, reason, attempt, attempts - 1, delay
        )
        await anyio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _build_request(client: httpx2.AsyncClient, exchange: Exchange, events: CallEvents) -> httpx2.Request:
    """A fresh request per attempt, so that a retried multipart body is complete again."""
    return client.build_request(
        exchange.method,
        exchange.url,
        headers=dict(exchange.headers),
        params=dict(exchange.params) if exchange.params else None,
        json=exchange.json_body,
        data=dict(exchange.form) if exchange.form is not None else None,
        files=list(exchange.files) if exchange.files is not None else None,
        timeout=image_timeout(exchange.timeout_s),
        extensions={"trace": _milestones(exchange, events)},
    )


def _fits_deadline(delay: float) -> bool:
    """Whether sleeping `delay` seconds still leaves time before the innermost deadline."""
    return anyio.current_time() + delay < anyio.current_effective_deadline()


def _after(attempt: int) -> str:
    return f" (after {attempt} attempts)" if attempt > 1 else ""


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


def _timed_out(exchange: Exchange, phase: str, attempt: int = 1) -> ProviderUnreachableError:
    return ProviderUnreachableError(
        f"{exchange.provider} timed out {phase} ({exchange.host}, limit {exchange.timeout_s:.0f} s)"
        f"{_after(attempt)}. Nothing was stored; try again, or raise the provider's timeout."
    )


def _size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} kB"


def read_json_object(
    response: httpx2.Response, provider: str, images_at: str | None = None
) -> dict[str, Any]:
    """The reply as a JSON object, or MalformedReplyError saying what was wrong with it. With
    `images_at`, that key's base64 values may come back already decoded, as bytes
    (`image_json.loads_decoding`)."""
    content_type = response.headers.get("content-type", "")
    try:
        body = (
            json.loads(response.content)
            if images_at is None
            else image_json.loads_decoding(response.content, images_at)
        )
    except ValueError:
        raise MalformedReplyError(
            f"{provider} sent a reply that is not valid JSON (content-type {content_type or 'missing'}, "
            f"{len(response.content)} bytes). Nothing was stored."
        ) from None
    if not isinstance(body, dict):
        raise MalformedReplyError(f"{provider} sent JSON that is not an object. Nothing was stored.")
    return body


def event_object(provider: str, event: SSEEvent) -> dict[str, Any] | None:
    """A stream event's JSON data: the object, None for other JSON (skipped), or
    MalformedReplyError when it is not JSON."""
    try:
        payload = json.loads(event.data)
    except ValueError:
        raise MalformedReplyError(
            f"{provider} sent a stream event that is not JSON. Nothing was stored."
        ) from None
    return payload if isinstance(payload, dict) else None


def reply_image_bytes(provider: str, encoded: str | bytes, where: str) -> bytes:
    """An image sent as standard base64 in a reply, or MalformedReplyError naming where it was;
    bytes are an image `read_json_object` already decoded (`images_at`)."""
    if isinstance(encoded, bytes):
        return encoded
    try:
        return b64.decode(encoded)
    except ValueError:  # binascii.Error included
        raise MalformedReplyError(f"{provider} sent {where} with invalid base64.") from None


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
