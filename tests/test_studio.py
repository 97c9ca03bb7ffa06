"""The studio app on the server side: its resource, mime type and CSP, the tools' `_meta.ui`, the
app-only tools and what a host without Apps sees, and the server's answers to every request the
app makes (history pages, one image with its lineage and actions)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents
from PIL import Image

from mcp_imagegen.config import load_settings
from mcp_imagegen.server.app import build_server
from mcp_imagegen.server.studio import STUDIO_URI
from mcp_imagegen.store.base import NewImage, StoredImage
from mcp_imagegen.store.local import LocalStore
from tests.conftest import png_bytes
from tests.fakes.openai_images import FakeOpenAIImages
from tests.studio_host import APP_MIME, AppsHost

pytestmark = pytest.mark.anyio
IMAGE_TOOLS = {"generate_image", "edit_image", "upscale_image", "segment_image"}


async def fill_history(store_dir: Path, count: int) -> list[StoredImage]:
    """`count` 400x300 images of the local principal, oldest first, prompts "picture 0" onwards."""
    store = LocalStore(store_dir)
    try:
        return [
            await store.put(
                NewImage(
                    data=png_bytes((400, 300), (index * 4, 100, 200 - index * 3)),
                    mime_type="image/png",
                    width=400,
                    height=300,
                    kind="generated",
                    owner="local",
                    prompt=f"picture {index}",
                    provider="placeholder",
                )
            )
            for index in range(count)
        ]
    finally:
        store.close()


@pytest.fixture
async def apps_client(server_env: dict[str, str]) -> AsyncIterator[Client]:
    async with Client(build_server(load_settings()), extensions=[AppsHost()]) as client:
        yield client


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    facts: dict[str, Any] = result.structured_content
    return facts


async def test_the_app_resource_and_the_tools_that_open_it(apps_client: Client) -> None:
    tools = {tool.name: tool for tool in (await apps_client.list_tools()).tools}
    for name in IMAGE_TOOLS:
        assert (tools[name].meta or {}).get("ui") == {"resourceUri": STUDIO_URI}, name
    assert tools["describe_image"].meta is None  # it makes no image
    for name in ("studio_history", "studio_image"):
        assert (tools[name].meta or {})["ui"] == {"resourceUri": STUDIO_URI, "visibility": ["app"]}
    contents = (await apps_client.read_resource(STUDIO_URI)).contents
    assert len(contents) == 1 and isinstance(contents[0], TextResourceContents)
    app = contents[0]
    assert app.mime_type == APP_MIME
    # The default CSP (no domains declared): the app must need no network at all.
    assert app.meta == {"ui": {"prefersBorder": True}}
    html = app.text
    assert html.startswith("<!doctype html>") and len(html) < 100_000
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|url\(\s*['\"]?https?:", html)
    assert not re.search(r"https?://", html), "no network origin is named anywhere in the app"
    assert "fetch(" not in html and "XMLHttpRequest" not in html and "localStorage" not in html
    extensions = apps_client.server_capabilities.extensions or {}
    assert "io.modelcontextprotocol/ui" in extensions


async def test_a_host_without_apps_sees_todays_tools(server_env: dict[str, str]) -> None:
    async with Client(build_server(load_settings())) as client:
        tools = (await client.list_tools()).tools
    assert not {"studio_history", "studio_image"} & {tool.name for tool in tools}
    assert all(tool.meta is None for tool in tools)


async def test_history_pages_newest_first_with_thumbnails_and_only_the_callers(
    apps_client: Client, tmp_path: Path
) -> None:
    made = await fill_history(tmp_path / "store", 60)
    store = LocalStore(tmp_path / "store")
    await store.put(
        NewImage(data=png_bytes(), mime_type="image/png", width=64, height=48, kind="generated", owner="bob")
    )
    store.close()
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = structured(await apps_client.call_tool("studio_history", {"cursor": cursor} if cursor else {}))
        seen += page["images"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and [card["id"] for card in seen] == [image.id for image in reversed(made)]
    first = seen[0]
    assert (first["prompt"], first["width"], first["height"], first["kind"]) == (
        "picture 59",
        400,
        300,
        "generated",
    )
    assert first["uri"] == f"imagegen://images/{first['id']}"
    header, _, data = first["thumbnail"].partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    with Image.open(io.BytesIO(base64.b64decode(data))) as thumbnail:
        assert max(thumbnail.size) <= 192 and thumbnail.size[0] > thumbnail.size[1]
        assert thumbnail.convert("RGB").getpixel((5, 5))[1] in range(90, 111)  # the picture's green
    refused = await apps_client.call_tool("studio_history", {"cursor": "nonsense"})
    assert refused.is_error and "invalid cursor" in str(refused.content)


async def test_one_image_with_its_lineage_and_the_actions_here(
    apps_client: Client, fake_openai: FakeOpenAIImages
) -> None:
    made = structured(
        await apps_client.call_tool("generate_image", {"prompt": "a lighthouse", "size": "1024x1024"})
    )
    parent = made["images"][0]
    edited = structured(
        await apps_client.call_tool("edit_image", {"image": parent["uri"], "prompt": "add a moon"})
    )
    child = edited["images"][0]
    details = structured(await apps_client.call_tool("studio_image", {"image_id": parent["id"]}))
    assert details["image"]["id"] == parent["id"] and details["image"]["prompt"] == "a lighthouse"
    assert "path" not in details["image"]
    assert [card["id"] for card in details["children"]] == [child["id"]]
    assert details["children"][0]["thumbnail"].startswith("data:image/")
    # OpenAI plus the local provider: everything the studio offers.
    assert details["actions"] == ["edit", "select_subject", "cutout", "upscale", "variations", "describe"]
    of_child = structured(await apps_client.call_tool("studio_image", {"image_id": child["id"]}))
    assert of_child["image"]["parent_ids"] == [parent["id"]] and of_child["children"] == []
    assert [card["id"] for card in of_child["parents"]] == [parent["id"]]
    missing = await apps_client.call_tool("studio_image", {"image_id": "0123456789abcdef"})
    assert missing.is_error and "no image" in str(missing.content)


async def test_actions_are_only_those_a_configured_provider_can_run(
    server_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenAI without the local extra: nothing can segment (the local provider's upscaler still
    works, by resampling), so the app offers no subject selection and no cut-out."""
    import mcp_imagegen.local.model_files as files

    monkeypatch.setattr(files, "runtime_installed", lambda model: False)
    async with Client(build_server(load_settings()), extensions=[AppsHost()]) as client:
        made = structured(await client.call_tool("generate_image", {"prompt": "a fox"}))
        details = structured(await client.call_tool("studio_image", {"image_id": made["images"][0]["id"]}))
    assert details["actions"] == ["edit", "upscale", "variations", "describe"]
