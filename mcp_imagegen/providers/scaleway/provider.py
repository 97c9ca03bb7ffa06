"""Scaleway Generative APIs: vision chat models for describe_image (providers.md 5), on the
OpenAI-style chat client with Scaleway's paths and limits."""

from __future__ import annotations

import httpx2

from mcp_imagegen.config import ScalewaySettings, Settings
from mcp_imagegen.errors import ConfigError
from mcp_imagegen.providers.base import Capabilities, Provider
from mcp_imagegen.providers.model_data import LiveList, LiveModel, shipped, today
from mcp_imagegen.providers.openai.chat import ChatEndpoint, ChatVision
from mcp_imagegen.providers.spec import (
    Probe,
    ProviderSpec,
    listed_models,
    listing,
    retry_policy,
    with_default,
)


def scaleway_endpoint(settings: ScalewaySettings) -> ChatEndpoint:
    """`/v1/chat/completions`, or `/{project_id}/v1/...` when a project is set (providers.md 5.1)."""
    if settings.secret_key is None:
        raise ConfigError("the scaleway provider needs SCW_SECRET_KEY")
    key = settings.secret_key.get_secret_value()
    root = settings.base_url.rstrip("/")
    base = f"{root}/{settings.project_id}/v1" if settings.project_id else f"{root}/v1"
    return ChatEndpoint(
        provider="scaleway",
        base_url=base,
        headers={"Authorization": f"Bearer {key}"},
        key_hint="SCW_SECRET_KEY (and SCW_DEFAULT_PROJECT_ID)",
        secrets=(key,),
        stream_usage=False,
    )


def scaleway_capabilities(settings: Settings) -> Capabilities:
    default = settings.scaleway.default_model
    return Capabilities(
        operations=frozenset({"describe"}),
        models=(),
        default_model=default,
        options=frozenset(),
        vision_models=with_default(default, shipped().models("scaleway", "text", today())),
        operation_models={"describe": default},
        max_describe_images=12,
        vision_max_side=1024,
        fetches_urls=True,
        notes="Vision chat models, describe_image only: up to 12 images a request, 16x16 pixels a token.",
    )


def _build(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    return ChatVision(
        scaleway_endpoint(settings.scaleway),
        client,
        scaleway_capabilities(settings),
        settings.scaleway.timeout_s,
        retry_policy(settings),
    )


async def _probe(settings: Settings) -> Probe:
    endpoint = scaleway_endpoint(settings.scaleway)
    return Probe(f"{endpoint.base_url}/models", dict(endpoint.headers))


async def _live(settings: Settings, client: httpx2.AsyncClient) -> LiveList:
    """`GET /v1/models`: the ids only (Scaleway announces end of life on its docs, not here)."""
    probe = await _probe(settings)
    ids = [entry["id"] for entry in listed_models(await listing(client, "scaleway", probe))]
    return LiveList("scaleway", probe.url, tuple(LiveModel(model) for model in ids))


SPEC = ProviderSpec(
    name="scaleway",
    title="Scaleway Generative APIs: vision chat models (describe_image)",
    env_vars=("SCW_SECRET_KEY",),
    enable_hint="SCW_SECRET_KEY for Scaleway (describe_image)",
    is_configured=lambda settings: settings.scaleway.secret_key is not None,
    build=_build,
    capabilities=scaleway_capabilities,
    probe=_probe,
    live_models=_live,
)
