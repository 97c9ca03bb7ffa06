"""get_job and cancel_job: collect or stop a job that an image tool answered with a job_id."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult
from pydantic import BaseModel

from mcp_imagegen.server.jobs.core import CANCEL_GRACE_S, JobState
from mcp_imagegen.server.jobs.delivery import deliver
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.results import CallCost
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.arguments import (
    JobIdArg,
    ToolArguments,
    WaitArg,
    strict_tool,
    tool_annotations,
)
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.surface import Surface


class GetJobCall(ToolArguments):
    job_id: JobIdArg
    wait_seconds: WaitArg = None


async def get_job(call: GetJobCall, ctx: Context[AppState, Any]) -> CallToolResult:
    """Wait for a job (a result with status 'running') and return its tool's result or error;
    still running after wait_seconds: call again."""
    with user_errors():
        job = await app_state(ctx).jobs.get(call.job_id, current_principal())
        return await deliver(ctx, job, call.wait_seconds, owner=False)


class JobStatus(BaseModel):
    job_id: str
    status: JobState
    tool: str
    provider: str
    model: str
    elapsed_s: float
    message: str
    cost: CallCost | None = None


class CancelJobCall(ToolArguments):
    job_id: JobIdArg


async def cancel_job(call: CancelJobCall, ctx: Context[AppState, Any]) -> JobStatus:
    """Stop a running job (its provider request is aborted); a finished job is left as it is."""
    with user_errors():
        job = await app_state(ctx).jobs.get(call.job_id, current_principal())
        if not job.done:
            job.cancel()
            await job.wait(CANCEL_GRACE_S)
        if job.state == "succeeded":
            message = "it had already finished; get_job returns its result"
        else:
            message = job.error or job.latest
        return JobStatus(
            job_id=job.id,
            status=job.state,
            tool=job.tool,
            provider=job.provider,
            model=job.model,
            elapsed_s=round(job.elapsed_s, 1),
            message=message,
            cost=CallCost(estimated_usd=job.cost.usd, basis=job.cost.basis) if job.cost is not None else None,
        )


def job_tools(surface: Surface) -> list[Tool]:
    return [
        strict_tool(
            get_job,
            GetJobCall,
            tool_annotations("Get image job", read_only=True, idempotent=True, open_world=False),
            surface,
        ),
        strict_tool(
            cancel_job,
            CancelJobCall,
            tool_annotations("Cancel image job", destructive=True, idempotent=True, open_world=False),
            surface,
        ),
    ]
