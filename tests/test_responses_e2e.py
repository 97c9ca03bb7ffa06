"""The Responses API path through real MCP clients, in memory and over stdio: generate, refine and
refine again (each request continues the previous response), partial images announced in
progress, and Azure with the image deployment header and its model -> deployment mapping on both
APIs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from tests.connect import Transport, connect
from tests.fakes.openai_images import FakeOpenAIImages
from tests.fakes.openai_responses import input_images
from tests.test_e2e import read_json

pytestmark = pytest.mark.anyio
TRANSPORTS: list[Transport] = ["memory", "stdio"]
PARTIAL = re.compile(r"partial image \d \(\d+x\d+\): (imagegen://images/[0-9a-f]+)$")


def env_for(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def facts(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    document: dict[str, Any] | None = result.structured_content
    assert document is not None
    return document


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.content
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def metadata(client: Client, uri: str) -> dict[str, Any]:
    return await read_json(client, uri + "/metadata")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_generate_refine_refine_again(
    transport: Transport,
    fake_openai: FakeOpenAIImages,
    server_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = env_for(
        monkeypatch, {**server_env, "OPENAI_IMAGE_API": "responses", "OPENAI_RESPONSES_MODEL": "gpt-6-luna"}
    )
    async with connect(transport, env) as client:
        made = facts(
            await client.call_tool("generate_image", {"prompt": "a fox in snow", "size": "1024x1024"})
        )
        first = fake_openai.last.json or {}
        assert fake_openai.last.path == "/v1/responses"
        assert first["model"] == "gpt-6-luna" and "previous_response_id" not in first
        assert first["tools"] == [
            {
                "type": "image_generation",
                "model": "gpt-image-2.6-sunburst",
                "size": "1024x1024",
                "action": "generate",
            }
        ]
        made_meta = await metadata(client, made["images"][0]["uri"])
        first_id = made_meta["provider_response"]["response_id"]
        assert made["response_id"] == first_id  # in the result too
        assert made_meta["revised_prompt"] == "A detailed rendering of: a fox in snow"
        assert made_meta["parameters"] == {"n": 1, "size": "1024x1024"}

        refined = facts(
            await client.call_tool(
                "edit_image",
                {"image": made["images"][0]["uri"], "prompt": "now make the fox look at the camera"},
            )
        )
        second = fake_openai.last.json or {}
        assert second["previous_response_id"] == first_id
        assert input_images(second) == [], "a continued response does not get the image again"
        assert second["tools"][0]["action"] == "edit"
        refined_meta = await metadata(client, refined["images"][0]["uri"])
        assert refined_meta["parent_ids"] == [made["images"][0]["id"]]
        assert refined_meta["provider_response"]["previous_response_id"] == first_id
        second_id = refined_meta["provider_response"]["response_id"]
        assert second_id != first_id

        again = facts(
            await client.call_tool(
                "edit_image", {"image": refined["images"][0]["uri"], "prompt": "and smile"}
            )
        )
        assert (fake_openai.last.json or {})["previous_response_id"] == second_id
        assert again["images"][0]["id"] not in (made["images"][0]["id"], refined["images"][0]["id"])

        # Asked not to continue, the image itself is sent, and the metadata says why.
        await client.call_tool(
            "edit_image",
            {"image": refined["images"][0]["uri"], "prompt": "and smile", "continue_conversation": False},
        )
        sent = fake_openai.last.json or {}
        assert "previous_response_id" not in sent and len(input_images(sent)) == 1

        # The Images API on request, for the same provider: the image goes as multipart.
        await client.call_tool(
            "edit_image", {"image": refined["images"][0]["uri"], "prompt": "and smile", "api": "images"}
        )
        assert fake_openai.last.path == "/v1/images/edits"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_partial_images_are_announced_in_progress(
    transport: Transport, fake_openai: FakeOpenAIImages, server_env: dict[str, str]
) -> None:
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with connect(transport, server_env) as client:
        result = await client.call_tool(
            "generate_image",
            {"prompt": "a fox", "api": "responses", "partial_images": 2, "keep_partials": True},
            progress_callback=on_progress,
        )
        assert (fake_openai.last.json or {})["stream"] is True
        partial_uris = [match.group(1) for message in messages if (match := PARTIAL.search(message))]
        assert len(partial_uris) == 2, messages
        assert "openai is drawing the image" in messages
        final = facts(result)
        meta = await metadata(client, final["images"][0]["uri"])
        assert meta["provider_response"]["partial_images_received"] == 2
        for uri in partial_uris:  # kept, and readable
            assert (await metadata(client, uri))["kind"] == "partial"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_azure_model_names_pick_deployments_on_both_apis(
    transport: Transport, fake_openai: FakeOpenAIImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_for(
        monkeypatch,
        {
            "AZURE_OPENAI_API_KEY": fake_openai.azure_key,
            "AZURE_OPENAI_ENDPOINT": fake_openai.url,
            "AZURE_OPENAI_DEPLOYMENTS": "gpt-image-2.6-sunburst=img-15,gpt-image-2=img-2",
            "AZURE_OPENAI_DEPLOYMENT": "img-2",
            "AZURE_OPENAI_RESPONSES_DEPLOYMENT": "chat-deploy",
            "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        },
    )
    async with connect(transport, env) as client:
        listing = facts(await client.call_tool("list_providers", {}))
        [azure] = [item for item in listing["providers"] if item["name"] == "azure"]
        assert azure["deployments"] == {"gpt-image-2.6-sunburst": "img-15", "gpt-image-2": "img-2"}
        assert azure["default_model"] == "gpt-image-2"

        facts(
            await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-2.6-sunburst"})
        )
        sent = fake_openai.last
        assert (sent.path, (sent.json or {})["model"]) == ("/openai/v1/images/generations", "img-15")

        made = facts(
            await client.call_tool(
                "generate_image", {"prompt": "a fox", "model": "gpt-image-2.6-sunburst", "api": "responses"}
            )
        )
        sent = fake_openai.last
        assert sent.path == "/openai/v1/responses"
        assert sent.headers["x-ms-oai-image-generation-deployment"] == "img-15"
        assert sent.headers["api-key"] == fake_openai.azure_key
        assert (sent.json or {})["model"] == "chat-deploy"
        assert (sent.json or {})["tools"] == [{"type": "image_generation", "action": "generate"}]

        facts(
            await client.call_tool(
                "edit_image", {"image": made["images"][0]["uri"], "prompt": "closer", "model": "gpt-image-2"}
            )
        )
        sent = fake_openai.last
        assert (sent.path, sent.headers["x-ms-oai-image-generation-deployment"]) == (
            "/openai/v1/responses",
            "img-2",
        )
        assert "previous_response_id" in (sent.json or {}), "same provider: the conversation continues"

        before = len(fake_openai.requests)
        refused = await client.call_tool(
            "generate_image", {"prompt": "a fox", "model": "gpt-image-1-mini", "api": "responses"}
        )
        assert "AZURE_OPENAI_DEPLOYMENTS: gpt-image-2.6-sunburst (img-15), gpt-image-2 (img-2)" in error_text(
            refused
        )
        assert len(fake_openai.requests) == before, "nothing was sent"
