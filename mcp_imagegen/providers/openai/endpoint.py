"""Where OpenAI-shaped images APIs live and how to authenticate to them: OpenAI, Azure OpenAI
(classic deployment URLs or `/openai/v1/`) and any OpenAI-compatible server named in the config
file; and the specs of those three kinds of provider. The translation to and from the wire
format is `providers/openai/images.py`, imported only when one of them is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import httpx2

from mcp_imagegen.config import AzureSettings, EndpointSettings, ImageApi, OpenAISettings, Settings
from mcp_imagegen.errors import ConfigError, InputError
from mcp_imagegen.providers.base import Capabilities, Provider
from mcp_imagegen.providers.model_data import LiveList, LiveModel, parse_date, shipped, today
from mcp_imagegen.providers.openai import models as openai_models
from mcp_imagegen.providers.options import OptionName
from mcp_imagegen.providers.spec import (
    Probe,
    ProviderSpec,
    listed_models,
    listing,
    retry_policy,
    with_default,
)

ImagesOperation = Literal["generations", "edits"]


_OPENAI_OPTIONS: frozenset[OptionName] = frozenset(
    {
        "size",
        "aspect_ratio",
        "quality",
        "background",
        "output_format",
        "output_compression",
        "moderation",
        "input_fidelity",
        "partial_images",
        "api",
        "continue_conversation",
    }
)


@dataclass(frozen=True)
class ImagesEndpoint:
    """Where one OpenAI-shaped images API lives and how to authenticate to it."""

    provider: str
    base_url: str
    """Up to and including the version segment, e.g. `https://api.openai.com/v1`."""
    headers: Mapping[str, str]
    key_hint: str
    """What to tell the user to check on a 401, e.g. "OPENAI_API_KEY"."""
    params: Mapping[str, str] = field(default_factory=dict)
    deployment_path: bool = False
    """Azure classic: the model (deployment) goes in the path, `/deployments/{model}/images/...`."""
    secrets: tuple[str, ...] = ()
    response_format: str | None = None
    """Sent only to compatible servers that need `b64_json` asked for explicitly."""
    deployment: str | None = None
    """Azure: the deployment every image call goes to, whatever model name it gives (as the SDK's
    `azure_deployment`); the model name then only selects the size and option rules."""
    deployments: Mapping[str, str] = field(default_factory=dict)
    """Azure: the deployment of each model name; a call's model selects its deployment."""
    image_api: ImageApi = "images"
    """The API a call uses when it does not choose one."""
    responses_model: str | None = None
    """The mainline model (on Azure, deployment) of Responses API calls."""
    responses_model_hint: str = ""
    """The setting that names it, for the error when it is missing."""
    responses_store: bool = True
    azure: bool = False
    """Azure picks the image model of a Responses call by deployment, in the
    `x-ms-oai-image-generation-deployment` header, instead of the tool's `model`."""

    def deployment_for(self, model: str) -> str:
        """Where a call for `model` goes on Azure; the model itself elsewhere (or unmapped)."""
        if self.deployments:
            chosen = self.deployments.get(model)
            if chosen is None:
                known = ", ".join(f"{name} ({target})" for name, target in self.deployments.items())
                raise InputError(
                    f"{self.provider} has no deployment for model {model!r}; configured in "
                    f"AZURE_OPENAI_DEPLOYMENTS: {known}"
                )
            return chosen
        return self.deployment or model

    def wire_model(self, model: str) -> str:
        """The `model` the request body carries: on Azure's /openai/v1/ path that is the deployment;
        on the classic path, where the URL names the deployment, the model as the SDK sends it."""
        return model if self.deployment_path else self.deployment_for(model)

    def url(self, operation: ImagesOperation, model: str) -> str:
        base = self.base_url.rstrip("/")
        if self.deployment_path:
            return f"{base}/deployments/{self.deployment_for(model)}/images/{operation}"
        return f"{base}/images/{operation}"

    @property
    def responses_url(self) -> str:
        """`/responses` next to the images API; on Azure's classic path too, without a deployment."""
        return f"{self.base_url.rstrip('/')}/responses"

    def mainline_model(self) -> str:
        """The model that calls the image tool in a Responses API call."""
        if not self.responses_model:
            raise ConfigError(
                f"{self.provider} needs a mainline model for api 'responses': set {self.responses_model_hint}"
            )
        return self.responses_model


def openai_endpoint(settings: OpenAISettings) -> ImagesEndpoint:
    if settings.api_key is None:
        raise ConfigError("the openai provider needs an API key: set OPENAI_API_KEY")
    key = settings.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"}
    if settings.org_id:
        headers["OpenAI-Organization"] = settings.org_id
    if settings.project_id:
        headers["OpenAI-Project"] = settings.project_id
    return ImagesEndpoint(
        "openai",
        settings.base_url,
        headers,
        "OPENAI_API_KEY",
        secrets=(key,),
        image_api=settings.image_api,
        responses_model=settings.responses_model,
        responses_model_hint="OPENAI_RESPONSES_MODEL",
        responses_store=settings.responses_store,
    )


def azure_endpoint(settings: AzureSettings) -> ImagesEndpoint:
    """Classic deployment URLs for a dated `api_version`, the `/openai/v1/` path otherwise.

    An Entra ID token (`AZURE_OPENAI_AD_TOKEN`) is sent as a bearer token and wins over a key.
    """
    if settings.ad_token is not None:
        secret = settings.ad_token.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}"}
    elif settings.api_key is not None:
        secret = settings.api_key.get_secret_value()
        headers = {"api-key": secret}
    else:
        raise ConfigError("the azure provider needs AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN)")
    if not settings.endpoint:
        raise ConfigError(
            "the azure provider needs AZURE_OPENAI_ENDPOINT, e.g. https://my-resource.openai.azure.com"
        )
    resource = settings.endpoint.rstrip("/").removesuffix("/openai/v1").removesuffix("/openai")
    version = settings.api_version
    endpoint = ImagesEndpoint(
        "azure",
        f"{resource}/openai/v1",
        headers,
        "AZURE_OPENAI_API_KEY / AZURE_OPENAI_AD_TOKEN and AZURE_OPENAI_ENDPOINT",
        params={"api-version": version} if version == "preview" else {},
        secrets=(secret,),
        deployment=settings.deployment,
        deployments=settings.deployments,
        image_api=settings.image_api,
        responses_model=settings.responses_deployment,
        responses_model_hint="AZURE_OPENAI_RESPONSES_DEPLOYMENT (a chat deployment that calls image tools)",
        responses_store=settings.responses_store,
        azure=True,
    )
    if version and version not in ("v1", "preview"):
        return dataclasses.replace(
            endpoint, base_url=f"{resource}/openai", params={"api-version": version}, deployment_path=True
        )
    return endpoint


def compatible_endpoint(name: str, settings: EndpointSettings) -> ImagesEndpoint:
    key = settings.resolved_key()
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    hint = settings.api_key_env or f"the api_key of [endpoints.{name}]"
    secrets = (key.get_secret_value(),) if key else ()
    return ImagesEndpoint(
        name,
        settings.base_url,
        headers,
        hint,
        secrets=secrets,
        response_format=settings.response_format,
        image_api=settings.image_api,
        responses_model=settings.responses_model,
        responses_model_hint=f"responses_model in [endpoints.{name}]",
        responses_store=settings.responses_store,
    )


def openai_capabilities(
    models: tuple[str, ...],
    default_model: str,
    formats: tuple[str, ...],
    vision_models: tuple[str, ...] = (),
    *,
    fetches_urls: bool = True,
    image_api: ImageApi = "images",
) -> Capabilities:
    families = [openai_models.rules_for(model) for model in models]
    qualities = [family.qualities for family in families]
    values: dict[OptionName, tuple[str, ...]] = {}
    if all(quality is not None for quality in qualities):  # every model known: offer what they take
        values["quality"] = tuple(dict.fromkeys(value for quality in qualities for value in quality or ()))
    return Capabilities(
        option_values=values,
        operations=frozenset({"generate", "edit", "describe"} if vision_models else {"generate", "edit"}),
        vision_models=vision_models,
        operation_models={"describe": vision_models[0]} if vision_models else {},
        max_describe_image_bytes=20 * 1024 * 1024,
        fetches_urls=fetches_urls,
        models=models,
        default_model=default_model,
        options=_OPENAI_OPTIONS,
        output_formats=formats,
        max_images=10,
        max_input_images=16,
        notes=(
            "aspect_ratio maps to size: any ratio 1:3..3:1 at about 1 MP for gpt-image-2, "
            "1:1/3:2/2:3 for other models. "
            f"api: {image_api} unless a call says; 'responses' makes one image per call, takes moderation "
            "on edits too, and edits of its images continue their conversation."
        ),
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
    from mcp_imagegen.providers.openai import chat
    from mcp_imagegen.providers.openai import images as openai

    vision = None
    if "describe" in capabilities.operations:
        chat_endpoint = chat.chat_endpoint_for(endpoint, max_tokens_field=max_tokens_field)
        vision = chat.ChatVision(chat_endpoint, client, capabilities, timeout_s, retry_policy(settings))
    return openai.OpenAIImages(endpoint, client, capabilities, timeout_s, retry_policy(settings), vision)


def _models_probe(endpoint: ImagesEndpoint) -> Probe:
    return Probe(f"{endpoint.base_url.rstrip('/')}/models", dict(endpoint.headers), dict(endpoint.params))


IMAGE_MODEL_PREFIXES = ("gpt-image", "dall-e", "chatgpt-image")


async def _live_models(provider: str, endpoint: ImagesEndpoint, client: httpx2.AsyncClient) -> LiveList:
    """`GET /models`: every model with its `shutdown_date` (OpenAI; absent and null alike), or
    Azure's `deprecation.inference`."""
    probe = _models_probe(endpoint)
    models = []
    for entry in listed_models(await listing(client, provider, probe)):
        deprecation = entry.get("deprecation")
        shutdown = parse_date(entry.get("shutdown_date")) or (
            parse_date(deprecation.get("inference")) if isinstance(deprecation, dict) else None
        )
        model_id = entry["id"]
        models.append(LiveModel(model_id, shutdown, image=model_id.startswith(IMAGE_MODEL_PREFIXES)))
    return LiveList(provider, probe.url, tuple(models))


async def _openai_live(settings: Settings, client: httpx2.AsyncClient) -> LiveList:
    return await _live_models("openai", openai_endpoint(settings.openai), client)


async def _azure_live(settings: Settings, client: httpx2.AsyncClient) -> LiveList:
    return await _live_models("azure", azure_endpoint(settings.azure), client)


def _openai_capabilities(settings: Settings) -> Capabilities:
    default = settings.openai.default_model
    return openai_capabilities(
        with_default(default, shipped().models("openai", "image", today())),
        default,
        ("png", "jpeg", "webp"),
        (settings.openai.vision_model,),
        image_api=settings.openai.image_api,
    )


def _build_openai(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    return _images_with_vision(
        settings,
        client,
        openai_endpoint(settings.openai),
        _openai_capabilities(settings),
        settings.openai.timeout_s,
        "max_completion_tokens",
    )


async def _openai_probe(settings: Settings) -> Probe:
    return _models_probe(openai_endpoint(settings.openai))


OPENAI = ProviderSpec(
    name="openai",
    title="OpenAI Images API (or any server speaking it via OPENAI_BASE_URL)",
    env_vars=("OPENAI_API_KEY",),
    enable_hint="OPENAI_API_KEY for OpenAI",
    is_configured=lambda settings: settings.openai.api_key is not None,
    build=_build_openai,
    capabilities=_openai_capabilities,
    probe=_openai_probe,
    live_models=_openai_live,
)


def _azure_capabilities(settings: Settings) -> Capabilities:
    """With AZURE_OPENAI_DEPLOYMENTS, the mapped model names (the default is the one mapped to
    AZURE_OPENAI_DEPLOYMENT, else the first); with AZURE_OPENAI_DEPLOYMENT alone, that deployment
    and the OpenAI model names, which all go to it. Azure makes PNG and JPEG only."""
    azure = settings.azure
    vision = (azure.vision_deployment,) if azure.vision_deployment else ()
    if azure.deployments:
        models = tuple(azure.deployments)
        mapped = [name for name, target in azure.deployments.items() if target == azure.deployment]
        capabilities = openai_capabilities(
            models, (mapped or list(models))[0], ("png", "jpeg"), vision, image_api=azure.image_api
        )
        return dataclasses.replace(capabilities, deployments=dict(azure.deployments))
    deployment = azure.deployment or ""
    models = with_default(deployment, shipped().models("azure", "image", today())) if deployment else ()
    capabilities = openai_capabilities(models, deployment, ("png", "jpeg"), vision, image_api=azure.image_api)
    return dataclasses.replace(capabilities, deployments=dict.fromkeys(models, deployment))


def _build_azure(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    return _images_with_vision(
        settings,
        client,
        azure_endpoint(settings.azure),
        _azure_capabilities(settings),
        settings.azure.timeout_s,
        "max_tokens",
    )


async def _azure_probe(settings: Settings) -> Probe:
    return _models_probe(azure_endpoint(settings.azure))


AZURE = ProviderSpec(
    name="azure",
    title="Azure OpenAI image deployments",
    env_vars=("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"),
    enable_hint="AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT for Azure",
    is_configured=lambda settings: settings.azure.api_key is not None or settings.azure.ad_token is not None,
    build=_build_azure,
    capabilities=_azure_capabilities,
    probe=_azure_probe,
    live_models=_azure_live,
)


def endpoint_spec(name: str, endpoint: EndpointSettings) -> ProviderSpec:
    """A named OpenAI-compatible endpoint from the config file's `[endpoints.NAME]`."""

    def capabilities(settings: Settings) -> Capabilities:
        default = endpoint.default_model or (endpoint.models[0] if endpoint.models else "gpt-image-2")
        models = tuple(endpoint.models) or (default,)
        return openai_capabilities(
            models,
            default,
            ("png", "jpeg", "webp"),
            tuple(endpoint.vision_models),
            fetches_urls=False,
            image_api=endpoint.image_api,
        )

    def build(settings: Settings, client: httpx2.AsyncClient) -> Provider:
        images = compatible_endpoint(name, endpoint)
        return _images_with_vision(
            settings, client, images, capabilities(settings), endpoint.timeout_s, "max_tokens"
        )

    async def probe(settings: Settings) -> Probe:
        return _models_probe(compatible_endpoint(name, endpoint))

    return ProviderSpec(
        name=name,
        title=f"OpenAI-compatible endpoint {endpoint.base_url} ([endpoints.{name}] in the config file)",
        env_vars=(endpoint.api_key_env,) if endpoint.api_key_env else (),
        is_configured=lambda settings: True,
        build=build,
        capabilities=capabilities,
        probe=probe,
        max_in_flight=16,  # often one GPU server (a local Stable Diffusion, vLLM): not a cloud
    )


def request_id(headers: httpx2.Headers) -> str | None:
    """The id OpenAI (`x-request-id`) or Azure (`apim-request-id`) gave a request: what their
    support asks for, kept in image metadata and quoted in errors."""
    return headers.get("x-request-id") or headers.get("apim-request-id")
