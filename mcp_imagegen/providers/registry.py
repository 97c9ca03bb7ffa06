"""Provider names -> lazy factories, and routing by capability.

A provider module is imported only when that provider is first used or described, so
an unused provider costs nothing at start-up. A real provider is never swapped for the
placeholder: the placeholder is used only when named or set as the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx2

from mcp_imagegen.config import EndpointSettings, Settings
from mcp_imagegen.errors import ConfigError, InputError, UnsupportedOptionError
from mcp_imagegen.providers._http import RetryPolicy

if TYPE_CHECKING:
    from mcp_imagegen.providers.openai import ImagesEndpoint
from mcp_imagegen.providers.base import (
    Capabilities,
    ImageDescriber,
    ImageEditor,
    ImageGenerator,
    ImageRecontexter,
    ImageSegmenter,
    ImageUpscaler,
    Operation,
    Provider,
)


@dataclass(frozen=True)
class ProviderSpec:
    """How to tell whether a provider is configured and how to build it."""

    name: str
    title: str
    env_vars: tuple[str, ...]
    """The variables that enable it, for `list_providers` and error messages."""
    is_configured: Callable[[Settings], bool]
    build: Callable[[Settings, httpx2.AsyncClient], Provider]
    capabilities: Callable[[Settings], Capabilities]
    readiness: Callable[[Settings], str] | None = None
    """What is ready on this machine, for `list_providers` (not consulted when routing calls)."""


LOCAL = "local"
"""The on-machine provider: always available, and chosen only when no cloud provider can do the job."""
SCALEWAY_VISION_MODELS = ("mistral-small-3.2-24b-instruct-2506", "pixtral-12b-2409", "gemma-3-27b-it")


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        base_s=settings.retry_base_seconds,
        max_retry_after_s=settings.retry_after_max_seconds,
    )


def _build_openai(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers import openai

    endpoint = openai.openai_endpoint(settings.openai)
    return _images_with_vision(
        settings,
        client,
        endpoint,
        _openai_capabilities(settings),
        settings.openai.timeout_s,
        "max_completion_tokens",
    )


def _openai_capabilities(settings: Settings) -> Capabilities:
    from mcp_imagegen.providers import openai

    default = settings.openai.default_model
    return openai.openai_capabilities(
        _with(default, openai.OPENAI_MODELS),
        default,
        ("png", "jpeg", "webp"),
        (settings.openai.vision_model,),
    )


def _build_azure(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers import openai

    endpoint = openai.azure_endpoint(settings.azure)
    return _images_with_vision(
        settings, client, endpoint, _azure_capabilities(settings), settings.azure.timeout_s, "max_tokens"
    )


def _azure_capabilities(settings: Settings) -> Capabilities:
    """Models on Azure are deployment names; Azure makes PNG and JPEG only."""
    from mcp_imagegen.providers import openai

    deployment = settings.azure.deployment or ""
    vision = (settings.azure.vision_deployment,) if settings.azure.vision_deployment else ()
    return openai.openai_capabilities(
        (deployment,) if deployment else (), deployment, ("png", "jpeg"), vision
    )


def _images_with_vision(
    settings: Settings,
    client: httpx2.AsyncClient,
    endpoint: ImagesEndpoint,
    capabilities: Capabilities,
    timeout_s: float,
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"],
) -> Provider:
    """An OpenAI-style images adapter with the chat API next to it for describe_image."""
    from mcp_imagegen.providers import chat, openai

    vision = None
    if "describe" in capabilities.operations:
        chat_endpoint = chat.chat_endpoint_for(endpoint, max_tokens_field=max_tokens_field)
        vision = chat.ChatVision(chat_endpoint, client, capabilities, timeout_s, retry_policy(settings))
    return openai.OpenAIImages(endpoint, client, capabilities, timeout_s, retry_policy(settings), vision)


def _build_scaleway(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers import chat

    endpoint = chat.scaleway_endpoint(settings.scaleway)
    return chat.ChatVision(
        endpoint,
        client,
        _scaleway_capabilities(settings),
        settings.scaleway.timeout_s,
        retry_policy(settings),
    )


def _scaleway_capabilities(settings: Settings) -> Capabilities:
    default = settings.scaleway.default_model
    return Capabilities(
        operations=frozenset({"describe"}),
        models=(),
        default_model=default,
        options=frozenset(),
        vision_models=_with(default, SCALEWAY_VISION_MODELS),
        operation_models={"describe": default},
        max_describe_images=12,
        vision_max_side=1024,
        fetches_urls=True,
        notes="Vision chat models, describe_image only: up to 12 images a request, 16x16 pixels a token.",
    )


def _build_mistral(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers import mistral

    return mistral.MistralImages(
        settings.mistral, client, mistral.mistral_capabilities(settings.mistral), retry_policy(settings)
    )


def _mistral_capabilities(settings: Settings) -> Capabilities:
    from mcp_imagegen.providers import mistral

    return mistral.mistral_capabilities(settings.mistral)


def _build_google(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers import google, google_endpoint

    endpoint = google_endpoint.gemini_endpoint(settings.google)
    return google.GoogleImages(
        endpoint, client, _google_capabilities(settings), settings.google.timeout_s, retry_policy(settings)
    )


def _google_capabilities(settings: Settings) -> Capabilities:
    from mcp_imagegen.providers import google

    return google.gemini_capabilities(
        "gemini",
        _with(settings.google.default_model, google.GEMINI_IMAGE_MODELS),
        settings.google.default_model,
    )


def _build_vertex(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers import google, google_endpoint

    endpoint = google_endpoint.vertex_endpoint(settings.vertex)
    return google.GoogleImages(
        endpoint, client, _vertex_capabilities(settings), settings.vertex.timeout_s, retry_policy(settings)
    )


def _vertex_capabilities(settings: Settings) -> Capabilities:
    from mcp_imagegen.providers import google

    return google.gemini_capabilities(
        "vertex",
        _with(settings.vertex.default_model, google.GEMINI_IMAGE_MODELS),
        settings.vertex.default_model,
    )


def _vertex_configured(settings: Settings) -> bool:
    from mcp_imagegen.providers.google_endpoint import adc_available

    return bool(settings.vertex.project) and (settings.vertex.access_token is not None or adc_available())


def _with(default: str, models: tuple[str, ...]) -> tuple[str, ...]:
    """The known models, with a configured default that is not among them listed first."""
    return models if default in models else (default, *models)


def _build_placeholder(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers.placeholder import PlaceholderProvider

    return PlaceholderProvider()


def _placeholder_capabilities(settings: Settings) -> Capabilities:
    from mcp_imagegen.providers.placeholder import CAPABILITIES

    return CAPABILITIES


def _build_local(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    from mcp_imagegen.providers.local import LocalProvider

    return LocalProvider(settings)


def _local_capabilities(settings: Settings) -> Capabilities:
    from mcp_imagegen.providers.local import CAPABILITIES

    return CAPABILITIES


def _local_readiness(settings: Settings) -> str:
    from mcp_imagegen.providers import local

    return local.readiness(settings)


def _endpoint_spec(name: str, endpoint: EndpointSettings) -> ProviderSpec:
    """A named OpenAI-compatible endpoint from the config file's `[endpoints.NAME]`."""

    def build(settings: Settings, client: httpx2.AsyncClient) -> Provider:
        from mcp_imagegen.providers import openai

        images_endpoint = openai.compatible_endpoint(name, endpoint)
        return _images_with_vision(
            settings, client, images_endpoint, capabilities(settings), endpoint.timeout_s, "max_tokens"
        )

    def capabilities(settings: Settings) -> Capabilities:
        from mcp_imagegen.providers import openai

        default = endpoint.default_model or (endpoint.models[0] if endpoint.models else "gpt-image-2")
        models = tuple(endpoint.models) or (default,)
        return openai.openai_capabilities(
            models, default, ("png", "jpeg", "webp"), tuple(endpoint.vision_models), fetches_urls=False
        )

    return ProviderSpec(
        name=name,
        title=f"OpenAI-compatible endpoint {endpoint.base_url} ([endpoints.{name}] in the config file)",
        env_vars=(endpoint.api_key_env,) if endpoint.api_key_env else (),
        is_configured=lambda settings: True,
        build=build,
        capabilities=capabilities,
    )


BUILTIN_SPECS = (
    ProviderSpec(
        name="openai",
        title="OpenAI Images API (or any server speaking it via OPENAI_BASE_URL)",
        env_vars=("OPENAI_API_KEY",),
        is_configured=lambda settings: settings.openai.api_key is not None,
        build=_build_openai,
        capabilities=_openai_capabilities,
    ),
    ProviderSpec(
        name="azure",
        title="Azure OpenAI image deployments",
        env_vars=("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"),
        is_configured=lambda settings: (
            settings.azure.api_key is not None or settings.azure.ad_token is not None
        ),
        build=_build_azure,
        capabilities=_azure_capabilities,
    ),
    ProviderSpec(
        name="google",
        title="Google Gemini API: Gemini image models (generate, edit by instruction)",
        env_vars=("GEMINI_API_KEY",),
        is_configured=lambda settings: settings.google.api_key is not None,
        build=_build_google,
        capabilities=_google_capabilities,
    ),
    ProviderSpec(
        name="vertex",
        title="Google Vertex AI: Gemini image models",
        env_vars=("GOOGLE_CLOUD_PROJECT", "GOOGLE_OAUTH_ACCESS_TOKEN"),
        is_configured=_vertex_configured,
        build=_build_vertex,
        capabilities=_vertex_capabilities,
    ),
    ProviderSpec(
        name="mistral",
        title="Mistral: images from an agent with the image_generation tool, and vision chat",
        env_vars=("MISTRAL_API_KEY",),
        is_configured=lambda settings: settings.mistral.api_key is not None,
        build=_build_mistral,
        capabilities=_mistral_capabilities,
    ),
    ProviderSpec(
        name="scaleway",
        title="Scaleway Generative APIs: vision chat models (describe_image)",
        env_vars=("SCW_SECRET_KEY",),
        is_configured=lambda settings: settings.scaleway.secret_key is not None,
        build=_build_scaleway,
        capabilities=_scaleway_capabilities,
    ),
    ProviderSpec(
        name=LOCAL,
        title="Local: segmentation, upscaling and OCR on this machine's CPU (no key, no network)",
        env_vars=(),
        is_configured=lambda settings: True,
        build=_build_local,
        capabilities=_local_capabilities,
        readiness=_local_readiness,
    ),
    ProviderSpec(
        name="placeholder",
        title="Placeholder: labelled images, no AI, no network",
        env_vars=(),
        is_configured=lambda settings: True,
        build=_build_placeholder,
        capabilities=_placeholder_capabilities,
    ),
)


class ProviderRegistry:
    """Builds providers on first use and picks one for each call."""

    def __init__(self, settings: Settings, client: httpx2.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        builtin = {spec.name: spec for spec in BUILTIN_SPECS}
        clashes = sorted(set(settings.endpoints) & set(builtin))
        if clashes:
            raise ConfigError(f"[endpoints] names {clashes} clash with built-in providers; rename them")
        self._specs = {
            **builtin,
            **{name: _endpoint_spec(name, ep) for name, ep in settings.endpoints.items()},
        }
        self._built: dict[str, Provider] = {}

    @property
    def specs(self) -> list[ProviderSpec]:
        return list(self._specs.values())

    def is_configured(self, name: str) -> bool:
        return self._specs[name].is_configured(self._settings)

    def capabilities(self, name: str) -> Capabilities:
        return self._specs[name].capabilities(self._settings)

    def notes(self, name: str) -> str:
        """The provider's notes, with what is ready on this machine where the provider says."""
        spec = self._specs[name]
        notes = spec.capabilities(self._settings).notes
        return f"{notes} {spec.readiness(self._settings)}" if spec.readiness else notes

    def default_name(self, operation: Operation) -> str:
        """`IMAGEGEN_DEFAULT_PROVIDER` if set and able, else the first configured real provider
        that can do `operation`."""
        preferred = self._settings.default_provider
        if preferred and (
            preferred not in self._specs
            or operation in self._specs[preferred].capabilities(self._settings).operations
        ):
            return preferred
        cloud_first = sorted(self._specs.values(), key=lambda spec: spec.name == LOCAL)
        for spec in cloud_first:
            real = spec.name != "placeholder" and spec.is_configured(self._settings)
            if real and operation in spec.capabilities(self._settings).operations:
                return spec.name
        raise ConfigError(
            "no image provider is configured. Set OPENAI_API_KEY for OpenAI, AZURE_OPENAI_API_KEY and "
            "AZURE_OPENAI_ENDPOINT for Azure, GEMINI_API_KEY for Google, or GOOGLE_CLOUD_PROJECT (with "
            "GOOGLE_OAUTH_ACCESS_TOKEN or gcloud credentials) for Vertex AI, MISTRAL_API_KEY for Mistral, "
            "SCW_SECRET_KEY for Scaleway (describe_image), or add an [endpoints.NAME] section to the config "
            "file. "
            "(segment_image, upscale_image and describe_image need no key: the local provider runs them on "
            "this machine.) For labelled test images with no AI, pass provider='placeholder' or set "
            "IMAGEGEN_DEFAULT_PROVIDER=placeholder."
        )

    def generator(self, name: str | None, model: str | None = None) -> ImageGenerator:
        provider = self._for(name, "generate", model)
        if not isinstance(provider, ImageGenerator):
            raise self._cannot(provider.name, "generate")
        return provider

    def editor(self, name: str | None, model: str | None = None) -> ImageEditor:
        provider = self._for(name, "edit", model)
        if not isinstance(provider, ImageEditor):
            raise self._cannot(provider.name, "edit")
        return provider

    def describer(self, name: str | None, model: str | None = None) -> ImageDescriber:
        provider = self._for(name, "describe", model)
        if not isinstance(provider, ImageDescriber):
            raise self._cannot(provider.name, "describe")
        return provider

    def upscaler(self, name: str | None, model: str | None = None) -> ImageUpscaler:
        provider = self._for(name, "upscale", model)
        if not isinstance(provider, ImageUpscaler):
            raise self._cannot(provider.name, "upscale")
        return provider

    def segmenter(self, name: str | None, model: str | None = None) -> ImageSegmenter:
        provider = self._for(name, "segment", model)
        if not isinstance(provider, ImageSegmenter):
            raise self._cannot(provider.name, "segment")
        return provider

    def recontexter(self, name: str | None, model: str | None = None) -> ImageRecontexter:
        provider = self._for(name, "recontext", model)
        if not isinstance(provider, ImageRecontexter):
            raise self._cannot(provider.name, "recontext")
        return provider

    def _for(self, name: str | None, operation: Operation, model: str | None) -> Provider:
        provider = self._get(name or self._by_model(operation, model) or self.default_name(operation))
        if operation not in provider.capabilities.operations:
            raise self._cannot(provider.name, operation)
        return provider

    def _by_model(self, operation: Operation, model: str | None) -> str | None:
        """With no provider named: the one configured provider that serves `model`, if exactly one does."""
        if model is None:
            return None
        serving = [
            spec.name
            for spec in self._specs.values()
            if spec.name != "placeholder"
            and spec.is_configured(self._settings)
            and operation in (caps := spec.capabilities(self._settings)).operations
            and model in (caps.vision_models if operation == "describe" else caps.models)
        ]
        return serving[0] if len(serving) == 1 else None

    def _cannot(self, name: str, operation: Operation) -> UnsupportedOptionError:
        able = [other for other in self._specs if operation in self.capabilities(other).operations]
        return UnsupportedOptionError(
            f"{name} cannot {operation} images; providers that can: {', '.join(able)}"
        )

    def _get(self, name: str) -> Provider:
        if name in self._built:
            return self._built[name]
        spec = self._specs.get(name)
        if spec is None:
            raise InputError(f"unknown provider {name!r}; known providers: {', '.join(self._specs)}")
        if not spec.is_configured(self._settings):
            raise ConfigError(f"the {name} provider is not configured: set {' and '.join(spec.env_vars)}")
        provider = spec.build(self._settings, self._client)
        self._built[name] = provider
        return provider
