"""Usage over a period, as the `get_usage` tool and `mcp-imagegen usage` show it: by day (UTC),
principal, provider and model, with known costs summed and unpriced calls counted apart."""

from __future__ import annotations

import datetime

from pydantic import BaseModel, Field

from mcp_imagegen.errors import InputError
from mcp_imagegen.usage.ledger import Ledger

DEFAULT_DAYS = 30


class UsageLine(BaseModel):
    day: str
    principal: str
    provider: str
    model: str
    calls: int
    failed: int = Field(description="Calls that failed or were interrupted (not charged).")
    images: int
    cost_usd: float = Field(description="Estimated cost of the calls whose price is known.")
    unpriced_calls: int = Field(description="Calls with no known price: their cost is unknown, not zero.")


class BudgetFacts(BaseModel):
    limit_usd: float
    spent_usd: float
    remaining_usd: float
    resets_at: str = Field(description="Midnight UTC, when the day's spend starts again from zero.")


class UsageReport(BaseModel):
    principal: str = Field(description="Whose usage: a principal, or '*' for everyone (admin scope).")
    since: str
    until: str
    lines: list[UsageLine]
    calls: int
    total_cost_usd: float = Field(description="Known costs only; see unpriced_calls.")
    unpriced_calls: int
    budget: BudgetFacts | None = Field(None, description="Today's budget, where one applies.")


def period(since: str | None, until: str | None, today: datetime.date) -> tuple[str, str]:
    """The first and last day (inclusive) as ISO dates; by default the last 30 days."""
    last = _day(until, "until") if until else today
    first = _day(since, "since") if since else last - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InputError(f"since ({first}) is after until ({last})")
    return first.isoformat(), last.isoformat()


def _day(text: str, what: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise InputError(f"{what} must be a date, YYYY-MM-DD (UTC), not {text[:40]!r}") from None


async def usage_report(
    ledger: Ledger, principal: str | None, since: str, until: str, limit_usd: float | None = None
) -> UsageReport:
    rows = await ledger.report(principal, since, until)
    lines = [
        UsageLine(
            day=row.day,
            principal=row.principal,
            provider=row.provider,
            model=row.model,
            calls=row.calls,
            failed=row.failed,
            images=row.images,
            cost_usd=row.cost_usd,
            unpriced_calls=row.unpriced,
        )
        for row in rows
    ]
    budget = None
    if principal is not None and limit_usd is not None:
        state = await ledger.budget(principal, limit_usd)
        budget = BudgetFacts(
            limit_usd=state.limit_usd,
            spent_usd=state.spent_usd,
            remaining_usd=state.remaining_usd,
            resets_at=state.resets_at.isoformat().replace("+00:00", "Z"),
        )
    return UsageReport(
        principal=principal or "*",
        since=since,
        until=until,
        lines=lines,
        calls=sum(line.calls for line in lines),
        total_cost_usd=round(sum(line.cost_usd for line in lines), 6),
        unpriced_calls=sum(line.unpriced_calls for line in lines),
        budget=budget,
    )


def as_text(report: UsageReport) -> str:
    """A table for people: one line per day, principal, provider and model, then the total."""
    who = "everyone" if report.principal == "*" else report.principal
    head = f"Usage of {who}, {report.since} to {report.until} (UTC)"
    if not report.lines:
        return f"{head}: no provider calls."
    rows = [("day", "principal", "provider", "model", "calls", "failed", "images", "cost")]
    for line in report.lines:
        cost = f"${line.cost_usd:.4f}" + (f" + {line.unpriced_calls} unpriced" if line.unpriced_calls else "")
        rows.append(
            (line.day, line.principal, line.provider, line.model, str(line.calls), str(line.failed),
             str(line.images), cost)
        )  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    table = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    unpriced = f", plus {report.unpriced_calls} call(s) of unknown cost" if report.unpriced_calls else ""
    total = f"Total: {report.calls} call(s), ${report.total_cost_usd:.4f} estimated{unpriced}."
    lines = [head + ":", *table, total]
    if report.budget is not None:
        budget = report.budget
        lines.append(
            f"Budget today: ${budget.spent_usd:.2f} of ${budget.limit_usd:.2f} spent, "
            f"${budget.remaining_usd:.2f} left; resets {budget.resets_at}."
        )
    return "\n".join(lines)
