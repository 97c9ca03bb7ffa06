"""The tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) on the jobs every long tool
already runs as.

On a 2026-07-28 request whose client declares the extension, a long tool answers at once with a
task (`resultType: "task"`, the job's id as `taskId`) instead of waiting up to `wait_seconds`;
`tasks/get` reports the job (its result or error inlined once it ends), `tasks/cancel` cancels it
(closing the provider connection) and `tasks/update` acknowledges input the jobs never ask for.
Every other client keeps the `wait_seconds` / `job_id` / `get_job` behaviour unchanged, and
`get_job` / `cancel_job` keep working on jobs started as tasks.

A tool reports an anticipated failure (a refused prompt, an unreachable provider) as a
`completed` task whose result has `isError`; `failed` is kept for a job that crashed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import decode_header_value
from mcp.types import CallToolRequestParams, CallToolResult, RequestParams, TextContent
from mcp_types.jsonrpc import HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS
from pydantic import Field

from mcp_imagegen.errors import InputError
from mcp_imagegen.server.jobs.core import Job, job_result
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.state import AppState

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TASK_PROTOCOL_VERSIONS = frozenset({"2026-07-28"})
POLL_INTERVAL_MS = 1000


@dataclass
class TaskRequest:
    """Set for one `tools/call` answered as a task: the job the tool started, if it got that far."""

    job: Job | None = None


_TASK_REQUEST: contextvars.ContextVar[TaskRequest | None] = contextvars.ContextVar(
    "task_request", default=None
)


def task_request() -> TaskRequest | None:
    """The current call's task request when it is to be answered as a task, else None."""
    return _TASK_REQUEST.get()


class TaskIdParams(RequestParams):
    task_id: str = Field(alias="taskId", min_length=1, max_length=100)


class TaskUpdateParams(TaskIdParams):
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


class TasksExtension(Extension):
    """Long tool calls as native tasks, for clients that declare the extension."""

    identifier = EXTENSION_ID

    def __init__(self, long_tools: frozenset[str], retention_s: float) -> None:
        self._long_tools = long_tools
        self._ttl_ms = int(retention_s * 1000)

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", TaskIdParams, self._get, TASK_PROTOCOL_VERSIONS),
            MethodBinding("tasks/update", TaskUpdateParams, self._update, TASK_PROTOCOL_VERSIONS),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, TASK_PROTOCOL_VERSIONS),
        )

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in self._long_tools or not _declares_tasks(ctx):
            return await call_next(ctx)
        request = TaskRequest()
        token = _TASK_REQUEST.set(request)
        try:
            result = await call_next(ctx)
        finally:
            _TASK_REQUEST.reset(token)
        if request.job is None:  # refused before any work started: an ordinary (error) result
            return result
        return {"resultType": "task", **self._task(request.job)}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        job = await _job(ctx, params.task_id)
        detail = self._task(job)
        if job.state == "succeeded" and job.outcome is not None:
            result = await job_result(job)
            detail["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        elif job.state == "failed" and job.crashed:
            detail["error"] = {"code": INTERNAL_ERROR, "message": job.error or "internal error"}
        elif job.state == "failed":
            failed = CallToolResult(content=[TextContent(text=job.error or "failed")], is_error=True)
            detail["result"] = failed.model_dump(by_alias=True, mode="json", exclude_none=True)
        return {"resultType": "complete", **detail}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: TaskUpdateParams) -> HandlerResult:
        await _job(ctx, params.task_id)  # image jobs never ask for input: acknowledge, after the same checks
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        job = await _job(ctx, params.task_id)
        if not job.done:
            job.cancel()
        return {"resultType": "complete"}

    def _task(self, job: Job) -> dict[str, Any]:
        task: dict[str, Any] = {
            "taskId": job.id,
            "status": TASK_STATUS[job.state] if not job.crashed else "failed",
            "createdAt": _iso(job.created_at),
            "lastUpdatedAt": _iso(job.updated_at),
            "ttlMs": self._ttl_ms,
            "pollIntervalMs": POLL_INTERVAL_MS,
        }
        task["statusMessage"] = job.error or job.latest
        return task


TASK_STATUS = {
    "running": "working",
    "succeeded": "completed",
    "failed": "completed",
    "cancelled": "cancelled",
}
"""Job states as task statuses: a job that failed with an anticipated error is a completed task
whose result says so (a crash is `failed`)."""


def _declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    if ctx.protocol_version not in TASK_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION_ID in capabilities.extensions)


async def _job(ctx: ServerRequestContext[Any, Any], task_id: str) -> Job:
    """The task's job, for a client that declared the extension; -32602 for an unknown id, and
    over HTTP -32020 when the `Mcp-Name` routing header does not name the task (SEP-2243)."""
    require_client_extension(ctx, EXTENSION_ID)
    headers = getattr(ctx.request, "headers", None)
    if headers is not None and decode_header_value(headers.get("mcp-name")) != task_id:
        raise MCPError(
            code=HEADER_MISMATCH,
            message=f"the Mcp-Name header must carry the taskId {task_id!r}",
            data={"header": "Mcp-Name"},
        )
    app: AppState = ctx.lifespan_context
    try:
        return await app.jobs.get(task_id, current_principal())
    except InputError as exc:
        raise MCPError(code=INVALID_PARAMS, message=str(exc), data={"taskId": task_id}) from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
