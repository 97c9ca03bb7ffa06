"""Shared plumbing for provider HTTP calls: timeouts, transport failures, JSON replies, redaction.

Every provider sends through `send()` so that connection errors, timeouts and
undecodable replies read the same everywhere and never carry a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx2

from mcp_imagegen.errors import ProviderError, ProviderUnreachableError

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


async def send(
    client: httpx2.AsyncClient,
    *,
    provider: str,
    url: str,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    json_body: Mapping[str, Any] | None = None,
    form: Mapping[str, str] | None = None,
    files: MultipartFiles | None = None,
    timeout_s: float,
    map_error: ErrorMapper,
) -> httpx2.Response:
    """POST and return a 2xx response; raise ProviderError or ProviderUnreachableError otherwise."""
    host = httpx2.URL(url).host
    try:
        response = await client.post(
            url,
            headers=dict(headers),
            params=dict(params) if params else None,
            json=json_body,
            data=dict(form) if form is not None else None,
            files=list(files) if files is not None else None,
            timeout=image_timeout(timeout_s),
        )
    except httpx2.TimeoutException as exc:
        phase = "connecting" if isinstance(exc, httpx2.ConnectTimeout) else "waiting for the image"
        raise ProviderUnreachableError(
            f"{provider} timed out while {phase} ({host}, limit {timeout_s:.0f} s). Nothing was stored; "
            "try again, or raise the provider's timeout."
        ) from None
    except httpx2.TransportError as exc:
        raise ProviderUnreachableError(
            f"could not reach {provider} at {host}: {type(exc).__name__}. Nothing was stored; "
            "check the network and the provider's base URL."
        ) from None
    if response.status_code >= 400:
        raise map_error(response)
    return response


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
