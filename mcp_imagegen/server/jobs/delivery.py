"""Turn a job into a tool answer: wait up to `wait_seconds` while sending progress, then
answer with the job's result, its error, or a handle saying how to collect it later.

Tools whose work runs as a job declare an output schema that accepts the handle fields
(`status`, `job_id`, `provider`, `model`, `elapsed_s`, `message`, empty `images`), so the
same tool can answer either way.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from mcp_imagegen.server.jobs.core import Job, Seat, Work, follow, job_result
from mcp_imagegen.server.jobs.tasks import task_request
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.state import AppState
from mcp_imagegen.usage.prices import Estimate

logger = logging.getLogger(__name__)


class ProgressReporter:
    """MCP progress for one request: a counter that only goes up, and a message.

    `ctx.report_progress` sends nothing unless the client asked for progress (gave a
    progressToken), so reporting costs nothing for clients that did not.
    """

    def __init__(self, ctx: Context[AppState, Any]) -> None:
        self._ctx = ctx
        self._count = 0

    async def __call__(self, message: str) -> None:
        self._count += 1
        try:
            await self._ctx.report_progress(self._count, None, message)
        except Exception as exc:  # noqa: BLE001 - progress is best effort; the call goes on without it
            logger.debug("progress notification not sent: %s", exc)


async def run_as_job(
    ctx: Context[AppState, Any],
    tool: str,
    provider: str,
    model: str,
    work: Work,
    first_step: str,
    wait_seconds: float | None,
    cost: Estimate | None = None,
    ledger_row: int | None = None,
    seat: Seat | None = None,
) -> CallToolResult:
    """Start the caller's job and wait for it (or answer with its handle); `cost` is its estimate,
    shown until the job settles it, and `ledger_row` the usage ledger row it settles. A client that
    takes tasks gets the job as a task instead (`jobs/tasks.py`). Provider calls come here through
    `server/tools/pipeline.py`."""
    app = ctx.request_context.lifespan_context
    try:
        job = await app.jobs.start(
            tool,
            provider,
            model,
            work,
            first_step,
            owner=current_principal(),
            cost=cost,
            ledger_row=ledger_row,
            seat=seat,
        )
    except BaseException:
        if seat is not None:
            seat.release()
        raise
    as_task = task_request()
    if as_task is not None:  # the tasks extension answers with the task; the job goes on
        as_task.job = job
        return pending_result(job, app.settings.wait_seconds)
    return await deliver(ctx, job, wait_seconds, owner=True)


async def deliver(
    ctx: Context[AppState, Any], job: Job, wait_seconds: float | None, *, owner: bool
) -> CallToolResult:
    """Wait for `job` and answer with its result, or with a handle if it is still running.

    `owner` is true for the call that started the job: if that call is cancelled while
    waiting (the client cancelled, or closed the stream), the job is cancelled too. A
    `get_job` call that is cancelled only stops waiting.
    """
    settings = ctx.request_context.lifespan_context.settings
    wait_s = settings.wait_seconds if wait_seconds is None else wait_seconds
    report = ProgressReporter(ctx)
    try:
        ended = await follow(
            job,
            report,
            wait_s=wait_s,
            heartbeat_s=settings.heartbeat_seconds,
            from_step=0 if owner else max(0, len(job.steps) - 1),
        )
    except anyio.get_cancelled_exc_class():
        if owner:
            job.cancel()
        raise
    if not ended:
        return pending_result(job, settings.wait_seconds)
    if job.state == "succeeded" and job.outcome is not None:
        return await job_result(job)
    raise ToolError(job.error or f"{job.tool} did not finish ({job.state})")


def pending_result(job: Job, default_wait_s: float) -> CallToolResult:
    """The handle: a sentence the model can act on, and the same facts as structured content."""
    facts = {
        "status": "running",
        "job_id": job.id,
        "images": [],
        "provider": job.provider,
        "model": job.model,
        "elapsed_s": round(job.elapsed_s, 1),
        "message": job.latest,
        **({"cost": job.cost.facts()} if job.cost is not None else {}),
    }
    sentence = (
        f"{job.tool} is still running after {job.elapsed_s:.0f} s ({job.provider}, {job.model}; latest "
        f'step: {job.latest}). It goes on in the server. Call get_job with job_id "{job.id}" to wait for '
        f"the result (each get_job call waits up to {default_wait_s:g} s, or pass wait_seconds), or "
        "cancel_job to stop it."
    )
    return CallToolResult(
        content=[TextContent(text=sentence), TextContent(text=json.dumps(facts))], structured_content=facts
    )
