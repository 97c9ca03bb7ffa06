"""The whole path through a real MCP client, in memory, over stdio and over Streamable HTTP.

One test body per scenario, run on each transport: list tools, generate through the
OpenAI fake, edit the result by its URI, read both resources, page through
resources/list, and check that a 4096x4096 provider image comes back as previews within
the inline budget while the stored file keeps its full size.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from PIL import Image

from tests.connect import Transport, connect
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
TRANSPORTS: list[Transport] = ["memory", "stdio", "http"]
BUDGET_BYTES = 700_000
BUDGET_SIDE = 1568


def images_of(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def decoded(block: ImageContent) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(block.data)))


async def read_blob(client: Client, uri: str) -> tuple[bytes, str]:
    contents = (await client.read_resource(uri)).contents
    assert len(contents) == 1 and isinstance(contents[0], BlobResourceContents)
    return base64.b64decode(contents[0].blob), contents[0].mime_type or ""


async def read_json(client: Client, uri: str) -> dict[str, Any]:
    contents = (await client.read_resource(uri)).contents
    assert isinstance(contents[0], TextResourceContents)
    assert contents[0].mime_type == "application/json"
    document: dict[str, Any] = json.loads(contents[0].text)
    return document


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_generate_edit_and_resources(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    async with connect(transport, server_env) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        # OpenAI and the local provider: recontext_image needs Vertex, so it is not listed.
        assert set(tools) == {
            "generate_image",
            "edit_image",
            "upscale_image",
            "segment_image",
            "describe_image",
            "list_providers",
            "get_job",
            "cancel_job",
            "get_usage",
        }
        generate_schema = tools["generate_image"].input_schema["properties"]
        assert {
            "prompt",
            "provider",
            "model",
            "n",
            "size",
            "aspect_ratio",
            "quality",
            "background",
            "output_format",
            "output_compression",
            "moderation",
            "partial_images",
        } <= set(generate_schema)
        # Options only unconfigured providers take are left out of this OpenAI server's schema.
        assert not {"negative_prompt", "seed", "image_size", "safety_filter"} & set(generate_schema)
        assert generate_schema["output_format"]["enum"] == ["png", "jpeg", "webp", None]
        assert tools["generate_image"].output_schema is not None
        annotations = tools["generate_image"].annotations
        # Hints equal to the protocol defaults (open world, not read-only) are left out.
        assert (
            annotations is not None and annotations.open_world_hint is None and not annotations.read_only_hint
        )
        assert annotations.destructive_hint is False
        listing = tools["list_providers"].annotations
        assert listing is not None and listing.read_only_hint

        made = await client.call_tool(
            "generate_image",
            {"prompt": "a lighthouse at dusk", "model": "gpt-image-2.6-sunburst", "size": "1536x1024"},
        )
        assert not made.is_error, made.content
        assert [type(block) for block in made.content] == [ImageContent, ResourceLink, TextContent]
        assert fake_openai.last.json == {
            "model": "gpt-image-2.6-sunburst",
            "prompt": "a lighthouse at dusk",
            "size": "1536x1024",
        }
        structured = made.structured_content
        assert structured is not None
        assert (structured["provider"], structured["model"]) == ("openai", "gpt-image-2.6-sunburst")
        first = structured["images"][0]
        assert (first["width"], first["height"], first["mime_type"]) == (1536, 1024, "image/png")
        assert json.loads(made.content[-1].text) == structured  # type: ignore[union-attr]
        link = made.content[1]
        assert (
            isinstance(link, ResourceLink) and link.uri == first["uri"] == f"imagegen://images/{first['id']}"
        )
        stored_path = Path(first["path"])
        assert stored_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert stored_path.stat().st_size == first["bytes"]

        original, mime = await read_blob(client, first["uri"])
        assert mime == "image/png" and original == stored_path.read_bytes()

        mask = _black_white_mask((1536, 1024))
        edited = await client.call_tool(
            "edit_image",
            {"image": first["uri"], "prompt": "add a moon", "mask": mask, "model": "gpt-image-2.6-sunburst"},
        )
        assert not edited.is_error, edited.content
        sent = fake_openai.last
        assert sent.path == "/v1/images/edits"
        assert [part.name for part in sent.parts or []] == ["prompt", "model", "image[]", "mask"]
        assert sent.files()[0].data == original
        with Image.open(io.BytesIO(sent.files()[1].data)) as sent_mask:
            assert sent_mask.format == "PNG" and sent_mask.mode == "RGBA" and sent_mask.size == (1536, 1024)
            assert sent_mask.getpixel((10, 10))[3] == 255  # black: keep
            assert sent_mask.getpixel((1500, 1000))[3] == 0  # white: edit here
        edit_structured = edited.structured_content
        assert edit_structured is not None
        assert edit_structured["parent_ids"] == [first["id"]]

        metadata = await read_json(client, edit_structured["images"][0]["uri"] + "/metadata")
        assert metadata["prompt"] == "add a moon"
        assert metadata["parent_ids"] == [first["id"]]
        assert metadata["kind"] == "edited"
        assert metadata["provider_response"]["usage"]["total_tokens"] == 150
        assert "mask_id" in metadata
        assert (await read_json(client, first["uri"] + "/metadata"))["sha256"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resources_list_pages_newest_first(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.output_size = (24, 24)
    async with connect(transport, server_env) as client:
        made: list[str] = []
        for _ in range(6):
            result = await client.call_tool("generate_image", {"prompt": "tiny", "n": 10})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            made.extend(image["uri"] for image in result.structured_content["images"])
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await client.list_resources(cursor=cursor)
            pages += 1
            seen.extend(resource.uri for resource in page.resources)
            assert all(resource.mime_type == "image/png" for resource in page.resources)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 2
        assert seen == list(reversed(made))
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "imagegen://images/{id}",
            "imagegen://images/{id}/metadata",
        }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_huge_provider_image_fits_inline_budget_and_stays_full_size(
    transport: Transport, server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.output_size = (4096, 4096)
    async with connect(transport, server_env) as client:
        result = await client.call_tool("generate_image", {"prompt": "huge", "n": 2})
        assert not result.is_error, result.content
        previews = images_of(result)
        assert len(previews) == 2
        raw_sizes = [len(base64.b64decode(block.data)) for block in previews]
        assert sum(raw_sizes) <= BUDGET_BYTES
        for block in previews:
            with decoded(block) as preview:
                assert max(preview.size) <= BUDGET_SIDE
        assert result.structured_content is not None
        stored = result.structured_content["images"][0]
        assert (stored["width"], stored["height"]) == (4096, 4096)
        assert stored["bytes"] > BUDGET_BYTES
        full, _ = await read_blob(client, stored["uri"])
        with Image.open(io.BytesIO(full)) as image:
            assert image.size == (4096, 4096)
        assert len(full) == stored["bytes"]


def _black_white_mask(size: tuple[int, int]) -> str:
    """A data URI: black everywhere except a white lower-right quarter (the area to edit)."""
    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] // 2, size[1] // 2, size[0], size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
