"""Mistral through our client and through the tools: the agent made once and reused, the
conversation body the SDK sends, tool files downloaded, edits with image chunks, vision
chat accepted by Mistral's strict validation."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from mistralai.client import Mistral, models

from mcp_imagegen.config import MistralSettings
from mcp_imagegen.providers.base import DescribeRequest, EditRequest, GenerateRequest, InputImage
from mcp_imagegen.providers.mistral.provider import AGENT_NAME, MistralImages, mistral_capabilities
from tests.conftest import image_size, png_bytes
from tests.connect import Transport, connect
from tests.fakes.mistral import FakeMistral
from tests.test_e2e import read_blob
from tests.test_openai_streaming import RecordingEvents

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def ours(fake: FakeMistral, http: httpx2.AsyncClient, **settings: object) -> MistralImages:
    config = MistralSettings(api_key=fake.api_key, base_url=fake.url, **settings)  # type: ignore[arg-type]
    return MistralImages(config, http, mistral_capabilities(config))


async def test_agent_is_created_once_and_conversations_match_the_sdk(
    fake_mistral: FakeMistral, http: httpx2.AsyncClient
) -> None:
    provider = ours(fake_mistral, http, temperature=0.3, top_p=0.95)
    events = RecordingEvents()
    first = await provider.generate(
        GenerateRequest(prompt="an orange cat", model="mistral-medium-latest"), events
    )
    second = await provider.generate(GenerateRequest(prompt="a grey cat", model="mistral-medium-latest", n=2))
    agents = fake_mistral.of("/v1/agents")
    assert len(agents) == 1, "the agent is made once and reused"
    assert agents[0].json == {
        "model": "mistral-medium-latest",
        "name": AGENT_NAME,
        "instructions": "Use the image generation tool when you have to create images.",
        "tools": [{"type": "image_generation"}],
        "completion_args": {"temperature": 0.3, "top_p": 0.95},
        "description": "Creates images with the image_generation tool for mcp-imagegen.",
    }
    agent_id = first.metadata["agent_id"]
    mine = fake_mistral.of("/v1/conversations")[0]
    list(
        Mistral(api_key=fake_mistral.api_key, server_url=fake_mistral.url).beta.conversations.start_stream(
            inputs="an orange cat", agent_id=str(agent_id)
        )
    )
    sdk_sent = fake_mistral.of("/v1/conversations")[-1]
    assert mine.json == sdk_sent.json == {"inputs": "an orange cat", "stream": True, "agent_id": agent_id}
    assert mine.headers["accept"] == sdk_sent.headers["accept"] == "text/event-stream"
    assert mine.headers["authorization"] == sdk_sent.headers["authorization"]

    downloads = fake_mistral.of("/v1/files")
    assert len(downloads) == 3 and all(
        d.method == "GET" and d.headers["accept"] == "application/octet-stream" for d in downloads
    )
    assert image_size(first.images[0].data) == (256, 256) and len(second.images) == 2
    assert first.text == fake_mistral.agent_text
    assert first.metadata["usage"] == {
        "prompt_tokens": 129,
        "total_tokens": 292,
        "completion_tokens": 94,
        "connector_tokens": 69,
        "connectors": {"image_generation": 1},
    }
    assert "mistral is running its image_generation tool" in events.steps
    assert events.steps[0] == "creating the mistral image agent (once per model)"


async def test_a_configured_agent_is_used_as_given(
    fake_mistral: FakeMistral, http: httpx2.AsyncClient
) -> None:
    agent = Mistral(api_key=fake_mistral.api_key, server_url=fake_mistral.url).beta.agents.create(
        model="mistral-medium-latest", name="mine", tools=[models.ImageGenerationTool()]
    )
    provider = ours(fake_mistral, http, agent_id=agent.id)
    await provider.generate(GenerateRequest(prompt="x", model="mistral-medium-latest"))
    assert len(fake_mistral.of("/v1/agents")) == 1, "only the test made an agent"
    assert fake_mistral.of("/v1/conversations")[-1].json["agent_id"] == agent.id


async def test_edit_sends_the_image_as_a_chunk_and_describe_passes_strict_validation(
    fake_mistral: FakeMistral, http: httpx2.AsyncClient
) -> None:
    data = png_bytes((40, 30))
    provider = ours(fake_mistral, http)
    image = InputImage(data, "image/png", 40, 30, "image.png")
    await provider.edit(EditRequest(prompt="make it blue", model="mistral-medium-latest", images=(image,)))
    inputs = fake_mistral.of("/v1/conversations")[-1].json["inputs"]
    assert inputs == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "make it blue"},
                {
                    "type": "image_url",
                    "image_url": "data:image/png;base64," + base64.b64encode(data).decode(),
                },
            ],
            "object": "entry",
            "type": "message.input",
            "prefix": False,
        }
    ]
    answer = await provider.describe(
        DescribeRequest(
            images=(image, image), question="Same image twice?", model="pixtral-12b-2409", max_tokens=50
        )
    )
    assert answer.text == fake_mistral.chat.answer
    sent = fake_mistral.of("/v1/chat/completions")[-1].json
    assert "stream_options" not in sent and sent["max_tokens"] == 50 and sent["stream"] is True


@pytest.fixture
def mistral_env(fake_mistral: FakeMistral, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "MISTRAL_API_KEY": fake_mistral.api_key,
        "MISTRAL_BASE_URL": fake_mistral.url,
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_generate_and_describe_with_mistral_through_the_tools(
    transport: Transport, mistral_env: dict[str, str], fake_mistral: FakeMistral
) -> None:
    async with connect(transport, mistral_env) as client:
        made = await client.call_tool("generate_image", {"prompt": "an orange cat in an office", "n": 2})
        facts = made.structured_content or {}
        assert not made.is_error, made.content
        assert facts["provider"] == "mistral" and len(facts["images"]) == 2
        assert facts["text"] == fake_mistral.agent_text
        blob, mime = await read_blob(client, facts["images"][0]["uri"])
        assert mime == "image/png" and blob in fake_mistral.files.values()

        answer = await client.call_tool(
            "describe_image",
            {"images": [image["uri"] for image in facts["images"]], "question": "What do you see?"},
        )
        assert not answer.is_error, answer.content
        described = answer.structured_content or {}
        assert described["answer"] == fake_mistral.chat.answer and described["model"] == "mistral-medium-2508"
        assert len(fake_mistral.chat.last.image_sizes()) == 2
