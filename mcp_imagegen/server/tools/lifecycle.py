"""A call's models judged by their lifecycle before anything is sent (`providers/model_data.py`).

- A shut-down model is refused, naming the provider's replacements; with
  `[models] replace_retired` the call goes to the first replacement instead, and says so. A
  model in `[models] allow_retired` is sent regardless (a project that still has access).
- A deprecated model works, and its result carries a notice with the shutdown date.
- The Responses API's mainline model is judged too; being a setting, it is never replaced per
  call: a shut-down one is refused, naming the setting to change.
- A model the data does not know passes through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.types import CallToolResult, TextContent
from pydantic import JsonValue

from mcp_imagegen.errors import InputError
from mcp_imagegen.providers.model_data import ModelBook, today
from mcp_imagegen.server.jobs.core import with_facts
from mcp_imagegen.server.state import AppState

if TYPE_CHECKING:
    from mcp_imagegen.server.tools.pipeline import Plan

PlanT = TypeVar("PlanT", bound="Plan[Any, Any]")
NOTICE_PREFIX = "Notice: "


def judged(app: AppState, book: ModelBook, plan: PlanT, rebuild: Callable[[str], PlanT]) -> PlanT:
    """`plan` (a `pipeline.Plan`) as its models' lifecycle in `book` allows: refused (InputError),
    moved to a replacement by `rebuild(model)`, or with its notices."""
    settings = app.settings.models
    provider = plan.charge.provider
    asked = plan.model
    notices: list[str] = []
    verdict = book.judge(provider, asked, today())
    if verdict is not None and verdict.status == "shut_down" and asked not in settings.allow_retired:
        replacement = verdict.record.replacements[0] if verdict.record.replacements else None
        if not settings.replace_retired or replacement is None:
            raise InputError(verdict.refusal(asked))
        plan = rebuild(replacement)
        shutdown = verdict.record.shutdown.isoformat() if verdict.record.shutdown else "an earlier date"
        notices.append(
            f"{asked} was shut down by {verdict.vendor} on {shutdown}: this call went to {replacement}, "
            "its replacement ([models] replace_retired)."
        )
        verdict = book.judge(provider, replacement, today())
    if verdict is not None and (said := verdict.notice(verdict.model)) is not None:
        notices.append(said)
    mainline = plan.charge.mainline
    if mainline is not None:
        judged_mainline = book.judge(provider, mainline.model, today())
        if judged_mainline is not None:
            if judged_mainline.status == "shut_down" and mainline.model not in settings.allow_retired:
                raise InputError(
                    "the Responses API's mainline model (OPENAI_RESPONSES_MODEL, or "
                    f"AZURE_OPENAI_RESPONSES_DEPLOYMENT): {judged_mainline.refusal(mainline.model)}"
                )
            if (said := judged_mainline.notice(mainline.model)) is not None:
                notices.append(f"The mainline model {said}")
    return dataclasses.replace(plan, notices=tuple(notices)) if notices else plan


def with_notices(result: CallToolResult, notices: tuple[str, ...]) -> CallToolResult:
    """`result` with its notices: a text block first, and `notices` in the structured content
    (and in the JSON text block that mirrors it)."""
    if not notices or result.structured_content is None:
        return result
    noticed = with_facts(result, {"notices": list[JsonValue](notices)})
    content = [TextContent(text=NOTICE_PREFIX + " ".join(notices)), *noticed.content]
    return noticed.model_copy(update={"content": content})
