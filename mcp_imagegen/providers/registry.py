"""Provider names -> the modules that declare them, imported lazily, and routing by capability.

Each provider module declares its `ProviderSpec` (`providers/spec.py`); this map says where to
find it, and `spec_for` imports that module the first time the spec is needed. A real provider
is never swapped for the placeholder: the placeholder is used only when named or set as the
default.
"""

from __future__ import annotations

import importlib
from functools import cache

import httpx2

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ConfigError, InputError, UnsupportedOptionError
from mcp_imagegen.operations import Operation, OperationSpec, ProviderT
from mcp_imagegen.providers.base import Capabilities, Provider
from mcp_imagegen.providers.model_data import shipped
from mcp_imagegen.providers.spec import CLOUD_IN_FLIGHT, ProviderSpec

LOCAL = "local"
"""The on-machine provider: always available, and chosen only when no cloud provider can do the job."""
PLACEHOLDER = "placeholder"
BUILTIN = {
    "openai": "mcp_imagegen.providers.openai.endpoint:OPENAI",
    "azure": "mcp_imagegen.providers.openai.endpoint:AZURE",
    "google": "mcp_imagegen.providers.google.endpoint:GEMINI",
    "vertex": "mcp_imagegen.providers.google.endpoint:VERTEX",
    "mistral": "mcp_imagegen.providers.mistral.provider:SPEC",
    "scaleway": "mcp_imagegen.providers.scaleway.provider:SPEC",
    LOCAL: "mcp_imagegen.providers.local.spec:SPEC",
    PLACEHOLDER: "mcp_imagegen.providers.placeholder:SPEC",
}
"""Built-in provider names, in the order routing tries them, and where each one's spec lives."""


@cache
def spec_for(name: str) -> ProviderSpec:
    """The spec of a built-in provider, importing its module on first use."""
    module, attribute = BUILTIN[name].split(":")
    spec = getattr(importlib.import_module(module), attribute)
    assert isinstance(spec, ProviderSpec)
    return spec


def no_provider_message() -> str:
    """What to set, built from every provider's spec."""
    hints = [spec_for(name).enable_hint for name in BUILTIN if spec_for(name).enable_hint]
    return (
        f"no image provider is configured. Set {', '.join(hints)}, or add an [endpoints.NAME] section to "
        "the config file. (segment_image, upscale_image and describe_image need no key: the local provider "
        "runs them on this machine.) For labelled test images with no AI, pass provider='placeholder' or "
        "set IMAGEGEN_DEFAULT_PROVIDER=placeholder."
    )


class ProviderCatalog:
    """Every provider these settings know of, what each can do, and which serve an operation:
    all read from the specs, without building any provider."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        clashes = sorted(set(settings.endpoints) & set(BUILTIN))
        if clashes:
            raise ConfigError(f"[endpoints] names {clashes} clash with built-in providers; rename them")
        self._names = [*BUILTIN, *settings.endpoints]

    @property
    def names(self) -> list[str]:
        """Every provider, built-in ones first, in routing order."""
        return list(self._names)

    @property
    def specs(self) -> list[ProviderSpec]:
        return [self.spec(name) for name in self._names]

    def spec(self, name: str) -> ProviderSpec:
        """The one accessor: a built-in provider's spec from its module, or a named endpoint's."""
        if name in BUILTIN:
            return spec_for(name)
        endpoint = self._settings.endpoints.get(name)
        if endpoint is None:
            raise InputError(f"unknown provider {name!r}; known providers: {', '.join(self._names)}")
        from mcp_imagegen.providers.openai.endpoint import endpoint_spec

        return endpoint_spec(name, endpoint)

    def in_flight(self, name: str) -> int:
        """How many calls `name` may have in flight at once: [provider_concurrency], else its spec's."""
        configured = self._settings.provider_concurrency.get(name)
        if configured is not None:
            return configured
        try:
            return self.spec(name).max_in_flight
        except InputError:  # not a provider (the conformance fixtures' jobs)
            return CLOUD_IN_FLIGHT

    def is_configured(self, name: str) -> bool:
        return self.spec(name).is_configured(self._settings)

    def capabilities(self, name: str) -> Capabilities:
        return self.spec(name).capabilities(self._settings)

    def notes(self, name: str) -> str:
        """The provider's notes, with what is ready on this machine where the provider says."""
        spec = self.spec(name)
        notes = spec.capabilities(self._settings).notes
        return f"{notes} {spec.readiness(self._settings)}" if spec.readiness else notes

    def default_name(self, operation: Operation) -> str:
        """`IMAGEGEN_DEFAULT_PROVIDER` if set and able, else the first configured real provider
        that can do `operation` (the local provider last)."""
        preferred = self._settings.default_provider
        if preferred and (
            preferred not in self._names or operation in self.capabilities(preferred).operations
        ):
            return preferred
        for name in sorted(self._names, key=lambda name: name == LOCAL):
            if self._serves(name, operation):
                return name
        raise ConfigError(no_provider_message())

    def serving(self, operation: Operation) -> list[str]:
        """The providers a call for `operation` can reach on this installation: the configured real
        ones whose runtimes are installed, and the placeholder where it is the default or no real
        provider can do it."""
        real = [
            name
            for name in self._names
            if self._serves(name, operation) and operation in self._installed(name)
        ]
        placeholder_able = operation in self.capabilities(PLACEHOLDER).operations
        if placeholder_able and (not real or self._settings.default_provider == PLACEHOLDER):
            real.append(PLACEHOLDER)
        return real

    def _installed(self, name: str) -> frozenset[Operation]:
        spec = self.spec(name)
        caps = spec.capabilities(self._settings)
        return spec.installed(self._settings) if spec.installed else caps.operations

    def _serves(self, name: str, operation: Operation) -> bool:
        """A configured real provider (never the placeholder) that can do `operation`."""
        return (
            name != PLACEHOLDER
            and self.is_configured(name)
            and operation in self.capabilities(name).operations
        )

    def _models(self, name: str, operation: Operation) -> tuple[str, ...]:
        caps = self.capabilities(name)
        return caps.vision_models if operation == "describe" else caps.models


class ProviderRegistry(ProviderCatalog):
    """Builds providers on first use and picks one for each call."""

    def __init__(self, settings: Settings, client: httpx2.AsyncClient) -> None:
        super().__init__(settings)
        self._client = client
        self._built: dict[str, Provider] = {}

    def provider_for(
        self, operation: OperationSpec[ProviderT], name: str | None, model: str | None = None
    ) -> ProviderT:
        """The provider a call for `operation` names, or the one configured provider that serves
        `model`, or the default for the operation; refused when it cannot do the operation."""
        op = operation.name
        provider = self._get(name or self._by_model(op, model) or self.default_name(op))
        if op not in provider.capabilities.operations or not isinstance(provider, operation.protocol):
            raise self._cannot(provider.name, op)
        return provider

    def checks_models(self) -> bool:
        """Whether a configured provider has a live model list (`mcp-imagegen models check`)."""
        return any(spec.live_models is not None and self.is_configured(spec.name) for spec in self.specs)

    def _by_model(self, operation: Operation, model: str | None) -> str | None:
        """With no provider named: the one configured provider that serves `model`, if exactly one
        does; else the one the model data knows it at (a retired model goes to its own provider, to
        be refused there with its replacement, not to the default as an unknown name)."""
        if model is None:
            return None
        able = [name for name in self._names if self._serves(name, operation)]
        serving = [name for name in able if model in self._models(name, operation)]
        if not serving:
            serving = [name for name in able if shipped().find(name, model) is not None]
        return serving[0] if len(serving) == 1 else None

    def _cannot(self, name: str, operation: Operation) -> UnsupportedOptionError:
        able = [other for other in self._names if operation in self.capabilities(other).operations]
        return UnsupportedOptionError(
            f"{name} cannot {operation} images; providers that can: {', '.join(able)}"
        )

    def _get(self, name: str) -> Provider:
        if name in self._built:
            return self._built[name]
        spec = self.spec(name)
        if not spec.is_configured(self._settings):
            raise ConfigError(f"the {name} provider is not configured: set {' and '.join(spec.env_vars)}")
        provider = spec.build(self._settings, self._client)
        self._built[name] = provider
        return provider
