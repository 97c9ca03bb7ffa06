"""describe_image: our chat requests against the openai SDK's, and the tool end to end over
the OpenAI-style chat fake (OpenAI and Scaleway), with the image images stored by an earlier
generate call."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from PIL import Image
from pydantic import JsonValue

from mcp_imagegen.config import OpenAISettings, ScalewaySettings
from mcp_imagegen.errors import InputError, ProviderError
from mcp_imagegen.providers.base import Capabilities, DescribeRequest, InputImage
from mcp_imagegen.providers.openai import chat
from mcp_imagegen.providers.openai.endpoint import openai_endpoint
from mcp_imagegen.providers.scaleway import provider as scaleway
from tests.conftest import png_bytes
from tests.connect import Transport, connect
from tests.fakes.openai_chat import FakeChat
from tests.test_openai_streaming import RecordingEvents

pytestmark = pytest.mark.anyio
CAPS = Capabilities(operations=frozenset({"describe"}), models=(), default_model="m", options=frozenset())


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def vision(fake: FakeChat, http: httpx2.AsyncClient) -> chat.ChatVision:
    endpoint = chat.chat_endpoint_for(
        openai_endpoint(OpenAISettings(api_key=fake.api_key, base_url=f"{fake.url}/v1")),
        max_tokens_field="max_completion_tokens",
    )
    return chat.ChatVision(endpoint, http, CAPS, 30)


def item(data: bytes) -> InputImage:
    with Image.open(io.BytesIO(data)) as opened:
        return InputImage(data, "image/png", opened.width, opened.height, "image.png")


async def test_streamed_describe_matches_the_sdk(fake_chat: FakeChat, http: httpx2.AsyncClient) -> None:
    first, second = png_bytes((20, 10)), png_bytes((10, 20), (0, 0, 255))
    schema: dict[str, JsonValue] = {
        "type": "object",
        "properties": {"count": {"type": "integer"}},
        "required": ["count"],
    }
    sdk = openai.OpenAI(api_key=fake_chat.api_key, base_url=f"{fake_chat.url}/v1", max_retries=0)
    list(
        sdk.chat.completions.create(
            model="gpt-5-mini",
            stream=True,
            messages=[
                {"role": "system", "content": "Answer in JSON."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "How many squares?"},
                        *[
                            {
                                "type": "image_url",
                                "image_url": {
                                    "url": f"data:image/png;base64,{base64.b64encode(data).decode()}",
                                    "detail": "high",
                                },
                            }
                            for data in (first, second)
                        ],
                    ],
                },
            ],
            max_completion_tokens=300,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": False},
            },
            stream_options={"include_usage": True},
            temperature=0.2,
            top_p=0.9,
        )
    )
    sdk_sent = fake_chat.last
    events = RecordingEvents()
    result = await vision(fake_chat, http).describe(
        DescribeRequest(
            images=(item(first), item(second)),
            question="How many squares?",
            model="gpt-5-mini",
            system="Answer in JSON.",
            max_tokens=300,
            temperature=0.2,
            top_p=0.9,
            detail="high",
            response_schema=schema,
        ),
        events,
    )
    assert list(fake_chat.last.json.items()) == list(sdk_sent.json.items())
    assert fake_chat.last.headers["authorization"] == sdk_sent.headers["authorization"]
    assert result.structured == {"objects": ["square", "square"], "count": 2}
    assert result.usage["prompt_tokens"] == 50 + 85 * 2 and result.finish_reason == "stop"
    assert events.steps[0] == "request sent to openai"


async def test_answers_that_break_the_schema_and_error_shapes(
    fake_chat: FakeChat, http: httpx2.AsyncClient
) -> None:
    provider = vision(fake_chat, http)
    request = DescribeRequest(
        images=(item(png_bytes()),),
        question="?",
        model="m",
        response_schema={"type": "object", "required": ["colour"]},
    )
    with pytest.raises(
        ProviderError, match="the answer does not match response_schema: 'colour' is a required"
    ):
        await provider.describe(request)
    fake_chat.structured_answer = "not json at all"
    fake_chat.answer = "plain words"
    with pytest.raises(ProviderError, match="does not match response_schema"):
        await provider.describe(request)
    fake_chat.max_images = 0
    fake_chat.error_shape = "legacy"
    with pytest.raises(ProviderError, match=r"HTTP 400.*Too many images: at most 0 per request"):
        await provider.describe(DescribeRequest(images=(item(png_bytes()),), question="?", model="m"))
    with pytest.raises(InputError, match="not a valid JSON schema"):
        chat.check_schema({"type": "not-a-type"})


async def test_scaleway_sends_no_stream_options_and_uses_the_project_path(
    fake_chat: FakeChat, http: httpx2.AsyncClient
) -> None:
    fake_chat.usage_every_chunk = True
    endpoint = scaleway.scaleway_endpoint(
        ScalewaySettings(secret_key=fake_chat.api_key, project_id="proj-1", base_url=fake_chat.url)
    )
    result = await chat.ChatVision(endpoint, http, CAPS, 30).describe(
        DescribeRequest(
            images=(item(png_bytes()),), question="What is it?", model="pixtral-12b-2409", max_tokens=50
        )
    )
    assert fake_chat.last.path == "/proj-1/v1/chat/completions"
    assert "stream_options" not in fake_chat.last.json and fake_chat.last.json["max_tokens"] == 50
    assert result.text == fake_chat.answer and result.usage["completion_tokens"] == 7


@pytest.fixture
def describe_env(
    fake_chat: FakeChat, fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    fake_chat.api_key = fake_openai.api_key
    env = {
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "SCW_SECRET_KEY": fake_chat.api_key,
        "SCALEWAY_BASE_URL": fake_chat.url,
        "SCW_DEFAULT_PROJECT_ID": "proj-9",
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_describe_stored_images_through_the_tool(
    transport: Transport, describe_env: dict[str, str], fake_chat: FakeChat, tmp_path: Path
) -> None:
    async with connect(transport, describe_env) as client:
        made = (
            await client.call_tool("generate_image", {"prompt": "two squares", "n": 2})
        ).structured_content
        assert made is not None
        uris = [image["uri"] for image in made["images"]]
        files_before = sorted((tmp_path / "store" / "images").rglob("*.*"))

        answer = await client.call_tool(
            "describe_image", {"images": uris, "question": "How many squares?", "provider": "scaleway"}
        )
        assert not answer.is_error, answer.content
        facts = answer.structured_content or {}
        assert facts["answer"] == fake_chat.answer and facts["provider"] == "scaleway"
        assert facts["model"] == "mistral-small-3.2-24b-instruct-2506"
        sent = fake_chat.last
        assert sent.path == "/proj-9/v1/chat/completions"
        assert sent.json["messages"][0]["content"][0] == {"type": "text", "text": "How many squares?"}
        assert sent.image_sizes() == [(1024, 1024), (1024, 1024)], "1024 fits Scaleway's budget as it is"

        structured = await client.call_tool(
            "describe_image",
            {
                "images": [uris[0]],
                "provider": "scaleway",
                "response_schema": {
                    "type": "object",
                    "properties": {"objects": {"type": "array"}, "count": {"type": "integer"}},
                    "required": ["count"],
                },
            },
        )
        assert (structured.structured_content or {})["data"] == {"objects": ["square", "square"], "count": 2}
        assert sorted((tmp_path / "store" / "images").rglob("*.*")) == files_before, "describe stores nothing"

        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert (
            tools["describe_image"].annotations is not None
            and tools["describe_image"].annotations.read_only_hint
        )


async def test_limits_and_downscaling(describe_env: dict[str, str], fake_chat: FakeChat) -> None:
    big = png_bytes((3000, 1500))
    async with connect("memory", describe_env) as client:
        thirteen = ["data:image/png;base64," + base64.b64encode(png_bytes()).decode()] * 13
        refused = await client.call_tool("describe_image", {"images": thirteen, "provider": "scaleway"})
        assert refused.is_error and "scaleway takes at most 12 images per request, not 13" in str(
            refused.content
        )
        assert fake_chat.requests == []
        bad_schema = await client.call_tool(
            "describe_image", {"images": thirteen[:1], "provider": "scaleway", "response_schema": {"type": 5}}
        )
        assert bad_schema.is_error and "not a valid JSON schema" in str(bad_schema.content)
        answer = await client.call_tool(
            "describe_image",
            {"images": ["data:image/png;base64," + base64.b64encode(big).decode()], "provider": "scaleway"},
        )
        assert not answer.is_error, answer.content
        assert fake_chat.last.image_sizes() == [(1024, 512)], "downscaled to the model's 1024 px"
        providers = (await client.call_tool("list_providers", {})).structured_content or {}
        scaleway = next(info for info in providers["providers"] if info["name"] == "scaleway")
        assert scaleway["operations"] == ["describe"] and scaleway["max_describe_images"] == 12
        # The model data's list: pixtral was dropped, so it is not offered.
        assert scaleway["vision_models"] == [
            "mistral-small-3.2-24b-instruct-2506",
            "gemma-3-27b-it",
            "qwen3.5-397b-a17b",
        ]


async def test_describe_with_openai_next_to_its_images_api(
    describe_env: dict[str, str], fake_openai: Any, tmp_path: Path
) -> None:
    """OPENAI_API_KEY + OPENAI_BASE_URL: describe goes to /chat/completions beside /images."""
    async with connect("memory", describe_env) as client:
        made = (
            await client.call_tool("generate_image", {"prompt": "a ring", "size": "1536x1024"})
        ).structured_content
        assert made is not None
        answer = await client.call_tool(
            "describe_image",
            {
                "images": [made["images"][0]["uri"], "https://images.example.test/second.png"],
                "question": "Same object?",
                "provider": "openai",
                "detail": "low",
                "max_tokens": 80,
            },
        )
        assert not answer.is_error, answer.content
        facts = answer.structured_content or {}
        assert (
            facts["answer"] == fake_openai.chat.answer and facts["model"] == "gpt-6-luna"
        )  # the data's default
        sent = fake_openai.chat.last.json
        assert fake_openai.chat.last.path == "/v1/chat/completions"
        parts = sent["messages"][0]["content"]
        assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
        assert parts[2]["image_url"] == {"url": "https://images.example.test/second.png", "detail": "low"}, (
            "a URL the provider can fetch is passed through, not fetched by the server"
        )
        assert sent["max_completion_tokens"] == 80 and sent["stream_options"] == {"include_usage": True}
        with Image.open(
            io.BytesIO(base64.b64decode(parts[1]["image_url"]["url"].split(",", 1)[1]))
        ) as sent_image:
            assert sent_image.size == (1536, 1024), "within OpenAI's 2048 px, sent as it is"


async def test_images_are_checked_against_the_providers_byte_cap(tmp_path: Path) -> None:
    """After downscaling, an image over the provider's per-image cap is refused before any request."""
    from dataclasses import replace

    from mcp_imagegen.config import Settings
    from mcp_imagegen.images.inputs import ReferenceReader
    from mcp_imagegen.server.inputs import InputResolver
    from mcp_imagegen.server.state import AppState
    from mcp_imagegen.server.tools.describe import _prepared
    from mcp_imagegen.store.local import LocalStore

    store = LocalStore(tmp_path / "store")
    settings = Settings(store_dir=tmp_path / "store")
    unused: Any = None  # describe's preparation touches only the settings and the input resolver
    app = AppState(
        settings,
        store,
        unused,
        InputResolver(store, ReferenceReader(tmp_path / "store", [], 10_000_000)),
        unused,
        unused,
        unused,
        unused,
    )
    reference = "data:image/png;base64," + base64.b64encode(png_bytes((300, 200))).decode()
    small_cap = replace(CAPS, vision_max_side=100, max_describe_image_bytes=50)
    with pytest.raises(
        InputError, match=r"image is \d+ bytes even downscaled, over this provider's 50-byte limit"
    ):
        await _prepared(app, reference, small_cap, 0, 1)
    fitted = await _prepared(app, reference, replace(CAPS, vision_max_side=100), 0, 1)
    assert isinstance(fitted, InputImage) and (fitted.width, fitted.height) == (100, 67)
    assert (
        await _prepared(app, "https://x.test/a.png", replace(CAPS, fetches_urls=True), 0, 1)
        == "https://x.test/a.png"
    )


async def test_the_answer_streams_into_progress(fake_chat: FakeChat, http: httpx2.AsyncClient) -> None:
    fake_chat.chunk_delay_s = 0.3
    events = RecordingEvents()
    result = await vision(fake_chat, http).describe(
        DescribeRequest(images=(item(png_bytes()),), question="?", model="m"), events
    )
    answering = [step for step in events.steps if step.startswith("openai is answering (")]
    assert len(answering) >= 2, events.steps
    assert answering[0].endswith(fake_chat.answer[: len(answering[0].split("…", 1)[1])])
    assert result.text == fake_chat.answer
