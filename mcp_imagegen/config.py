"""Settings: server options (`IMAGEGEN_*`), provider credentials under the names people
already use (`OPENAI_API_KEY`, `AZURE_OPENAI_*`), and an optional TOML file.

Precedence, highest first: environment variables, the TOML file (`--config`), defaults.
The environment wins so that a secret kept out of the file, or a one-off override in a
host's `env` block, always takes effect.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.providers.model_data import Role, shipped
from mcp_imagegen.store.url import StoreUrl
from mcp_imagegen.usage.prices import PriceEntry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

APP_NAME = "mcp-imagegen"
PROVIDER_SECTIONS = ("openai", "azure", "google", "vertex", "scaleway", "mistral")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
REMOTE_RATE_LIMIT_PER_MINUTE = 60
DEFAULT_IMAGE_TIMEOUT_S = 300.0
ImageApi = Literal["images", "responses"]
"""Which OpenAI API makes images: the Images API, or the Responses API's `image_generation` tool."""
"""Image models take from seconds to several minutes; 30 s timeouts cut real calls off."""


def data_default(provider: str, role: Role) -> Callable[[], str]:
    """The default model the model data names for `provider` and `role` (`providers/*/models.toml`),
    as a settings default: a default that dies moves with the data, not with a code change. (The
    Responses API's mainline only has to call the image tool, forced by `tool_choice`: the data's
    mainline default is a small, current model that supports it.)"""

    def chosen() -> str:
        model = shipped().default(provider, role)
        if model is None:  # pragma: no cover - the shipped data names every default; a test reads it
            raise LookupError(f"the model data names no {role} default for {provider}")
        return model

    return chosen


def default_store_dir() -> Path:
    """The per-user data folder (never the process's working directory)."""
    import platformdirs

    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def default_models_dir() -> Path:
    """`models/` in the per-user data folder: where `mcp-imagegen models fetch` puts local models."""
    return default_store_dir() / "models"


def default_local_threads() -> int:
    """Threads per local inference: the machine's cores, at most 4 (more rarely helps small models)."""
    return max(1, min(4, os.cpu_count() or 1))


class _EnvFirstSettings(BaseSettings):
    """Settings whose environment variables override values given at construction
    (which is how the TOML file's values arrive)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


class OpenAISettings(_EnvFirstSettings):
    """The OpenAI Images API, or any server that speaks it (`OPENAI_BASE_URL`)."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="forbid")

    api_key: SecretStr | None = None
    base_url: str = "https://api.openai.com/v1"
    org_id: str | None = None
    project_id: str | None = None
    default_model: str = Field(default_factory=data_default("openai", "generate"))
    vision_model: str = Field(default_factory=data_default("openai", "describe"))
    """The chat model describe_image uses."""
    image_api: ImageApi = "images"
    """The API image calls use when the call does not choose (`api`)."""
    responses_model: str = Field(default_factory=data_default("openai", "mainline"))
    """The mainline model of Responses API calls; the image model goes in the tool."""
    responses_store: bool = True
    """Whether OpenAI keeps the responses (`store`); refinement needs them kept."""
    timeout_s: float = Field(DEFAULT_IMAGE_TIMEOUT_S, gt=0)


class AzureSettings(_EnvFirstSettings):
    """Azure OpenAI: the OpenAI adapter with Azure's URL shapes and `api-key` auth.

    With a dated `api_version` (e.g. `2025-04-01-preview`) requests go to the classic
    deployment path; with none, `v1` or `preview` they go to `/openai/v1/`.
    """

    model_config = SettingsConfigDict(env_prefix="AZURE_OPENAI_", extra="forbid")

    api_key: SecretStr | None = None
    ad_token: SecretStr | None = None
    endpoint: str | None = None
    api_version: str | None = None
    deployment: str | None = None
    """The deployment image calls go to, whatever model name they give."""
    deployments: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """`gpt-image-1.5=img-deploy,gpt-image-2=img2`: a call's model selects its deployment."""
    vision_deployment: str | None = None
    """A chat deployment with vision, for describe_image."""
    image_api: ImageApi = "images"
    responses_deployment: str | None = None
    """The mainline (chat) deployment of Responses API calls; the image deployment goes in the
    `x-ms-oai-image-generation-deployment` header."""
    responses_store: bool = True
    timeout_s: float = Field(DEFAULT_IMAGE_TIMEOUT_S, gt=0)

    @field_validator("deployments", mode="before")
    @classmethod
    def _parse_deployments(cls, value: object) -> object:
        """`model=deployment` pairs, comma-separated, or a JSON object."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
            raise ValueError("use model=deployment pairs, e.g. gpt-image-1.5=img-deploy,gpt-image-2=img2")
        return {model.strip(): deployment.strip() for model, deployment in pairs}


class GoogleSettings(_EnvFirstSettings):
    """The Gemini API (Google AI Studio): Gemini image models through `generateContent`."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("GOOGLE_API_KEY", "GEMINI_API_KEY"))
    """As in the google-genai SDK, GOOGLE_API_KEY wins when both are set."""
    base_url: str = Field(
        "https://generativelanguage.googleapis.com", validation_alias=AliasChoices("GOOGLE_GEMINI_BASE_URL")
    )
    api_version: str = Field("v1", validation_alias=AliasChoices("GOOGLE_GEMINI_API_VERSION"))
    default_model: str = Field(
        default_factory=data_default("google", "generate"),
        validation_alias=AliasChoices("GOOGLE_GEMINI_DEFAULT_MODEL"),
    )
    timeout_s: float = Field(DEFAULT_IMAGE_TIMEOUT_S, gt=0, validation_alias=AliasChoices("GOOGLE_TIMEOUT_S"))


class VertexSettings(_EnvFirstSettings):
    """Vertex AI: Gemini image models and the Imagen `:predict` models of one project and location.

    Auth is `GOOGLE_OAUTH_ACCESS_TOKEN` when given, else Application Default Credentials
    through google-auth (`pip install mcp-imagegen[vertex]`).
    """

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    project: str | None = Field(None, validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT"))
    location: str = Field("us-central1", validation_alias=AliasChoices("GOOGLE_CLOUD_LOCATION"))
    access_token: SecretStr | None = Field(None, validation_alias=AliasChoices("GOOGLE_OAUTH_ACCESS_TOKEN"))
    base_url: str | None = Field(None, validation_alias=AliasChoices("GOOGLE_VERTEX_BASE_URL"))
    """Default: the regional host for `location` (`aiplatform.googleapis.com` for `global`)."""
    api_version: str = Field("v1beta1", validation_alias=AliasChoices("GOOGLE_VERTEX_API_VERSION"))
    default_model: str = Field(
        default_factory=data_default("vertex", "generate"),
        validation_alias=AliasChoices("GOOGLE_VERTEX_DEFAULT_MODEL"),
    )
    timeout_s: float = Field(
        DEFAULT_IMAGE_TIMEOUT_S, gt=0, validation_alias=AliasChoices("GOOGLE_VERTEX_TIMEOUT_S")
    )


class ScalewaySettings(_EnvFirstSettings):
    """Scaleway Generative APIs: OpenAI-compatible chat with vision models (describe_image only)."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    secret_key: SecretStr | None = Field(None, validation_alias=AliasChoices("SCW_SECRET_KEY"))
    project_id: str | None = Field(None, validation_alias=AliasChoices("SCW_DEFAULT_PROJECT_ID"))
    base_url: str = Field("https://api.scaleway.ai", validation_alias=AliasChoices("SCALEWAY_BASE_URL"))
    default_model: str = Field(
        default_factory=data_default("scaleway", "describe"),
        validation_alias=AliasChoices("SCALEWAY_DEFAULT_MODEL"),
    )
    timeout_s: float = Field(120.0, gt=0, validation_alias=AliasChoices("SCALEWAY_TIMEOUT_S"))


class MistralSettings(_EnvFirstSettings):
    """Mistral: image generation through an agent with the image_generation tool, and vision chat."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("MISTRAL_API_KEY"))
    base_url: str = Field("https://api.mistral.ai", validation_alias=AliasChoices("MISTRAL_BASE_URL"))
    agent_id: str | None = Field(None, validation_alias=AliasChoices("MISTRAL_AGENT_ID"))
    """An existing agent with the image_generation tool; otherwise one is created and reused."""
    default_model: str = Field(
        default_factory=data_default("mistral", "generate"),
        validation_alias=AliasChoices("MISTRAL_DEFAULT_MODEL"),
    )
    vision_model: str = Field(
        default_factory=data_default("mistral", "describe"),
        validation_alias=AliasChoices("MISTRAL_VISION_MODEL"),
    )
    instructions: str = Field(
        "Use the image generation tool when you have to create images.",
        validation_alias=AliasChoices("MISTRAL_AGENT_INSTRUCTIONS"),
    )
    temperature: float | None = Field(None, ge=0, le=2, validation_alias=AliasChoices("MISTRAL_TEMPERATURE"))
    top_p: float | None = Field(None, gt=0, le=1, validation_alias=AliasChoices("MISTRAL_TOP_P"))
    timeout_s: float = Field(
        DEFAULT_IMAGE_TIMEOUT_S, gt=0, validation_alias=AliasChoices("MISTRAL_TIMEOUT_S")
    )


class ModelsSettings(_EnvFirstSettings):
    """How the server treats models the model data (or the latest `models check`) says are shut
    down: `[models]` in the config file, or `IMAGEGEN_MODELS_*`."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_MODELS_", extra="forbid")

    replace_retired: bool = Field(
        False,
        description="Send a call for a shut-down model to the provider's named replacement (the result "
        "says so) instead of refusing it.",
    )
    check_daily: bool = Field(
        True,
        description="Run `models check` once a day (across replicas sharing the store) when a provider "
        "with a live model list is configured.",
    )
    allow_retired: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models sent even though the data says they are shut down (a project that still has "
        "access to them).",
    )

    @field_validator("allow_retired", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _comma_list(value)


class EndpointSettings(BaseModel):
    """A named OpenAI-compatible images endpoint from the config file."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the key.")
    models: list[str] = Field(default_factory=list)
    default_model: str | None = None
    vision_models: list[str] = Field(
        default_factory=list, description="Chat models with vision; describe_image is offered when set."
    )
    response_format: Literal["b64_json"] | None = Field(
        None, description='Set to "b64_json" for servers that return URLs unless asked for image data.'
    )
    image_api: ImageApi = "images"
    responses_model: str | None = Field(None, description="The mainline model of Responses API calls.")
    responses_store: bool = True
    timeout_s: float = Field(DEFAULT_IMAGE_TIMEOUT_S, gt=0)

    def resolved_key(self) -> SecretStr | None:
        """The key given inline, else the one in `api_key_env`."""
        if self.api_key is not None:
            return self.api_key
        if self.api_key_env and os.environ.get(self.api_key_env):
            return SecretStr(os.environ[self.api_key_env])
        return None


def _comma_list(value: object) -> object:
    """A comma-separated list, or a JSON list, from an environment variable."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _split_paths(value: object) -> object:
    """`IMAGEGEN_ALLOWED_DIRS` is a path list separated by the OS path separator, or JSON."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part for part in text.split(os.pathsep) if part.strip()]
    return value


class Settings(_EnvFirstSettings):
    """Server options. Every field can be set as `IMAGEGEN_<NAME>` or in the TOML file."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_", extra="forbid")

    store_dir: Path = Field(default_factory=default_store_dir)
    store_url: str | None = Field(
        None,
        description="Keep images in S3-compatible object storage, s3://BUCKET/PREFIX (credentials and "
        "endpoint from the AWS_* variables), with the index in IMAGEGEN_DATABASE_URL: for replicas.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL (postgresql://user:password@host/db) shared by replicas: image index, "
        "usage ledger and budgets. Goes with IMAGEGEN_STORE_URL.",
    )
    models_dir: Path = Field(
        default_factory=default_models_dir, description="Where the local provider's model files are."
    )
    local_threads: int = Field(
        default_factory=default_local_threads,
        ge=1,
        le=64,
        description="Threads one local model inference may use.",
    )
    default_provider: str | None = None
    inline_max_bytes: int = Field(700_000, ge=10_000)
    inline_max_side: int = Field(1568, ge=64)
    allowed_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    max_input_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    allow_url_inputs: bool = Field(False, description="Let image inputs be http(s) URLs the server fetches.")
    url_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Non-public networks URL inputs may still reach, e.g. a NAS at 192.168.1.0/24.",
    )
    url_timeout_seconds: float = Field(30.0, gt=0, le=600)
    max_pixels: int = Field(8192 * 8192, ge=64 * 64)
    http_max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024)
    log_level: LogLevel = "INFO"
    wait_seconds: float = Field(
        45.0, ge=0, le=3600, description="How long a tool call waits before answering with a job handle."
    )
    heartbeat_seconds: float = Field(
        4.0, gt=0, le=60, description="Longest gap between progress notifications while a call waits."
    )
    job_timeout_seconds: float = Field(
        900.0, gt=0, description="Total time one call (a job) may take, provider retries included."
    )
    store_max_bytes: int | None = Field(
        None, ge=1024 * 1024, description="Delete the oldest images when the store grows past this."
    )
    store_max_age_days: float | None = Field(None, gt=0, description="Delete images older than this.")
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted over HTTP/SSE, comma-separated; `alice:TOKEN` names its owner.",
    )
    auth_tokens_file: Path | None = Field(
        None, description="A file of accepted bearer tokens: `TOKEN` or `name TOKEN [scope ...]` per line."
    )
    remote_allow_paths: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders whose files callers over authenticated HTTP/SSE may pass as image paths "
        "(default: none; file paths are refused remotely).",
    )
    auth_issuer: str | None = Field(None, description="OAuth issuer whose JWT access tokens are accepted.")
    auth_jwks_url: str | None = Field(
        None, description="The issuer's JWKS (default: ISSUER/.well-known/jwks.json)."
    )
    auth_audience: str | None = Field(
        None, description="Required `aud` of access tokens (default: public_url)."
    )
    auth_required_scopes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    link_ttl_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 86400,
        description="How long the download links in results stay valid (with public_url set).",
    )
    public_url: str | None = Field(
        None, description="This server's MCP URL as clients reach it, e.g. https://img.example.com/mcp."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host headers accepted over HTTP (DNS-rebinding protection)."
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origin headers accepted over HTTP."
    )
    rate_limit_per_minute: int | None = Field(
        None,
        ge=0,
        description="Image tool calls per minute for each client; 0 turns it off. Default: "
        f"{REMOTE_RATE_LIMIT_PER_MINUTE} over HTTP/SSE, none over stdio (one local user).",
    )
    max_concurrent_provider_calls: int = Field(
        1024,
        ge=1,
        le=4096,
        description="Provider calls in flight at once over all providers; more wait their turn.",
    )
    provider_concurrency: dict[str, Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=dict,
        description="Calls in flight at once per provider, over its default (256 for cloud APIs, 2 for "
        "local, 16 for [endpoints]).",
    )
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries of a provider request after 429, 5xx or a failed connection."
    )
    retry_base_seconds: float = Field(0.5, ge=0, le=60, description="First retry backoff; it doubles.")
    retry_after_max_seconds: float = Field(
        60.0, ge=0, description="Longest Retry-After honoured; a longer one is reported, not waited for."
    )
    job_retention_seconds: float = Field(
        3600.0, ge=0, description="How long a finished job's result stays available to get_job."
    )
    max_kept_jobs: int = Field(
        1000,
        ge=1,
        description="Finished jobs kept for get_job over everyone; past it the heaviest holder's go.",
    )
    max_kept_jobs_per_principal: int = Field(200, ge=1, description="Finished jobs kept per principal.")
    max_jobs: int = Field(
        4096,
        ge=1,
        description="Calls running or queued over everyone; past it only those below their fair share start.",
    )
    max_jobs_per_principal: int = Field(256, ge=1, description="Calls running or queued per principal.")
    budget_usd_per_day: float | None = Field(
        None,
        ge=0,
        description="Each principal's estimated spend per day (UTC) on provider calls; a call that would "
        "pass it is refused before any request. Per-principal values: [budgets] in the config file.",
    )
    budgets: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="Daily budgets in USD by principal name, over budget_usd_per_day."
    )
    confirm_above_usd: float | None = Field(
        None,
        ge=0,
        description="Ask the user (elicitation, where the client has it) before a call estimated above this.",
    )
    prices: list[PriceEntry] = Field(
        default_factory=list, description="Prices that add to or correct the built-in table ([[prices]])."
    )

    models: ModelsSettings = Field(default_factory=ModelsSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)
    google: GoogleSettings = Field(default_factory=GoogleSettings)
    vertex: VertexSettings = Field(default_factory=VertexSettings)
    scaleway: ScalewaySettings = Field(default_factory=ScalewaySettings)
    mistral: MistralSettings = Field(default_factory=MistralSettings)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)

    def private_paths(self, config_file: Path | None = None) -> list[Path]:
        """What a caller over the network may never read by path, whatever folder an operator
        allows: the store (everyone's images), the model files, the folder of the config file
        these settings came from, and the tokens file."""
        paths = [self.store_dir, self.models_dir]
        if config_file is not None:
            paths.append(config_file.expanduser().parent)
        if self.auth_tokens_file is not None:
            paths.append(self.auth_tokens_file)
        return paths

    def budget_for(self, principal: str) -> float | None:
        """The principal's daily budget in USD, or None for no limit."""
        return self.budgets.get(principal, self.budget_usd_per_day)

    def secret_values(self) -> list[str]:
        """Every credential configured, so that log lines and errors can be scrubbed of them."""
        keys = [
            self.openai.api_key,
            self.azure.api_key,
            self.azure.ad_token,
            self.google.api_key,
            self.vertex.access_token,
            self.scaleway.secret_key,
            self.mistral.api_key,
            *(endpoint.resolved_key() for endpoint in self.endpoints.values()),
        ]
        values = [key.get_secret_value() for key in keys if key is not None]
        if self.database_url is not None:
            url = self.database_url.get_secret_value()
            values += [url, urlsplit(url).password or ""]
        for token in self.auth_tokens:  # `name:TOKEN`: the token alone is the secret
            text = token.get_secret_value()
            values += [text, text.partition(":")[2]] if ":" in text else [text]
        return [value for value in values if value]

    @field_validator("allowed_dirs", "remote_allow_paths", mode="before")
    @classmethod
    def _parse_allowed_dirs(cls, value: object) -> object:
        return _split_paths(value)

    @field_validator(
        "url_allowed_networks",
        "auth_tokens",
        "auth_required_scopes",
        "allowed_hosts",
        "allowed_origins",
        mode="before",
    )
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("store_dir", "models_dir", mode="after")
    @classmethod
    def _expand_store_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("allowed_dirs", "remote_allow_paths", mode="after")
    @classmethod
    def _expand_allowed_dirs(cls, value: list[Path]) -> list[Path]:
        return [path.expanduser() for path in value]

    @field_validator("store_url", mode="after")
    @classmethod
    def _check_store_url(cls, value: str | None) -> str | None:
        if value is not None:
            StoreUrl.parse(value)
        return value

    @model_validator(mode="after")
    def _shared_store_needs_both(self) -> Settings:
        """Object storage without a shared index (or the reverse) would be a store that replicas
        cannot share: say which half is missing."""
        if (self.store_url is None) != (self.database_url is None):
            missing = "IMAGEGEN_DATABASE_URL" if self.database_url is None else "IMAGEGEN_STORE_URL"
            raise ValueError(
                f"a shared store needs both IMAGEGEN_STORE_URL (s3://bucket/prefix) and "
                f"IMAGEGEN_DATABASE_URL (postgresql://…); {missing} is not set"
            )
        return self


def load_settings(config_file: Path | None = None) -> Settings:
    """Build the settings from the environment and, if given, a TOML file.

    Raises ConfigError naming the file or variable when a value is invalid.
    """
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.expanduser().read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
    providers = data.pop("providers", {})
    try:
        if not isinstance(providers, dict):
            raise ConfigError(f"[providers] in {config_file} must be a table")
        unknown = set(providers) - set(PROVIDER_SECTIONS)
        if unknown:
            raise ConfigError(
                f"unknown provider section(s) {sorted(unknown)} in {config_file}; use [providers.NAME] for "
                f"{', '.join(PROVIDER_SECTIONS)}, or [endpoints.NAME] for OpenAI-compatible servers"
            )
        models = data.pop("models", {})
        if not isinstance(models, dict):
            raise ConfigError(f"[models] in {config_file} must be a table")
        return Settings(
            **data,
            models=ModelsSettings(**models),
            openai=OpenAISettings(**providers.get("openai", {})),
            azure=AzureSettings(**providers.get("azure", {})),
            google=GoogleSettings(**providers.get("google", {})),
            vertex=VertexSettings(**providers.get("vertex", {})),
            scaleway=ScalewaySettings(**providers.get("scaleway", {})),
            mistral=MistralSettings(**providers.get("mistral", {})),
        )
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, config_file)) from None


def _describe_validation_error(exc: ValidationError, config_file: Path | None) -> str:
    """Name each bad setting without echoing its value (it may be a secret)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    source = f" (environment or {config_file})" if config_file else " (environment)"
    return f"invalid settings{source}: " + "; ".join(problems)
