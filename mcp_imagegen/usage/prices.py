"""What a call costs: the price table (`prices.toml` in the package, dated and sourced, plus the
config file's `[[prices]]`), and the estimate of one call before it is made and after it ends.

An unknown price is `None` everywhere, never 0: a report says "unknown", and a budget refuses a
call it cannot price rather than letting it through unseen.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from pydantic import Field, JsonValue

from mcp_imagegen.operations import Operation
from mcp_imagegen.providers.base import Mainline, MainlineUse, Tokens
from mcp_imagegen.providers.model_data import ModelRecord, Rates, shipped

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

VISION_INPUT_TOKENS_PER_IMAGE = 1_600
"""An image sent to a vision model, downscaled to what the model uses, is at most about this many
input tokens on the listed models."""
VISION_PROMPT_TOKENS = 500
"""The request's own framing around the caller's text (roles, image parts, instructions)."""
CONTINUED_CONTEXT_TOKENS = 2 * VISION_INPUT_TOKENS_PER_IMAGE + VISION_PROMPT_TOKENS
"""What a Responses call that continues an earlier response is billed again for that response's
context: its image in, the image it made, and its framing (about; a long chain holds more)."""


def text_tokens(text: str) -> int:
    """At least the tokens `text` takes on the listed tokenizers: one per two UTF-8 bytes, where
    English takes one per four characters and CJK scripts about one per character (three bytes)."""
    return (len(text.encode("utf-8")) + 1) // 2


class PriceEntry(Rates):
    """One row of the price table: rates (`Rates`), and the calls they apply to."""

    providers: tuple[str, ...] = Field(min_length=1)
    model: str = Field(min_length=1, description='An exact model id, or a prefix ending in "*".')
    operations: tuple[Operation, ...] = ()
    quality: str | None = None
    size: str | None = None

    @classmethod
    def of_model(cls, record: ModelRecord, rates: Rates) -> list[PriceEntry]:
        """The entries of a model in the model data, one per name it goes by. A text model's price
        applies wherever it runs (describe, and as a mainline model); an image model's to its
        operations."""
        operations = record.operations if record.kind == "image" else ()
        return [
            cls(providers=record.providers, model=name, operations=operations, **rates.model_dump())
            for name in record.names
        ]

    def rows(self) -> list[PriceEntry]:
        """The entry with its table spread into one entry per quality and size."""
        if not self.table:
            return [self]
        return [
            self.model_copy(
                update={"quality": quality or None, "size": size, "usd_per_image": usd, "table": ()}
            )
            for quality, size, usd in self.table
        ]

    def fits(self, charge: Charge) -> bool:
        if charge.provider not in self.providers and "*" not in self.providers:
            return False
        if self.operations and charge.operation not in self.operations:
            return False
        if self.model.endswith("*"):
            if not charge.model.startswith(self.model[:-1]):
                return False
        elif charge.model != self.model:
            return False
        return _agrees(self.quality, charge.quality) and _agrees(self.size, charge.size)

    def specificity(self, charge: Charge) -> int:
        """Exact model beats a prefix; a named quality or size beats any."""
        exact = 0 if self.model.endswith("*") else 4
        return (
            exact
            + (2 if self.quality and self.quality == charge.quality else 0)
            + (1 if self.size and self.size == charge.size else 0)
        )


def _agrees(entry_value: str | None, asked: str | None) -> bool:
    """An entry for one value fits a call asking for it, or leaving it to the provider."""
    return entry_value is None or asked in (None, "auto") or entry_value == asked


@dataclass(frozen=True)
class Charge:
    """What drives the cost of one provider call, known before it is made."""

    provider: str
    model: str
    operation: Operation
    images: int = 1
    """Images asked for (or, for describe, images sent)."""
    size: str | None = None
    quality: str | None = None
    input_tokens: int | None = None
    """For a token-priced call: the input tokens it sends (its text and input images), estimated
    from above before it is made."""
    output_tokens: int | None = None
    """For a token-priced call: the output cap it sends, so the most it can be billed for (an
    image model is bounded per image by its price entry instead)."""
    mainline: Mainline | None = None
    """The text model the call also runs and pays for (the Responses API's), priced on its own."""

    def mainline_charge(self) -> Charge | None:
        """The mainline model's part, as a charge of its own: the caller's text and images with
        the request's framing (and a continued response's context) in, the cap out."""
        if self.mainline is None:
            return None
        continued = CONTINUED_CONTEXT_TOKENS if self.mainline.may_continue else 0
        return Charge(
            self.provider,
            self.mainline.model,
            self.operation,
            images=0,
            input_tokens=VISION_PROMPT_TOKENS + (self.input_tokens or 0) + continued,
            output_tokens=self.mainline.max_output_tokens,
        )

    def describe(self) -> str:
        options = ", ".join(value for value in (self.quality, self.size) if value)
        return f"{self.provider} {self.model} {self.operation}" + (f" ({options})" if options else "")


@dataclass(frozen=True)
class Estimate:
    usd: float | None
    """None: no price is known."""
    basis: str
    """How it was reached, in words: the price used, its source and date, or why it is unknown."""

    def facts(self) -> dict[str, JsonValue]:
        return {"estimated_usd": self.usd, "basis": self.basis}


@dataclass(frozen=True)
class Metering:
    """What a finished call made and was billed for, as its reply said."""

    images: int = 0
    tokens: Tokens | None = None
    """The image or vision model's tokens."""
    mainline: MainlineUse | None = None
    """The mainline model that ran, if one did, and its tokens."""


def _sum(first: Estimate, second: Estimate | None) -> Estimate:
    """Two parts of one call's cost: unknown if either is."""
    if second is None:
        return first
    usd = None if first.usd is None or second.usd is None else round(first.usd + second.usd, 6)
    return Estimate(usd, f"{first.basis}; plus {second.basis}")


class PriceTable:
    """The package's prices with the configured ones in front."""

    def __init__(self, overrides: Sequence[PriceEntry] = ()) -> None:
        builtin, self._sources = _builtin()
        self._overrides = [row for entry in overrides for row in entry.rows()]
        self._builtin = builtin

    def price(self, charge: Charge) -> PriceEntry | None:
        for entries in (self._overrides, self._builtin):
            fitting = [entry for entry in entries if entry.fits(charge)]
            if fitting:
                best = max(entry.specificity(charge) for entry in fitting)
                return max((entry for entry in fitting if entry.specificity(charge) == best), key=_dearness)
        return None

    def estimate(self, charge: Charge) -> Estimate:
        """Before the call: the most it can cost for what it asks (its images, its token bounds),
        with its mainline model's part added."""
        return _sum(self._estimate_one(charge), self._mainline(charge, None))

    def settle(self, charge: Charge, metering: Metering) -> Estimate:
        """After the call: priced on the images made and the tokens the provider reported (a part
        whose tokens were not reported stays at its reservation); a cost above the reservation
        says so in its basis, which the ledger keeps."""
        settled = _sum(self._settle_one(charge, metering), self._mainline(charge, metering))
        reserved = self.estimate(charge)
        if settled.usd is not None and reserved.usd is not None and settled.usd > reserved.usd + 1e-9:
            return Estimate(
                settled.usd,
                f"over its reservation of ${reserved.usd:g}: the provider reported more tokens than "
                f"the call was bounded by; {settled.basis}",
            )
        return settled

    def _estimate_one(self, charge: Charge) -> Estimate:
        entry = self.price(charge)
        if entry is None:
            return Estimate(
                None, f"no price is known for {charge.describe()}; add one with [[prices]] in the config file"
            )
        if entry.usd_per_image is not None:
            return self._per_image(entry, charge, charge.images)
        if entry.usd_per_call is not None:
            return Estimate(entry.usd_per_call, f"${entry.usd_per_call:g} per call{self._cited(entry)}")
        tokens_out = charge.output_tokens
        per_image = entry.image_output_bound(charge.quality, charge.size)
        if per_image is not None and charge.operation != "describe":
            tokens_out = per_image * charge.images
        if tokens_out is None or charge.input_tokens is None:
            return Estimate(
                None,
                f"{charge.describe()} is priced by tokens, and nothing bounds its output: give its "
                "[[prices]] entry max_output_tokens_per_image",
            )
        return self._per_tokens(entry, Tokens(charge.input_tokens, tokens_out), "at most about")

    def _settle_one(self, charge: Charge, metering: Metering) -> Estimate:
        entry = self.price(charge)
        if entry is None:
            return self._estimate_one(charge)
        if entry.usd_per_image is not None:
            return self._per_image(entry, charge, metering.images)
        if entry.usd_per_call is None and metering.tokens is not None:
            return self._per_tokens(entry, metering.tokens, "")
        return self._estimate_one(charge)

    def _mainline(self, charge: Charge, metering: Metering | None) -> Estimate | None:
        """The mainline model's part: its bound before the call (`metering` None); after it, its
        reported tokens, its bound where none were reported, nothing where it did not run."""
        part = charge.mainline_charge()
        if part is None:
            return None
        if metering is not None and metering.mainline is None:
            return Estimate(0.0, f"no mainline model ran ({part.model} was reserved)")
        entry = self.price(part)
        tokens = metering.mainline.tokens if metering is not None and metering.mainline else None
        if entry is not None and tokens is not None and entry.usd_per_call is None:
            found = self._per_tokens(entry, tokens, "")
        else:
            found = self._estimate_one(part)
        return Estimate(found.usd, f"mainline model {part.model}: {found.basis}")

    def _per_image(self, entry: PriceEntry, charge: Charge, images: int) -> Estimate:
        assert entry.usd_per_image is not None
        usd = round(entry.usd_per_image * images, 6)
        chosen = ", ".join(value for value in (entry.quality, entry.size) if value)
        left_open = [
            name
            for name, asked, fixed in (
                ("quality", charge.quality, entry.quality),
                ("size", charge.size, entry.size),
            )
            if fixed and asked in (None, "auto")
        ]
        dearest = (
            f"; {' and '.join(left_open)} left to the provider: priced at the dearest" if left_open else ""
        )
        return Estimate(
            usd,
            f"{images} image(s) x ${entry.usd_per_image:g} ({entry.model}"
            + (f", {chosen}" if chosen else "")
            + f"){dearest}{self._cited(entry)}",
        )

    def _per_tokens(self, entry: PriceEntry, tokens: Tokens, hedge: str) -> Estimate:
        price_in = entry.usd_per_million_input_tokens or 0.0
        price_out = entry.usd_per_million_output_tokens or 0.0
        usd = round((tokens.input * price_in + tokens.output * price_out) / 1_000_000, 6)
        lead = f"{hedge} " if hedge else ""
        return Estimate(
            usd,
            f"{lead}{tokens.input:,} input and {tokens.output:,} output tokens at ${price_in:g} and "
            f"${price_out:g} per million ({entry.model}){self._cited(entry)}",
        )

    def _cited(self, entry: PriceEntry) -> str:
        source = self._sources.get(entry.source, entry.source)
        note = f"; {entry.note}" if entry.note else ""
        return f"{note}; price as of {entry.as_of.isoformat()}: {source}"


def _dearness(entry: PriceEntry) -> float:
    return max(
        entry.usd_per_image or 0.0,
        entry.usd_per_call or 0.0,
        entry.usd_per_million_output_tokens or 0.0,
    )


@functools.cache
def _builtin() -> tuple[list[PriceEntry], dict[str, str]]:
    """The prices in the model data (`providers/*/models.toml`), and the rest in `prices.toml`."""
    text = resources.files("mcp_imagegen.usage").joinpath("prices.toml").read_text(encoding="utf-8")
    document = tomllib.loads(text)
    entries = [PriceEntry.model_validate(raw) for raw in document.get("price", [])]
    entries += [
        entry
        for record in shipped().records
        if record.price is not None
        for entry in PriceEntry.of_model(record, record.price)
    ]
    return [row for entry in entries for row in entry.rows()], dict(document.get("sources", {}))
