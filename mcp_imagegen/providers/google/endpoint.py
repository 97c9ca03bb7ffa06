"""Where Google's image APIs live and how to authenticate (providers.md 3.1, 3.9).

Two backends share one wire format: the Gemini API (`x-goog-api-key`, paths
`/{version}/models/{model}:{method}`) and Vertex AI (an OAuth bearer token, paths
`/{version}/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`). Vertex
tokens come from `GOOGLE_OAUTH_ACCESS_TOKEN`, or from Application Default Credentials
through the optional google-auth library, refreshed in a worker thread when they expire.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
import anyio.to_thread
import httpx2

from mcp_imagegen.config import GoogleSettings, Settings, VertexSettings
from mcp_imagegen.errors import ConfigError, ContentPolicyError, ProviderError
from mcp_imagegen.providers._http import Exchange, RetryPolicy, json_error_body, retry_after_seconds
from mcp_imagegen.providers.base import Capabilities, Provider
from mcp_imagegen.providers.model_data import LiveList, LiveModel, shipped
from mcp_imagegen.providers.spec import Probe, ProviderSpec, listing, retry_policy
from mcp_imagegen.redaction import redact

Backend = Literal["gemini", "vertex"]
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ADC_FILE = Path("~/.config/gcloud/application_default_credentials.json")


class TokenSource(Protocol):
    async def headers(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class StaticHeaders:
    values: dict[str, str]

    async def headers(self) -> dict[str, str]:
        return dict(self.values)


@dataclass
class ApplicationDefaultCredentials:
    """google-auth's ADC, refreshed off the event loop when missing or expired."""

    _credentials: Any = None
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def headers(self) -> dict[str, str]:
        async with self._lock:
            if self._credentials is None or not self._credentials.valid:
                self._credentials = await anyio.to_thread.run_sync(_refreshed_adc)
        headers = {"Authorization": f"Bearer {self._credentials.token}"}
        quota_project = getattr(self._credentials, "quota_project_id", None)
        if quota_project:
            headers["x-goog-user-project"] = str(quota_project)
        return headers


def _refreshed_adc() -> Any:
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError:
        raise ConfigError(
            "the vertex provider needs GOOGLE_OAUTH_ACCESS_TOKEN, or Application Default Credentials through "
            "google-auth: pip install 'mcp-imagegen[vertex]'"
        ) from None
    try:
        credentials: Any = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])[0]
        credentials.refresh(google.auth.transport.requests.Request())
    except Exception as exc:  # noqa: BLE001 - google-auth raises many types; all mean "no usable credentials"
        raise ConfigError(
            f"could not get Google Application Default Credentials ({type(exc).__name__}); run "
            "`gcloud auth application-default login` or set GOOGLE_OAUTH_ACCESS_TOKEN"
        ) from None
    return credentials


def adc_available() -> bool:
    """Cheap start-up check: a credentials file that ADC would find (no network, no import)."""
    configured = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    return bool(configured and Path(configured).is_file()) or ADC_FILE.expanduser().is_file()


@dataclass(frozen=True)
class GoogleEndpoint:
    provider: str
    backend: Backend
    root: str
    """Scheme and host (plus any prefix), e.g. `https://us-central1-aiplatform.googleapis.com`."""
    prefix: str
    """The path before `/models/...`: `v1` or `v1beta1/projects/p/locations/l/publishers/google`."""
    auth: TokenSource
    key_hint: str
    secrets: tuple[str, ...] = ()

    def url(self, model: str, method: str) -> str:
        return f"{self.root.rstrip('/')}/{self.prefix}/models/{model}:{method}"


def gemini_endpoint(settings: GoogleSettings) -> GoogleEndpoint:
    if settings.api_key is None:
        raise ConfigError("the google provider needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
    key = settings.api_key.get_secret_value()
    return GoogleEndpoint(
        provider="google",
        backend="gemini",
        root=settings.base_url,
        prefix=settings.api_version,
        auth=StaticHeaders({"x-goog-api-key": key}),
        key_hint="GEMINI_API_KEY / GOOGLE_API_KEY",
        secrets=(key,),
    )


def vertex_endpoint(settings: VertexSettings) -> GoogleEndpoint:
    if not settings.project:
        raise ConfigError("the vertex provider needs GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION)")
    location = settings.location
    auth: TokenSource
    secrets: tuple[str, ...] = ()
    if settings.access_token is not None:
        token = settings.access_token.get_secret_value()
        auth, secrets = StaticHeaders({"Authorization": f"Bearer {token}"}), (token,)
    else:
        auth = ApplicationDefaultCredentials()
    return GoogleEndpoint(
        provider="vertex",
        backend="vertex",
        root=settings.base_url or _vertex_host(location),
        prefix=f"{settings.api_version}/projects/{settings.project}/locations/{location}/publishers/google",
        auth=auth,
        key_hint="GOOGLE_OAUTH_ACCESS_TOKEN or Application Default Credentials, and Vertex AI access",
        secrets=secrets,
    )


def _vertex_host(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def map_google_error(endpoint: GoogleEndpoint, response: httpx2.Response) -> ProviderError:
    """`{"error": {"code", "message", "status"}}` (or a bare status) as a ProviderError."""
    body = json_error_body(response) or {}
    error = body.get("error", body)
    if isinstance(error, list) and len(error) == 1:
        error = error[0]
    message = error.get("message") if isinstance(error, dict) else None
    status_name = error.get("status") if isinstance(error, dict) else None
    text = redact(str(message) if message else (response.reason_phrase or "error"), endpoint.secrets)
    code = str(status_name) if status_name else None
    if response.status_code in (401, 403):
        text = f"{text} (check {endpoint.key_hint})"
    elif response.status_code == 404:
        text = (
            f"{text} (check the model name; retired models answer 404: `mcp-imagegen models check` "
            "compares the provider's live list with the model data)"
        )
    if code == "INVALID_ARGUMENT" and "safety" in text.lower():
        return ContentPolicyError(endpoint.provider, text, status=response.status_code, code=code)
    return ProviderError(
        endpoint.provider,
        text,
        status=response.status_code,
        code=code,
        retry_after=retry_after_seconds(response),
    )


async def google_exchange(
    endpoint: GoogleEndpoint,
    model: str,
    method: str,
    body: dict[str, Any],
    timeout_s: float,
    retry: RetryPolicy,
) -> Exchange:
    """One JSON request to `models/{model}:{method}` on this endpoint, with its auth and error mapping:
    what the Gemini and the Imagen adapters send."""
    return Exchange(
        provider=endpoint.provider,
        url=endpoint.url(model, method),
        headers={"Accept": "*/*", **await endpoint.auth.headers()},
        timeout_s=timeout_s,
        map_error=lambda response: map_google_error(endpoint, response),
        json_body=body,
        retry=retry,
    )


def _section(settings: Settings, backend: Backend) -> GoogleSettings | VertexSettings:
    return settings.google if backend == "gemini" else settings.vertex


def _endpoint(settings: Settings, backend: Backend) -> GoogleEndpoint:
    return gemini_endpoint(settings.google) if backend == "gemini" else vertex_endpoint(settings.vertex)


def _capabilities(backend: Backend) -> Callable[[Settings], Capabilities]:
    def capabilities(settings: Settings) -> Capabilities:
        from mcp_imagegen.providers.google import gemini as google

        default = _section(settings, backend).default_model
        return google.gemini_capabilities(backend, default)

    return capabilities


def _build(backend: Backend) -> Callable[[Settings, httpx2.AsyncClient], Provider]:
    """Gemini's generateContent and (on Vertex) Imagen's :predict on this backend's endpoint."""

    def build(settings: Settings, client: httpx2.AsyncClient) -> Provider:
        from mcp_imagegen.providers.google import gemini as google

        caps = _capabilities(backend)(settings)
        timeout_s = _section(settings, backend).timeout_s
        return google.GoogleImages(
            _endpoint(settings, backend), client, caps, timeout_s, retry_policy(settings)
        )

    return build


async def _gemini_probe(settings: Settings) -> Probe:
    endpoint = gemini_endpoint(settings.google)
    return Probe(
        f"{endpoint.root.rstrip('/')}/{endpoint.prefix}/models",
        await endpoint.auth.headers(),
        {"pageSize": "1"},
    )


MAX_LIST_PAGES = 20


async def _gemini_live(settings: Settings, client: httpx2.AsyncClient) -> LiveList:
    """`models.list`, every page: names and generation methods, no lifecycle (Gemini reports that
    per reply, in `modelStatus`). A model the data knows that the list lacks is gone."""
    endpoint = gemini_endpoint(settings.google)
    probe = Probe(f"{endpoint.root.rstrip('/')}/{endpoint.prefix}/models", await endpoint.auth.headers())
    models: list[LiveModel] = []
    token = ""
    for _ in range(MAX_LIST_PAGES):
        body = await listing(
            client, "google", probe, pageSize="1000", **({"pageToken": token} if token else {})
        )
        entries = body.get("models")
        for entry in entries if isinstance(entries, list) else []:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                model = name.removeprefix("models/")
                models.append(LiveModel(model, image="image" in model))
        token = str(body.get("nextPageToken") or "")
        if not token:
            break
    return LiveList("google", probe.url, tuple(models), absent_is_gone=True)


async def _vertex_live(settings: Settings, client: httpx2.AsyncClient) -> LiveList:
    """Vertex has no list of Google's models: each model the data gives Vertex is asked for by name
    (its publisher model), at once; a 404 means it is gone."""
    endpoint = vertex_endpoint(settings.vertex)
    headers = await endpoint.auth.headers()
    names = [record.id for record in shipped().records if "vertex" in record.providers]

    async def alive(model: str) -> bool:
        try:
            response = await client.get(endpoint.url(model, "").removesuffix(":"), headers=headers)
        except httpx2.HTTPError:
            return True  # unreachable says nothing of the model
        return response.status_code != 404

    found: dict[str, bool] = {}

    async def ask(model: str) -> None:
        found[model] = await alive(model)

    async with anyio.create_task_group() as group:
        for model in names:
            group.start_soon(ask, model)
    models = tuple(LiveModel(model, image=True) for model in names if found.get(model))
    return LiveList("vertex", endpoint.url("{model}", "").removesuffix(":"), models, absent_is_gone=True)


GEMINI = ProviderSpec(
    name="google",
    title="Google Gemini API: Gemini image models (generate, edit by instruction)",
    env_vars=("GEMINI_API_KEY",),
    enable_hint="GEMINI_API_KEY for Google",
    is_configured=lambda settings: settings.google.api_key is not None,
    build=_build("gemini"),
    capabilities=_capabilities("gemini"),
    probe=_gemini_probe,
    live_models=_gemini_live,
)


async def _vertex_probe(settings: Settings) -> Probe:
    endpoint = vertex_endpoint(settings.vertex)
    return Probe(
        endpoint.url(settings.vertex.default_model, "").removesuffix(":"), await endpoint.auth.headers()
    )


VERTEX = ProviderSpec(
    name="vertex",
    title="Google Vertex AI: Gemini image models",
    env_vars=("GOOGLE_CLOUD_PROJECT", "GOOGLE_OAUTH_ACCESS_TOKEN"),
    enable_hint="GOOGLE_CLOUD_PROJECT (with GOOGLE_OAUTH_ACCESS_TOKEN or gcloud credentials) for Vertex AI",
    is_configured=lambda settings: (
        bool(settings.vertex.project) and (settings.vertex.access_token is not None or adc_available())
    ),
    build=_build("vertex"),
    capabilities=_capabilities("vertex"),
    probe=_vertex_probe,
    live_models=_vertex_live,
)
