"""A client side of the tasks extension (SEP-2663) for tests, on the Python SDK's extension seam:
it declares `io.modelcontextprotocol/tasks`, claims `resultType: "task"` results, and polls
`tasks/get` until the task ends, as Claude Code does."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import anyio
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp.types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict, Field

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TERMINAL = ("completed", "failed", "cancelled")


class AnyResult(Result):
    """Any result, every field kept."""

    model_config = ConfigDict(extra="allow")


class CreatedTask(Result):
    """The flat CreateTaskResult."""

    model_config = ConfigDict(extra="allow")

    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    created_at: str = Field(alias="createdAt")
    last_updated_at: str = Field(alias="lastUpdatedAt")
    ttl_ms: int | None = Field(alias="ttlMs")
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")


class TaskIdParams(RequestParams):
    task_id: str = Field(alias="taskId")


class TaskRequest(Request[TaskIdParams, str]):
    name_param: ClassVar[str | None] = "taskId"


async def task_request(session: ClientSession, method: str, task_id: str) -> dict[str, Any]:
    """Send tasks/get, tasks/cancel or tasks/update; the raw result."""
    params = TaskIdParams(taskId=task_id)
    if method == "tasks/update":
        params = TaskIdParams.model_validate({"taskId": task_id, "inputResponses": {}})
    result = await session.send_request(TaskRequest(method=method, params=params), AnyResult)
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def wait_for_task(session: ClientSession, task_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll tasks/get until the task is terminal; its last tasks/get answer."""
    with anyio.fail_after(timeout_s):
        while True:
            detail = await task_request(session, "tasks/get", task_id)
            if detail["status"] in TERMINAL:
                return detail
            await anyio.sleep(min(detail.get("pollIntervalMs", 200), 200) / 1000)


class TasksClient(ClientExtension):
    """Declares the tasks extension; a claimed task is polled to its end and its result returned."""

    identifier = EXTENSION_ID

    def __init__(self) -> None:
        self.created: list[CreatedTask] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self._resolve)]

    async def _resolve(self, created: CreatedTask, ctx: ClaimContext) -> CallToolResult:
        self.created.append(created)
        detail = await wait_for_task(ctx.session, created.task_id)
        if detail["status"] == "completed":
            return CallToolResult.model_validate(detail["result"])
        return CallToolResult(content=[], is_error=True, structured_content={"task": detail})
