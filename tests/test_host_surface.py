"""What a 2026-07-28 host sees besides the tools' schemas: titles and icons, resource annotations,
and the caching hints on lists and reads."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.connect import connect
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio


async def test_titles_icons_annotations_and_cache_hints(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    async with connect("memory", server_env) as client:
        server = client.server_info
        assert server is not None and server.icons
        assert server.icons[0].src.startswith("data:image/svg+xml;base64,PHN2Zy")
        listed = await client.list_tools()
        # Private: the list depends on whether the client renders MCP Apps (the studio's tools).
        assert (listed.ttl_ms, listed.cache_scope) == (3_600_000, "private")
        for tool in listed.tools:
            assert tool.title, tool.name
            assert tool.annotations is not None and tool.annotations.title is None, "the title is said once"
            if tool.name.endswith("_image"):
                assert tool.icons and tool.icons[0].src.startswith("data:image/svg+xml;base64,"), tool.name
        hints = {tool.name: tool.annotations for tool in listed.tools}
        generate = hints["generate_image"]
        assert generate is not None and generate.destructive_hint is False and generate.read_only_hint is None
        get_job = hints["get_job"]
        assert get_job is not None and get_job.read_only_hint and get_job.open_world_hint is False

        made = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        assert made.structured_content is not None
        uri = made.structured_content["images"][0]["uri"]
        resources = await client.list_resources()
        assert (resources.ttl_ms, resources.cache_scope) == (0, "private")
        [resource] = resources.resources
        assert resource.uri == uri and resource.annotations is not None
        assert resource.annotations.audience == ["user", "assistant"]
        modified = datetime.fromisoformat(resource.annotations.last_modified or "")
        assert abs((datetime.now(timezone.utc) - modified).total_seconds()) < 60
        read = await client.read_resource(uri)
        assert (read.ttl_ms, read.cache_scope) == (86_400_000, "private")
