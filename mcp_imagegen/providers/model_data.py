"""What the server knows about the providers' models, as data with a source and a date: one
`models.toml` per vendor package (`providers/openai/models.toml`, ...), read once.

Each entry names a model (with its snapshots and aliases), the providers that serve it under that
name, what it does, its price and its lifecycle: active, deprecated (it works; a notice gives the
shutdown date) or shut down (never sent), with the provider's named replacements, where that was
read and the day it was checked. A model the data does not know (an Azure deployment, a
compatible server's model, next month's release) is not judged: it passes through.

A lifecycle is judged on a day: a deprecated model whose shutdown date has come is shut down,
so an entry written months ahead stays right without an edit.
"""

from __future__ import annotations

import datetime
import functools
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_imagegen.operations import Operation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

Status = Literal["active", "deprecated", "shut_down"]
Role = Literal["generate", "edit", "describe", "mainline"]
"""What a provider's default model is chosen for: an operation, or the Responses API's mainline."""
VENDOR_PACKAGES = ("openai", "google", "mistral", "scaleway")
AREA_OFFSET = 2_000_000
"""OpenAI's image tokens grow with (AREA_OFFSET + pixels) at a given quality (its calculator)."""
AUTO_PIXELS = 1536 * 1024
"""The vendor packages under `providers/` that ship a `models.toml`."""


class Rates(BaseModel):
    """What a model costs: per image made (one rate, or a table by quality and size), per call,
    or per million input and output tokens. (`usage.prices.PriceEntry` adds what it applies to.)"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd_per_image: float | None = Field(None, ge=0)
    usd_per_call: float | None = Field(None, ge=0)
    usd_per_million_input_tokens: float | None = Field(None, ge=0)
    usd_per_million_output_tokens: float | None = Field(None, ge=0)
    max_output_tokens_per_image: int | None = Field(
        None,
        gt=0,
        description="For a token-priced image model: the most output tokens one image can be billed "
        "(at the largest size and quality it is priced for), what a reservation holds per image.",
    )
    output_tokens_at_1024: dict[str, int] = Field(
        default_factory=dict,
        description="For an OpenAI image model billed by tokens: one 1024x1024 image's output tokens "
        "by quality; other sizes scale as OpenAI's calculator does (see `image_output_bound`).",
    )
    table: tuple[tuple[str, str, float], ...] = Field(
        (), description="[quality, size, usd_per_image] rows, each becoming an entry of its own."
    )
    note: str | None = None
    source: str = Field(min_length=1, description="Where the price was read: a URL, or a [sources] key.")
    as_of: datetime.date

    def image_output_bound(self, quality: str | None, size: str | None) -> int | None:
        """The most output tokens one image at `quality` and `size` is billed: from the tokens at
        1024x1024 (a quality left open is `auto`'s, else the dearest), scaled by
        (2,000,000 + pixels) / 3,048,576 as OpenAI's calculator scales them (a size left open is
        taken as 1536x1024, the largest the model picks itself); else
        `max_output_tokens_per_image`."""
        if not self.output_tokens_at_1024:
            return self.max_output_tokens_per_image
        dearest = max(self.output_tokens_at_1024.values())
        at_1024 = self.output_tokens_at_1024.get(quality or "auto", dearest)
        width, _, height = (size or "").partition("x")
        pixels = int(width) * int(height) if width.isdigit() and height.isdigit() else AUTO_PIXELS
        return math.ceil(at_1024 * (AREA_OFFSET + pixels) / (AREA_OFFSET + 1024 * 1024))

    @model_validator(mode="after")
    def _priced(self) -> Rates:
        tokens = (self.usd_per_million_input_tokens, self.usd_per_million_output_tokens)
        if self.table or self.usd_per_image is not None or self.usd_per_call is not None:
            return self
        if None not in tokens:
            return self
        raise ValueError("a price: give usd_per_image, usd_per_call, a table, or both token prices")


class ModelRecord(BaseModel):
    """One model as the data knows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    """Snapshots and other names of the same model, judged as it is."""
    providers: tuple[str, ...] = Field(min_length=1)
    """The providers (as list_providers names them) whose calls this entry judges."""
    kind: Literal["image", "text"]
    """An image model, or a text model with vision (describe, the Responses API's mainline)."""
    operations: tuple[Operation, ...] = ()
    status: Status = "active"
    shutdown: datetime.date | None = None
    """The day the provider shuts it down (announced), or did."""
    deprecated: datetime.date | None = None
    replacements: tuple[str, ...] = ()
    """What the provider names in its place, first the one a call is moved to."""
    default_for: tuple[Role, ...] = ()
    """The roles it is the providers' default for."""
    source: str = Field(min_length=1)
    """Where the lifecycle was read: a URL, or a key of the file's [sources]."""
    checked: datetime.date
    note: str | None = None
    price: Rates | None = None
    aspect_ratios: tuple[str, ...] = ()
    """The `aspect_ratio` values it takes, where they differ by model (Gemini); empty: not listed."""
    image_sizes: tuple[str, ...] = ()
    """The `image_size` values it takes (Gemini: "1K", "2K", "4K"); empty: not listed."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelRecord:
        if self.status == "shut_down" and self.shutdown is None:
            raise ValueError(f"{self.id}: a shut-down model needs its shutdown date")
        if self.default_for and self.status == "shut_down":
            raise ValueError(f"{self.id}: a shut-down model cannot be a default")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def status_on(self, day: datetime.date) -> Status:
        """Its state on `day`: shut down from its shutdown date on, whatever it was written as."""
        if self.shutdown is not None and self.shutdown <= day:
            return "shut_down"
        return self.status


@dataclass(frozen=True)
class Judgement:
    """What the data says of a call to one model on one day."""

    record: ModelRecord
    status: Status
    vendor: str
    """Who shuts it down, in words ("OpenAI")."""

    @property
    def model(self) -> str:
        return self.record.id

    def refusal(self, asked: str) -> str:
        """Why a call to a shut-down model is not sent, and what to use instead."""
        when = self.record.shutdown.isoformat() if self.record.shutdown else "an earlier date"
        instead = _either(self.record.replacements)
        said = f"{asked} was shut down by {self.vendor} on {when}"
        said += f"; use {instead}" if instead else "; pick another model (list_providers)"
        return (
            f"{said}. Nothing was sent. (Source: {self.record.source}, checked "
            f"{self.record.checked.isoformat()}; `mcp-imagegen models check` asks the provider.)"
        )

    def notice(self, asked: str) -> str | None:
        """What a result of a deprecated model says; None for an active one."""
        if self.status != "deprecated":
            return None
        when = f" on {self.record.shutdown.isoformat()}" if self.record.shutdown else ""
        instead = _either(self.record.replacements)
        return (
            f"{asked} is deprecated: {self.vendor} shuts it down{when}"
            + (f"; move to {instead}" if instead else "")
            + f" (source: {self.record.source})."
        )


def _either(names: Sequence[str]) -> str:
    return " or ".join(names)


VENDOR_NAMES = {"openai": "OpenAI", "azure": "Azure OpenAI", "google": "Google", "vertex": "Google"}


class ModelBook:
    """Every vendor's model data, looked up by provider and model name."""

    def __init__(self, records: Iterable[ModelRecord]) -> None:
        self._records = tuple(records)
        self._by_name: dict[tuple[str, str], ModelRecord] = {}
        for record in self._records:
            for provider in record.providers:
                for name in record.names:
                    if (provider, name) in self._by_name:
                        raise ValueError(f"model data: {name} is listed twice for {provider}")
                    self._by_name[provider, name] = record

    @property
    def records(self) -> tuple[ModelRecord, ...]:
        return self._records

    def with_overlay(self, overlay: Overlay | None) -> ModelBook:
        """This data with what `models check` learned laid over it: each overlay entry (for one
        provider) takes the place of the data's entry for that provider and its names, or adds
        a model the data did not know."""
        if overlay is None or not overlay.records:
            return self
        learned = {
            (provider, name)
            for record in overlay.records
            for provider in record.providers
            for name in record.names
        }
        kept: list[ModelRecord] = []
        for record in self._records:
            providers = tuple(
                provider
                for provider in record.providers
                if not any((provider, name) in learned for name in record.names)
            )
            if providers == record.providers:
                kept.append(record)
            elif providers:
                kept.append(record.model_copy(update={"providers": providers}))
        return ModelBook([*kept, *overlay.records])

    def find(self, provider: str, model: str) -> ModelRecord | None:
        return self._by_name.get((provider, model))

    def judge(self, provider: str, model: str, day: datetime.date) -> Judgement | None:
        """The data's word on `model` at `provider` on `day`; None where it does not know it."""
        record = self.find(provider, model)
        if record is None:
            return None
        return Judgement(
            record,
            record.status_on(day),
            VENDOR_NAMES.get(provider, provider.capitalize()),
        )

    def models(
        self,
        provider: str,
        kind: Literal["image", "text"],
        day: datetime.date,
        operation: Operation | None = None,
    ) -> tuple[str, ...]:
        """The models of `kind` (doing `operation`, if given) the provider still serves on `day`,
        defaults first, then the active before the deprecated."""
        alive = [
            record
            for record in self._records
            if provider in record.providers
            and record.kind == kind
            and (operation is None or operation in record.operations)
            and record.status_on(day) != "shut_down"
        ]
        alive.sort(key=lambda record: (not record.default_for, record.status_on(day) != "active"))
        return tuple(record.id for record in alive)

    def default(self, provider: str, role: Role) -> str | None:
        """The provider's default model for `role`, as the data names it."""
        return next(
            (
                record.id
                for record in self._records
                if provider in record.providers and role in record.default_for
            ),
            None,
        )


def load(texts: Iterable[str]) -> ModelBook:
    """The book of the given `models.toml` texts, each entry's sources (its lifecycle's and its
    price's) resolved through its own file's [sources]."""
    records: list[ModelRecord] = []
    for text in texts:
        document = tomllib.loads(text)
        sources: dict[str, str] = document.get("sources", {})
        for raw in document.get("model", []):
            record = ModelRecord.model_validate(raw)
            price = record.price
            if price is not None:
                price = price.model_copy(update={"source": sources.get(price.source, price.source)})
            records.append(
                record.model_copy(
                    update={"source": sources.get(record.source, record.source), "price": price}
                )
            )
    return ModelBook(records)


@functools.cache
def shipped() -> ModelBook:
    """The data shipped in the package."""
    return load(
        resources.files(f"mcp_imagegen.providers.{vendor}")
        .joinpath("models.toml")
        .read_text(encoding="utf-8")
        for vendor in VENDOR_PACKAGES
    )


def today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


class Overlay(BaseModel):
    """What `mcp-imagegen models check` learned from the providers' live lists, kept in the store
    (shared by replicas) and laid over the shipped data by every server that reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checked_at: datetime.datetime
    records: tuple[ModelRecord, ...] = ()
    """Entries whose lifecycle the live lists changed (one provider each)."""
    report: tuple[str, ...] = ()
    """The check's findings in words, for `doctor`."""


@dataclass(frozen=True)
class LiveModel:
    """A model as a provider's live list shows it (`mcp-imagegen models check`)."""

    id: str
    shutdown: datetime.date | None = None
    """The shutdown date the list announces (OpenAI's `shutdown_date`, Mistral's `deprecation`)."""
    replacement: str | None = None
    image: bool = False
    """An image model, by what the list says of it or by its name."""


@dataclass(frozen=True)
class LiveList:
    """A provider's live model list: where it was read, and what it holds."""

    provider: str
    source: str
    models: tuple[LiveModel, ...]
    absent_is_gone: bool = False
    """A model the data knows that is missing here is gone (Gemini's list is the same for every
    key; Vertex answers 404 for it). Elsewhere a missing model may only be withheld from this key."""


def parse_date(value: object) -> datetime.date | None:
    """A `YYYY-MM-DD` (or ISO timestamp) date from a list entry; None for null, absent or unreadable
    (OpenAI: "treat absent and null alike")."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        return None
