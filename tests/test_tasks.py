"""Long calls as native tasks (io.modelcontextprotocol/tasks, SEP-2663) for a 2026-07-28 client
that declares the extension; every other client sees exactly the wait_seconds/job_id behaviour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from mcp_imagegen.config import OpenAISettings, Settings
from tests.connect import Transport, connect, connect_with, http_server
from tests.fakes.openai_images import FakeOpenAIImages
from tests.tasks_client import CreatedTask, TasksClient, task_request, wait_for_task
from tests.waiting import eventually

pytestmark = pytest.mark.anyio
TRANSPORTS: list[Transport] = ["memory", "stdio", "http"]


def stored_files(store: Path) -> list[Path]:
    images = store / "images"
    return sorted(path for path in images.rglob("*") if path.is_file()) if images.exists() else []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_long_call_becomes_a_task_that_tasks_get_completes(
    transport: Transport, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    tasks = TasksClient()
    fake_openai.delay_s = 1.0
    settings = Settings(
        store_dir=tmp_path / "store",
        openai=OpenAISettings(api_key=SecretStr(fake_openai.api_key), base_url=f"{fake_openai.url}/v1"),
    )
    async with connect_with(transport, settings, tmp_path, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("generate_image", {"prompt": "a red fox", "wait_seconds": 30})
        assert not result.is_error, result.content
        assert result.structured_content is not None and result.structured_content["status"] == "succeeded"
        [created] = tasks.created
        assert created.task_id.startswith("job_") and created.status == "working"
        assert created.ttl_ms and created.ttl_ms > 0 and created.poll_interval_ms == 1000
        assert created.created_at.endswith("Z")
        # The task is the job: get_job collects the same result.
        again = await client.call_tool("get_job", {"job_id": created.task_id})
        assert again.structured_content == result.structured_content
        # A refusal before any work is an ordinary result, not a task.
        refused = await client.call_tool("generate_image", {"prompt": "x", "qualty": "high"})
        assert refused.is_error and len(tasks.created) == 1
        # Short tools are never tasks.
        listing = await client.call_tool("list_providers", {})
        assert not listing.is_error and len(tasks.created) == 1
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("transport", ["memory", "http"])
async def test_tasks_get_while_working_and_cancel_closes_the_provider_connection(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.delay_s = 30.0
    async with connect(transport, server_env, extensions=[TasksClient()]) as client:
        created = await client.session.call_tool("generate_image", {"prompt": "slow"}, allow_claimed=True)
        assert isinstance(created, CreatedTask)
        raw = created.model_dump(by_alias=True, mode="json")
        assert raw["resultType"] == "task" and "task" not in raw and "result" not in raw
        working = await task_request(client.session, "tasks/get", created.task_id)
        assert working["status"] == "working" and "result" not in working and "error" not in working
        await eventually(lambda: len(fake_openai.requests) == 1, "the provider request is on its way")
        updated = await task_request(client.session, "tasks/update", created.task_id)
        assert updated == {"resultType": "complete"} or set(updated) <= {"resultType", "_meta"}
        ack = await task_request(client.session, "tasks/cancel", created.task_id)
        assert not {"taskId", "status", "result", "error"} & set(ack) and ack["resultType"] == "complete"
        ended = await wait_for_task(client.session, created.task_id, timeout_s=15)
        assert ended["status"] == "cancelled" and "result" not in ended
        await eventually(
            lambda: fake_openai.disconnects == ["/v1/images/generations"], "the fake sees a close"
        )
        again = await task_request(client.session, "tasks/cancel", created.task_id)
        assert again["resultType"] == "complete" and "status" not in again
        with pytest.raises(MCPError) as unknown:
            await task_request(client.session, "tasks/get", "job_doesnotexist")
        assert unknown.value.error.code == -32602
    assert stored_files(tmp_path / "store") == []


async def test_a_provider_refusal_is_a_completed_task_with_an_error_result(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.fail_next.append(
        (400, {"error": {"message": "Rejected by the safety system.", "code": "moderation_blocked"}})
    )
    async with connect("memory", server_env, extensions=[TasksClient()]) as client:
        created = await client.session.call_tool("generate_image", {"prompt": "x"}, allow_claimed=True)
        assert isinstance(created, CreatedTask)
        ended = await wait_for_task(client.session, created.task_id)
    assert ended["status"] == "completed" and "error" not in ended
    result = CallToolResult.model_validate(ended["result"])
    assert result.is_error
    assert isinstance(result.content[0], TextContent)
    assert "refused the request under its content policy" in result.content[0].text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_clients_without_the_extension_keep_todays_results(
    mode: str, server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.delay_s = 0.5
    extensions: list[Any] = [TasksClient()] if mode == "legacy" else []
    async with connect("memory", server_env, extensions=extensions, mode=mode) as client:
        handle = await client.call_tool("generate_image", {"prompt": "x", "wait_seconds": 0})
        assert handle.structured_content is not None and handle.structured_content["status"] == "running"
        done = await client.call_tool(
            "get_job", {"job_id": handle.structured_content["job_id"], "wait_seconds": 30}
        )
        assert done.structured_content is not None and done.structured_content["status"] == "succeeded"
        if mode == "auto":
            with pytest.raises(MCPError) as refused:
                await task_request(client.session, "tasks/get", handle.structured_content["job_id"])
            assert refused.value.error.code == -32021


async def test_the_server_advertises_the_extension(server_env: dict[str, str]) -> None:
    async with connect("memory", server_env, extensions=[TasksClient()]) as client:
        capabilities = client.session.server_capabilities
        assert capabilities is not None and capabilities.extensions is not None
        assert "io.modelcontextprotocol/tasks" in capabilities.extensions


async def test_tasks_and_jobs_belong_to_whoever_started_them(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    """Two bearer tokens on one HTTP server: another caller's task or job id answers exactly like
    an id that does not exist, for tasks/get, tasks/cancel, get_job and cancel_job."""
    alice, bob = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef"
    env = {
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        "IMAGEGEN_AUTH_TOKENS": f"{alice},{bob}",
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
    }
    fake_openai.delay_s = 30.0

    @asynccontextmanager
    async def as_user(url: str, token: str) -> AsyncIterator[Client]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        target = streamable_http_client(url + "/mcp", http_client=http)
        async with http, Client(target, extensions=[TasksClient()]) as client:
            yield client

    with http_server("http", env) as url:
        async with as_user(url, alice) as mine, as_user(url, bob) as theirs:
            created = await mine.session.call_tool("generate_image", {"prompt": "mine"}, allow_claimed=True)
            assert isinstance(created, CreatedTask)
            assert (await task_request(mine.session, "tasks/get", created.task_id))["status"] == "working"
            for method in ("tasks/get", "tasks/cancel"):
                with pytest.raises(MCPError) as refused:
                    await task_request(theirs.session, method, created.task_id)
                with pytest.raises(MCPError) as unknown:
                    await task_request(theirs.session, method, "job_" + "x" * 24)
                assert refused.value.error.code == unknown.value.error.code == -32602
                assert refused.value.error.message.replace(created.task_id, "ID") == (
                    unknown.value.error.message.replace("job_" + "x" * 24, "ID")
                )
            for tool in ("get_job", "cancel_job"):
                theirs_answer = await theirs.call_tool(tool, {"job_id": created.task_id})
                unknown_answer = await theirs.call_tool(tool, {"job_id": "job_" + "y" * 24})
                assert theirs_answer.is_error and unknown_answer.is_error
                assert str(theirs_answer.content).replace(created.task_id, "ID") == str(
                    unknown_answer.content
                ).replace("job_" + "y" * 24, "ID")
            # Bob's attempts left Alice's task running; Alice cancels it.
            assert (await task_request(mine.session, "tasks/get", created.task_id))["status"] == "working"
            await task_request(mine.session, "tasks/cancel", created.task_id)
            assert (await wait_for_task(mine.session, created.task_id, timeout_s=15))["status"] == "cancelled"
