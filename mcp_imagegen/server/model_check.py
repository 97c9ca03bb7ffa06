"""The model check (`mcp-imagegen models check`, and a server's daily run): ask every configured
provider for its live model list (at once), compare it with the shipped model data, say what is
shut down, what is deprecated and when, and which image models are new, and keep what it learned
in the store's overlay, which every server reading that store honours from then on (no restart,
no release).

What a list says:
- OpenAI and Azure (`GET /models`): `shutdown_date` (absent and null alike), Azure's
  `deprecation.inference`; past the date, shut down; before it, deprecated.
- Mistral (`GET /v1/models`): `deprecation` and `deprecation_replacement_model`.
- Gemini (`models.list`): no lifecycle, but the list is the same for every key, so a model the
  data knows that it lacks is gone. Vertex has no list of Google's models: each model the data
  gives it is asked for by name, and a 404 means it is gone.
- Scaleway (`GET /v1/models`): ids only.
A model missing from another list may only be withheld from this key: it is reported, not judged.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import httpx2

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ImagegenError, ProviderError
from mcp_imagegen.providers.model_data import LiveList, ModelBook, ModelRecord, Overlay, shipped, today
from mcp_imagegen.providers.registry import ProviderRegistry
from mcp_imagegen.redaction import redact
from mcp_imagegen.store.model_overlay import ModelOverlay

CHECK_TIMEOUT_S = 20.0


@dataclass
class ProviderFindings:
    """What one provider's live list said, against the data."""

    provider: str
    source: str = ""
    shut_down: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    """Known to the data, missing from a list that may only withhold them from this key."""
    error: str | None = None
    records: list[ModelRecord] = field(default_factory=list)
    """Entries whose lifecycle the list changed: the overlay."""

    def lines(self) -> list[str]:
        if self.error is not None:
            return [f"{self.provider}: could not check: {self.error}"]
        counts = f"{len(self.shut_down)} shut down, {len(self.deprecated)} deprecated, {len(self.new)} new"
        lines = [f"{self.provider} ({self.source}): {counts}"]
        lines += [f"  shut down: {line}" for line in self.shut_down]
        lines += [f"  deprecated: {line}" for line in self.deprecated]
        lines += [f"  new, not in the model data (sent as named; no price): {model}" for model in self.new]
        lines += [f"  not offered to this key (withheld, or gone): {model}" for model in self.withheld]
        return lines

    def as_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "source": self.source,
            "shut_down": self.shut_down,
            "deprecated": self.deprecated,
            "new": self.new,
            "withheld": self.withheld,
            "error": self.error,
        }


def compare(book: ModelBook, live: LiveList, day: datetime.date) -> ProviderFindings:
    """`live` against the data's entries for its provider, on `day`."""
    found = ProviderFindings(live.provider, live.source)
    listed = {model.id: model for model in live.models}
    checked = f"{live.source} (mcp-imagegen models check)"
    for record in book.records:
        if live.provider not in record.providers or record.status_on(day) == "shut_down":
            continue
        seen = next((listed[name] for name in record.names if name in listed), None)
        learned: ModelRecord | None = None
        if seen is None and live.absent_is_gone:
            learned = record.model_copy(update={"status": "shut_down", "shutdown": day})
            found.shut_down.append(f"{record.id} (no longer listed)")
        elif seen is None:
            found.withheld.append(record.id)
        elif seen.shutdown is not None and (seen.shutdown != record.shutdown or record.status == "active"):
            replacements = (seen.replacement,) if seen.replacement else record.replacements
            if seen.shutdown <= day:
                learned = record.model_copy(
                    update={"status": "shut_down", "shutdown": seen.shutdown, "replacements": replacements}
                )
                found.shut_down.append(f"{record.id} on {seen.shutdown.isoformat()}")
            else:
                learned = record.model_copy(
                    update={"status": "deprecated", "shutdown": seen.shutdown, "replacements": replacements}
                )
                instead = f" (replacement: {' or '.join(replacements)})" if replacements else ""
                found.deprecated.append(f"{record.id}: shuts down on {seen.shutdown.isoformat()}{instead}")
        if learned is not None:
            found.records.append(
                learned.model_copy(
                    update={
                        "providers": (live.provider,),
                        "source": checked,
                        "checked": day,
                        "default_for": (),
                    }
                )
            )
    found.new = sorted(
        model.id for model in live.models if model.image and book.find(live.provider, model.id) is None
    )
    return found


async def check(settings: Settings, client: httpx2.AsyncClient) -> list[ProviderFindings]:
    """Every configured provider with a live list, asked at once, compared with the shipped data."""
    registry = ProviderRegistry(settings, client)
    specs = [
        spec for spec in registry.specs if spec.live_models is not None and registry.is_configured(spec.name)
    ]
    book, day = shipped(), today()
    results: dict[str, ProviderFindings] = {}

    async def one(name: str) -> None:
        spec = next(spec for spec in specs if spec.name == name)
        assert spec.live_models is not None
        try:
            live = await spec.live_models(settings, client)
        except ProviderError as exc:  # its own words: nothing was to be stored
            results[name] = ProviderFindings(name, error=redact(exc.message, settings.secret_values()))
            return
        except ImagegenError as exc:
            results[name] = ProviderFindings(name, error=redact(str(exc), settings.secret_values()))
            return
        results[name] = compare(book, live, day)

    async with anyio.create_task_group() as group:
        for spec in specs:
            group.start_soon(one, spec.name)
    return [results[spec.name] for spec in specs]


def overlay_of(findings: Sequence[ProviderFindings], previous: Overlay | None) -> Overlay:
    """The overlay after this check: what each checked provider's list said now, and what an
    earlier check learned of providers that could not be asked this time."""
    asked = {found.provider for found in findings if found.error is None}
    kept = [record for record in (previous.records if previous else ()) if not set(record.providers) & asked]
    records = [*kept, *(record for found in findings for record in found.records)]
    report = tuple(line for found in findings for line in found.lines())
    return Overlay(
        checked_at=datetime.datetime.now(datetime.timezone.utc), records=tuple(records), report=report
    )


async def run(settings: Settings, store: ModelOverlay) -> tuple[list[ProviderFindings], Overlay]:
    """Check, and keep what was learned in the store's overlay."""
    async with httpx2.AsyncClient(timeout=CHECK_TIMEOUT_S, follow_redirects=False) as client:
        findings = await check(settings, client)
    overlay = overlay_of(findings, await store.read())
    await store.write(overlay)
    return findings, overlay
