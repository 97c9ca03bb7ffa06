"""What a start costs: a host starts the server and lists its tools, which never reach a provider,
so the providers' HTTP transport (httpcore, an SSL context with the CA bundle: 60 ms) is made at
the first provider request, once, however many requests arrive together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from pydantic import SecretStr

from mcp_imagegen.config import OpenAISettings, Settings
from mcp_imagegen.server.app import build_server
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio


async def test_the_provider_transport_is_made_at_the_first_request_only(
    fake_openai: FakeOpenAIImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx2.Limits] = []
    real_init = httpx2.AsyncHTTPTransport.__init__

    def counted(transport: httpx2.AsyncHTTPTransport, *args: Any, **kwargs: Any) -> None:
        made.append(kwargs["limits"])
        real_init(transport, *args, **kwargs)

    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "__init__", counted)
    settings = Settings(
        store_dir=tmp_path / "store",
        openai=OpenAISettings(api_key=SecretStr(fake_openai.api_key), base_url=f"{fake_openai.url}/v1"),
    )
    async with Client(build_server(settings)) as client:
        assert (await client.list_tools()).tools
        assert made == []  # started and listed: no transport yet
        results: list[Any] = []

        async def generate(index: int) -> None:
            results.append(await client.call_tool("generate_image", {"prompt": f"fox {index}"}))

        async with anyio.create_task_group() as group:
            for index in range(4):
                group.start_soon(generate, index)
        assert all(not result.is_error for result in results), results
        assert len(fake_openai.images_sent) >= 4
        assert len(made) == 1, made  # four first requests at once share one transport
        assert made[0].max_connections == settings.max_concurrent_provider_calls
