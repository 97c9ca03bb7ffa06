"""What the tool list offers on this installation: the tools some reachable provider can run, and
of each tool's options only those such a provider takes. It changes with configuration only, never
from call to call; `list_providers` still says what every provider could do if configured, and
the manifests (`Surface.everything`) keep the full static list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mcp_imagegen.config import Settings
from mcp_imagegen.operations import OPERATIONS, Operation
from mcp_imagegen.providers.base import Capabilities
from mcp_imagegen.providers.options import OPTION_NAMES
from mcp_imagegen.providers.registry import ProviderCatalog


@dataclass(frozen=True)
class Offer:
    """One operation as this installation offers it."""

    providers: tuple[str, ...]
    """The providers a call can reach, the default first."""
    options: frozenset[str]
    """Every option some of them take."""
    values: Mapping[str, tuple[str, ...]]
    """Options whose values every provider offering them narrows, with the union of those values
    (`output_format` always: the formats the providers make)."""


@dataclass(frozen=True)
class Surface:
    offers: Mapping[Operation, Offer] | None
    """None: everything, as the manifests list it."""

    @classmethod
    def of(cls, settings: Settings) -> Surface:
        catalog = ProviderCatalog(settings)
        offers: dict[Operation, Offer] = {}
        for operation in (spec.name for spec in OPERATIONS):
            providers = catalog.serving(operation)
            if not providers:
                continue
            caps = [catalog.capabilities(name) for name in providers]
            offers[operation] = Offer(
                providers=tuple(providers),
                options=frozenset(name for cap in caps for name in cap.options),
                values=_narrowed(caps),
            )
        return cls(offers)

    @classmethod
    def everything(cls) -> Surface:
        return cls(None)

    def offers_operation(self, operation: Operation) -> bool:
        return self.offers is None or operation in self.offers

    def offer(self, operation: Operation) -> Offer | None:
        """The operation's offer, or None when everything is listed."""
        return None if self.offers is None else self.offers.get(operation)

    def keeps(self, operation: Operation, option: str) -> bool:
        """Whether the tool for `operation` lists `option` (options outside `OPTION_NAMES`, such as
        describe's, are taken by every provider of the operation)."""
        offer = self.offer(operation)
        return offer is None or option not in OPTION_NAMES or option in offer.options


def _narrowed(caps: list[Capabilities]) -> dict[str, tuple[str, ...]]:
    """Per option, the union of the values the providers that honour it declare, where all do."""
    declared: dict[str, list[tuple[str, ...] | None]] = {}
    for cap in caps:
        values = {"output_format": cap.output_formats, **cap.option_values}
        for option in cap.options:
            declared.setdefault(option, []).append(values.get(option))
    return {
        option: tuple(dict.fromkeys(value for values in lists for value in values or ()))
        for option, lists in declared.items()
        if all(values is not None for values in lists)
    }
