"""Long calls through a real MCP client over stdio and Streamable HTTP: progress with
heartbeats, streamed partial images, job handles, get_job, cancel_job, client-side
cancellation and the total time limit. The provider is the loopback OpenAI fake made slow.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import BlobResourceContents, CallToolResult, ImageContent, TextContent

from tests.connect import Transport, connect
from tests.fakes.openai_images import FakeOpenAIImages
from tests.test_e2e import read_json
from tests.waiting import eventually

pytestmark = pytest.mark.anyio
TRANSPORTS: list[Transport] = ["stdio", "http"]
HEARTBEAT_S = 0.4
PARTIAL_URI = re.compile(r"partial image \d \(\d+x\d+\): (imagegen://images/[0-9a-f]+)$")


@dataclass
class Progress:
    """What a client's progress callback received, in order."""

    updates: list[tuple[float, float | None, str | None]] = field(default_factory=list)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.updates.append((progress, total, message))

    @property
    def messages(self) -> list[str]:
        return [message or "" for _, _, message in self.updates]

    @property
    def heartbeats(self) -> list[str]:
        return [message for message in self.messages if message.startswith("waiting for ")]


@pytest.fixture
def server_env(server_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The OpenAI fake's settings with a short heartbeat, so tests see several."""
    monkeypatch.setenv("IMAGEGEN_HEARTBEAT_SECONDS", str(HEARTBEAT_S))
    return {**server_env, "IMAGEGEN_HEARTBEAT_SECONDS": str(HEARTBEAT_S)}


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result.content
    facts: dict[str, Any] = result.structured_content
    return facts


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.content
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def stored_files(store: Path) -> list[Path]:
    """Every image file and every unfinished write in the store."""
    return sorted(store.glob("images/*/*")) + sorted(store.glob("tmp/*"))


async def generate(client: Client, progress: Progress | None = None, **arguments: Any) -> CallToolResult:
    return await client.call_tool(
        "generate_image", {"prompt": "a lighthouse at dusk", **arguments}, progress_callback=progress
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_progress_steps_and_heartbeats_while_waiting(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.delay_s = 2.0
    progress = Progress()
    async with connect(transport, server_env) as client:
        result = await generate(client, progress)
    assert not result.is_error, result.content
    assert structured(result)["status"] == "succeeded"
    assert len([block for block in result.content if isinstance(block, ImageContent)]) == 1
    values = [value for value, _, _ in progress.updates]
    assert values == sorted(set(values)), "progress must strictly increase"
    messages = progress.messages
    assert messages[0] == "asking openai (gpt-image-2.6-sunburst) for 1 image(s)"
    assert messages[1] == "request sent to openai"
    assert any(message.startswith("openai started answering after ") for message in messages)
    assert any(re.fullmatch(r"received \d+ kB from openai in [\d.]+ s", message) for message in messages)
    assert messages[-1] == "storing 1 image(s) and preparing their previews"
    # About 2 s of waiting with a 0.4 s heartbeat: several heartbeats, in the documented form.
    assert len(progress.heartbeats) >= 3, messages
    assert all(
        re.fullmatch(r"waiting for gpt-image-2\.6-sunburst, \d+ s", beat) for beat in progress.heartbeats
    )
    first_beat = messages.index(progress.heartbeats[0])
    assert messages.index("request sent to openai") < first_beat


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_partial_images_are_announced_and_readable(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.delay_s = 0.6
    kept, dropped = Progress(), Progress()
    async with connect(transport, server_env) as client:
        result = await generate(
            client, kept, model="gpt-image-2.6-sunburst", partial_images=2, keep_partials=True
        )
        assert not result.is_error, result.content
        uris = [match[1] for message in kept.messages if (match := PARTIAL_URI.search(message))]
        assert len(uris) == 2
        assert structured(result)["partial_images"] == uris
        for uri in uris:
            contents = (await client.read_resource(uri)).contents
            assert isinstance(contents[0], BlobResourceContents) and contents[0].mime_type == "image/png"
            metadata = await read_json(client, f"{uri}/metadata")
            assert metadata["kind"] == "partial"
            assert metadata["job_id"] == structured(result)["job_id"]
        listed = [str(resource.uri) for resource in (await client.list_resources()).resources]
        assert listed == [structured(result)["images"][0]["uri"]], "partials stay out of the listing"

        again = await generate(client, dropped, model="gpt-image-2.6-sunburst", partial_images=1)
        assert not again.is_error, again.content
        gone = [match[1] for message in dropped.messages if (match := PARTIAL_URI.search(message))]
        assert len(gone) == 1
        assert "partial_images" not in structured(again)
        with pytest.raises(MCPError, match="no such image"):
            await client.read_resource(gone[0])
    # Two finals and the two kept partials; the dropped partial's file is gone too.
    assert len(stored_files(tmp_path / "store")) == 4


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_slow_call_answers_with_a_job_that_get_job_completes(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.delay_s = 3.0
    async with connect(transport, server_env) as client:
        started = time.monotonic()
        handle = await generate(client, wait_seconds=1)
        waited = time.monotonic() - started
        assert not handle.is_error, handle.content
        facts = structured(handle)
        assert facts["status"] == "running" and facts["images"] == []
        assert facts["job_id"].startswith("job_") and len(facts["job_id"]) >= 28
        assert not any(isinstance(block, ImageContent) for block in handle.content)
        sentence = handle.content[0]
        assert isinstance(sentence, TextContent)
        assert f'Call get_job with job_id "{facts["job_id"]}"' in sentence.text
        assert waited < 2.5, "the handle comes back after wait_seconds, not when the provider ends"
        assert stored_files(tmp_path / "store") == []

        progress = Progress()
        done = await client.call_tool("get_job", {"job_id": facts["job_id"]}, progress_callback=progress)
        assert not done.is_error, done.content
        result = structured(done)
        assert result["status"] == "succeeded" and result["job_id"] == facts["job_id"]
        assert len(result["images"]) == 1
        assert any(isinstance(block, ImageContent) for block in done.content)
        assert progress.heartbeats, "get_job reports progress while it waits"

        again = await client.call_tool("get_job", {"job_id": facts["job_id"]})
        assert structured(again) == result, "a finished job answers with the same result every time"
    assert len(fake_openai.requests) == 1
    assert len(stored_files(tmp_path / "store")) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancel_job_aborts_the_provider_request(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.delay_s = 5.0
    async with connect(transport, server_env) as client:
        handle = await generate(client, wait_seconds=0, model="gpt-image-2.6-sunburst", partial_images=2)
        job_id = structured(handle)["job_id"]
        assert structured(handle)["status"] == "running"
        await anyio.sleep(2.2)  # the first partial image arrives after about 1.7 s
        cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
        assert structured(cancelled)["status"] == "cancelled", cancelled.content
        await eventually(
            lambda: fake_openai.disconnects == ["/v1/images/generations"], "the fake sees a close"
        )
        assert "was cancelled" in error_text(await client.call_tool("get_job", {"job_id": job_id}))
        assert stored_files(tmp_path / "store") == [], "the partial image is removed with its job"

        fake_openai.delay_s = 0
        after = await generate(client)
        assert not after.is_error and structured(after)["status"] == "succeeded"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_cancel_aborts_the_provider_request_and_leaves_no_file(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.delay_s = 5.0
    progress = Progress()
    async with connect(transport, server_env) as client:
        with anyio.move_on_after(2.2) as scope:
            await generate(client, progress, model="gpt-image-2.6-sunburst", partial_images=2)
        assert scope.cancelled_caught
        assert any(PARTIAL_URI.search(message) for message in progress.messages), "a partial had landed"
        await eventually(
            lambda: fake_openai.disconnects == ["/v1/images/generations"], "the fake sees a close"
        )
        await eventually(lambda: stored_files(tmp_path / "store") == [], "the partial image is removed")

        fake_openai.delay_s = 0
        after = await generate(client)
        assert not after.is_error and structured(after)["status"] == "succeeded"
    assert len(stored_files(tmp_path / "store")) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_get_job_leaves_the_job_running(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.delay_s = 2.0
    async with connect(transport, server_env) as client:
        job_id = structured(await generate(client, wait_seconds=0))["job_id"]
        with anyio.move_on_after(0.5):
            await client.call_tool("get_job", {"job_id": job_id})
        done = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 10})
        assert structured(done)["status"] == "succeeded", done.content
    assert fake_openai.disconnects == []


async def test_short_call_answers_directly(server_env: dict[str, str], fake_openai: FakeOpenAIImages) -> None:
    progress = Progress()
    async with connect("memory", server_env) as client:
        result = await generate(client, progress, wait_seconds=30)
    facts = structured(result)
    assert facts["status"] == "succeeded" and len(facts["images"]) == 1
    assert progress.heartbeats == []
    assert "elapsed_s" not in facts and "message" not in facts


async def test_wait_seconds_default_comes_from_the_environment(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_WAIT_SECONDS", "0.3")
    fake_openai.delay_s = 1.5
    async with connect("memory", server_env) as client:
        handle = await generate(client)
        assert structured(handle)["status"] == "running"
        assert "each get_job call waits up to 0.3 s" in str(handle.content)
        done = await client.call_tool("get_job", {"job_id": structured(handle)["job_id"], "wait_seconds": 10})
        assert structured(done)["status"] == "succeeded"


async def test_total_time_of_a_call_is_bounded(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMAGEGEN_JOB_TIMEOUT_SECONDS", "1")
    fake_openai.delay_s = 4.0
    async with connect("memory", server_env) as client:
        result = await generate(client, wait_seconds=10)
        assert "took longer than 1 s" in error_text(result)
        assert "IMAGEGEN_JOB_TIMEOUT_SECONDS" in error_text(result)
    await eventually(lambda: fake_openai.disconnects == ["/v1/images/generations"], "the fake sees a close")
    assert stored_files(tmp_path / "store") == []


async def test_job_errors_and_unknown_jobs(server_env: dict[str, str], fake_openai: FakeOpenAIImages) -> None:
    fake_openai.fail_next.append(
        (400, {"error": {"message": "Invalid size.", "type": "invalid_request_error"}})
    )
    async with connect("memory", server_env) as client:
        handle = await generate(client, wait_seconds=0)
        job_id = structured(handle)["job_id"]
        assert "Invalid size." in error_text(await client.call_tool("get_job", {"job_id": job_id}))
        status = await client.call_tool("cancel_job", {"job_id": job_id})
        assert structured(status)["status"] == "failed"
        assert "Invalid size." in structured(status)["message"]
        unknown = error_text(await client.call_tool("get_job", {"job_id": "job_nope"}))
        assert "no job 'job_nope' on this server" in unknown
        refused = error_text(await generate(client, keep_partials=True))
        assert "keep_partials applies only with partial_images" in refused
        placeholder = error_text(await generate(client, provider="placeholder", partial_images=2))
        assert "placeholder does not support partial_images" in placeholder
