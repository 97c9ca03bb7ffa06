"""What a provider module declares about itself: `ProviderSpec`, one per provider, next to the
code that speaks its wire format. The registry finds a spec by name and imports its module
only then; the server never needs to know more about a provider than its spec says."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ProviderError
from mcp_imagegen.operations import Operation
from mcp_imagegen.providers._http import RetryPolicy
from mcp_imagegen.providers.base import Capabilities, Provider
from mcp_imagegen.providers.model_data import LiveList

CLOUD_IN_FLIGHT = 256
"""Enough for a burst of 256 calls to wait on the provider together, not on each other; a
provider's own rate limit answers 429, which is retried with its Retry-After."""


@dataclass(frozen=True)
class Probe:
    """One cheap authenticated request that proves a provider's key and address work (a model
    listing, never a paid generation): what `mcp-imagegen doctor --check` sends."""

    url: str
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSpec:
    """How to tell whether a provider is configured, what it can do, and how to build it."""

    name: str
    title: str
    env_vars: tuple[str, ...]
    """The variables that enable it, for `list_providers`, `doctor` and error messages."""
    is_configured: Callable[[Settings], bool]
    build: Callable[[Settings, httpx2.AsyncClient], Provider]
    capabilities: Callable[[Settings], Capabilities]
    enable_hint: str = ""
    """How to enable it, for the "no provider is configured" message ("OPENAI_API_KEY for OpenAI");
    empty for providers that need nothing."""
    readiness: Callable[[Settings], str] | None = None
    """What is ready on this machine, for `list_providers` (not consulted when routing calls)."""
    probe: Callable[[Settings], Awaitable[Probe]] | None = None
    """The doctor's check; None for providers with nothing remote to check."""
    live_models: Callable[[Settings, httpx2.AsyncClient], Awaitable[LiveList]] | None = None
    """The provider's live model list, with what it says of each model's lifecycle, for
    `mcp-imagegen models check`; None where it has none."""
    max_in_flight: int = CLOUD_IN_FLIGHT
    """Calls this provider may have in flight at once by default ([provider_concurrency] overrides):
    a cloud API limits requests per minute, not connections, so only the local CPU is kept small."""
    installed: Callable[[Settings], frozenset[Operation]] | None = None
    """The operations whose runtimes are installed here, for a provider whose optional libraries
    may be missing: the tool list offers only these (routing still uses `capabilities`, so a call
    says how to install what is missing)."""


async def listing(client: httpx2.AsyncClient, provider: str, probe: Probe, **params: str) -> dict[str, Any]:
    """The JSON object a model-list request answers (`probe`, with `params` added); ProviderError
    naming the status where it fails."""
    url = httpx2.URL(probe.url)
    try:
        response = await client.get(
            probe.url, headers=probe.headers, params={**probe.params, **params} or None
        )
    except httpx2.HTTPError as exc:
        raise ProviderError(
            provider, f"could not reach {url.host} ({type(exc).__name__})", status=None
        ) from None
    if response.status_code != 200:
        raise ProviderError(
            provider,
            f"{url.host} answered HTTP {response.status_code} to {url.path}",
            status=response.status_code,
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(provider, f"{url.host} answered {url.path} without a JSON object", status=200)
    return body


def listed_models(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of an OpenAI-style model list (`{"data": [{"id": ...}, ...]}`) that have an id."""
    entries = body.get("data")
    listed = entries if isinstance(entries, list) else []
    return [entry for entry in listed if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        base_s=settings.retry_base_seconds,
        max_retry_after_s=settings.retry_after_max_seconds,
    )


def with_default(default: str, models: tuple[str, ...]) -> tuple[str, ...]:
    """The known models, with a configured default that is not among them listed first."""
    return models if default in models else (default, *models)
