"""Paying for a provider call: its estimate, the user's confirmation, the reservation against the
caller's daily budget, and the settled cost, which goes to the usage ledger and into the result.

The order is what makes budgets exact: the estimate is reserved in the ledger (atomically against
the day's spend) before the job starts, so calls made at once cannot together pass the budget; the
job settles its row when it ends, whatever way it ends.

The user's confirmation (`SpendApproval`) is asked by a resolver (`server/tools/pipeline.py`),
which the SDK turns into a standalone elicitation request on 2025-11-25 connections and an
`InputRequiredResult` round on 2026-07-28 ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio
from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field, JsonValue

from mcp_imagegen.errors import DeclinedError
from mcp_imagegen.server.jobs.core import Job, JobOutcome
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.state import AppState
from mcp_imagegen.usage.ledger import Outcome, Reservation
from mcp_imagegen.usage.prices import Charge, Estimate, Metering


class SpendApproval(BaseModel):
    """The confirmation form: one checkbox, on by default."""

    proceed: bool = Field(
        True, title="Go ahead", description="Send the request; the provider charges for it."
    )


Approval = ElicitationResult[SpendApproval]


@runtime_checkable
class Metered(Protocol):
    """An outcome that can say what the provider made: how many images, and the usage it reported."""

    def metering(self) -> tuple[Metering, dict[str, JsonValue] | None]:
        """What it made and was billed for; and the usage as the provider reported it, for the ledger."""
        ...


MeteredWork = Callable[[Job], Awaitable[JobOutcome]]


async def admit(ctx: Context[AppState, Any], tool: str, charge: Charge, approval: Approval) -> Reservation:
    """Refuse a declined call; reserve its estimate against the caller's budget (BudgetError:
    nothing is sent). The call was counted against the caller's rate limit before its arguments
    were read (`StrictTool.run`). The reservation is then settled by
    the job (`ChargedWork`), or released (`release_unsent`) where the call never reached its job."""
    if not isinstance(approval, AcceptedElicitation) or not approval.data.proceed:
        answer = "dismissed" if isinstance(approval, CancelledElicitation) else "declined"
        raise DeclinedError(
            f"{tool} was not run: the user {answer} its estimated cost. Nothing was sent to "
            f"{charge.provider} and nothing was charged."
        )
    app = ctx.request_context.lifespan_context
    caller = current_principal()
    estimate = app.prices.estimate(charge)
    # A server stopping before the job settles the row leaves it for `UsageLedger.settle_stale`.
    return await app.ledger.reserve(caller.name, tool, charge, estimate, app.settings.budget_for(caller.name))


async def release_unsent(app: AppState, reservation: Reservation) -> None:
    """Give back the reservation of a call that ended before its job started (its inputs could
    not be read, or it was cancelled meanwhile): nothing was sent, so it is no call."""
    with anyio.CancelScope(shield=True):
        await app.ledger.release(reservation)


@dataclass(frozen=True)
class ChargedWork:
    """A job's work that settles its ledger row, and the job's shown cost, when it ends:
    succeeded (priced on what was made), failed (nothing made: no charge), cancelled or timed out
    while the provider worked (the estimate stands, since the provider may have charged), or
    ended while still queued (nothing was sent: no charge)."""

    app: AppState
    reservation: Reservation
    work: MeteredWork

    async def abandoned(self, job: Job) -> None:
        await self._settle(
            job, "cancelled", _nothing(self.reservation.estimate, "it ended before it was sent")
        )

    async def __call__(self, job: Job) -> JobOutcome:
        try:
            outcome = await self.work(job)
        except anyio.get_cancelled_exc_class():
            await self._settle(job, "cancelled", self.reservation.estimate)
            raise
        except BaseException:
            await self._settle(job, "failed", _nothing(self.reservation.estimate, "the call failed"))
            raise
        metering, usage = outcome.metering() if isinstance(outcome, Metered) else (Metering(), None)
        cost = self.app.prices.settle(self.reservation.charge, metering)
        await self._settle(job, "succeeded", cost, images=metering.images, usage=usage)
        return outcome

    async def _settle(
        self,
        job: Job,
        outcome: Outcome,
        cost: Estimate,
        *,
        images: int = 0,
        usage: dict[str, JsonValue] | None = None,
    ) -> None:
        job.cost = cost
        with anyio.CancelScope(shield=True):
            await self.app.ledger.settle(
                self.reservation, outcome, cost, images=images, usage=usage, job_id=job.id
            )


def _nothing(estimate: Estimate, why: str) -> Estimate:
    """The cost of a call that made nothing: zero where the price is known, unknown where not."""
    return Estimate(0.0 if estimate.usd is not None else None, f"{why}; nothing was made")
