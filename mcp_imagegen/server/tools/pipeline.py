"""The one path every paid tool takes, in the order that keeps budgets, limits and memory exact.

1. **Plan** (a resolver, run once per call round): the provider is chosen once, the typed request
   is built from the arguments and checked against that provider, and it is priced from the
   request (a `Charge`). Nothing is read and nothing is sent; a bad call is refused here.
2. **Confirm** (a resolver on the plan): a call estimated above the threshold is put to the user.
3. **Admit**: the caller must have room for one more unfinished job (`JobManager.take_seat`); a
   declined call is refused; its estimate is reserved against the caller's budget
   (`spending.admit`). (It was counted against the caller's rate limit before its arguments were
   read: `StrictTool.run`.)
4. **Prepare**: the tool reads its input images (decoded a few at a time: `images/workers.py`) and
   builds the job's work. A failure here gives the reservation back: nothing was sent.
5. **Run**: the job runs and settles its own ledger row (`spending.ChargedWork`).

A tool declares its plan and confirmation as parameters:

    plan: Annotated[GeneratePlan, Resolve(plan_generate)],
    approval: Annotated[Approval, Resolve(confirmation(plan_generate))],

The SDK runs each resolver once per call (memoised by identity), so the tool body and the
confirmation see the same plan.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import JsonValue

from mcp_imagegen.operations import OperationSpec
from mcp_imagegen.providers.base import Provider
from mcp_imagegen.server.jobs.core import Job, JobOutcome
from mcp_imagegen.server.jobs.delivery import run_as_job
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.spending import (
    Approval,
    ChargedWork,
    Metered,
    MeteredWork,
    SpendApproval,
    admit,
    release_unsent,
)
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.lifecycle import judged, with_notices
from mcp_imagegen.usage.prices import Charge, Metering

ProviderT = TypeVar("ProviderT", bound=Provider)
TermsT = TypeVar("TermsT")
CallT = TypeVar("CallT")
OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True)
class Plan(Generic[ProviderT, TermsT]):
    """A paid call as its arguments decide it, before anything is read or sent."""

    operation: OperationSpec[Any]
    provider: ProviderT
    """The one provider the call goes to, chosen once."""
    terms: TermsT
    """The typed request as far as the arguments make it (its input images are read later),
    checked against `provider`."""
    charge: Charge
    """What it costs, priced from `terms`."""
    notices: tuple[str, ...] = ()
    """What its result says of its models' lifecycle (deprecated, or replaced)."""

    @property
    def model(self) -> str:
        return self.charge.model


@dataclass(frozen=True)
class ModelOptions(Generic[OptionsT]):
    """The terms of a call whose request cannot exist before its input image is read (upscale,
    segment, describe): the model and the checked options, from which the request is made."""

    model: str
    options: OptionsT


PlanResolver = Callable[..., Awaitable[Plan[Any, Any]]]
Asked = SpendApproval | Elicit[SpendApproval]
Confirm = Callable[..., Awaitable[Asked]]


def planner(
    spec: OperationSpec[ProviderT],
) -> Callable[[Callable[[CallT, ProviderT], Plan[ProviderT, TermsT]]], PlanResolver]:
    """Make `build(call, provider)` the plan resolver of `spec`'s tool: the provider the call
    names (or the model's, or the default) is chosen here, once, and `build` makes the typed,
    checked, priced request for it. The error tree becomes the tool's error result."""

    def wrap(build: Callable[[CallT, ProviderT], Plan[ProviderT, TermsT]]) -> PlanResolver:
        async def plan(call: Any, ctx: Context[AppState, Any]) -> Plan[Any, Any]:
            with user_errors():
                app = app_state(ctx)
                provider = app.providers.provider_for(spec, call.provider, call.model)
                return judged(
                    app,
                    await app.models.current(),
                    build(call, provider),
                    lambda model: build(call.model_copy(update={"model": model}), provider),
                )

        plan.__name__ = plan.__qualname__ = f"plan_{spec.name}"
        return plan

    return wrap


@functools.cache
def confirmation(plan_resolver: PlanResolver) -> Confirm:
    """The resolver that asks before a call estimated above IMAGEGEN_CONFIRM_ABOVE_USD (or one
    that cannot be priced), where the client declared elicitation; otherwise it approves at once.
    Its question depends only on the plan, so each retry round renders the same question."""

    async def confirm(
        plan: Plan[Any, Any], ctx: Context[AppState, Any]
    ) -> SpendApproval | Elicit[SpendApproval]:
        app = app_state(ctx)
        threshold = app.settings.confirm_above_usd
        capabilities = ctx.client_capabilities
        if threshold is None or capabilities is None or capabilities.elicitation is None:
            return SpendApproval()
        charge = plan.charge
        estimate = app.prices.estimate(charge)
        if estimate.usd is not None and estimate.usd <= threshold:
            return SpendApproval()
        cost = f"about ${estimate.usd:.2f}" if estimate.usd is not None else "an unknown amount"
        return Elicit(
            f"This {charge.operation} call costs {cost}, over the ${threshold:.2f} this server confirms "
            f"above: {charge.describe()}, {charge.images} image(s). {estimate.basis}. Go ahead?",
            SpendApproval,
        )

    # The SDK reads a resolver's dependencies from its annotations; this one's depends on the tool.
    confirm.__annotations__ = {
        "plan": Annotated[Plan[Any, Any], Resolve(plan_resolver)],
        "ctx": Context[AppState, Any],
        "return": Asked,
    }
    name = plan_resolver.__name__.replace("plan_", "confirm_", 1)
    confirm.__name__ = confirm.__qualname__ = name
    return confirm


@dataclass(frozen=True)
class NoticedOutcome:
    """A job's outcome whose result carries its plan's notices."""

    outcome: JobOutcome
    notices: tuple[str, ...]

    def metering(self) -> tuple[Metering, dict[str, JsonValue] | None]:
        return self.outcome.metering() if isinstance(self.outcome, Metered) else (Metering(), None)

    async def result(self) -> CallToolResult:
        return with_notices(await self.outcome.result(), self.notices)


def noticed(work: MeteredWork, notices: tuple[str, ...]) -> MeteredWork:
    """`work` whose outcome says `notices` (itself where there are none)."""
    if not notices:
        return work

    async def with_them(job: Job) -> JobOutcome:
        return NoticedOutcome(await work(job), notices)

    return with_them


async def run_planned(
    ctx: Context[AppState, Any],
    plan: Plan[Any, Any],
    approval: Approval,
    prepare: Callable[[], Awaitable[MeteredWork]],
    first_step: str,
    wait_seconds: float | None,
) -> CallToolResult:
    """Admit the planned call (declined, rate limit, budget), then `prepare` its work (read its
    inputs), then run it as a job that settles its cost, and deliver it."""
    app = app_state(ctx)
    seat = app.jobs.take_seat(current_principal())
    try:
        reservation = await admit(ctx, plan.operation.tool, plan.charge, approval)
        try:
            work = noticed(await prepare(), plan.notices)
        except BaseException:
            await release_unsent(app, reservation)
            raise
    except BaseException:
        seat.release()
        raise
    return await run_as_job(
        ctx,
        plan.operation.tool,
        plan.charge.provider,
        plan.model,
        ChargedWork(app, reservation, work),
        first_step,
        wait_seconds,
        reservation.estimate,
        reservation.row_id,
        seat,
    )
