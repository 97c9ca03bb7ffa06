"""The Mistral fake is trusted because the official mistralai SDK runs against it: agent
creation, conversations plain and streamed (`event:` lines), file download (octet-stream),
vision chat, and the strict 422 for unknown fields."""

from __future__ import annotations

import base64

import httpx2
import pytest
from mistralai.client import Mistral, errors, models

from tests.conftest import image_size, png_bytes
from tests.fakes.mistral import FakeMistral


def sdk(fake: FakeMistral) -> Mistral:
    return Mistral(api_key=fake.api_key, server_url=fake.url)


def test_sdk_agent_conversation_and_file_download(fake_mistral: FakeMistral) -> None:
    client = sdk(fake_mistral)
    agent = client.beta.agents.create(
        model="mistral-medium-2505",
        name="Image Generation Agent",
        instructions="Use the image generation tool when you have to create images.",
        tools=[models.ImageGenerationTool()],
        completion_args={"temperature": 0.3, "top_p": 0.95},
        description="Agent used to generate images.",
    )
    assert agent.id.startswith("ag_") and agent.versions == [0]
    assert fake_mistral.of("/v1/agents")[0].json == {
        "model": "mistral-medium-2505",
        "name": "Image Generation Agent",
        "instructions": "Use the image generation tool when you have to create images.",
        "tools": [{"type": "image_generation"}],
        "completion_args": {"temperature": 0.3, "top_p": 0.95},
        "description": "Agent used to generate images.",
    }

    response = client.beta.conversations.start(
        inputs="Generate an orange cat in an office.", agent_id=agent.id
    )
    assert fake_mistral.of("/v1/conversations")[-1].json == {
        "inputs": "Generate an orange cat in an office.",
        "stream": False,
        "agent_id": agent.id,
    }
    message = response.outputs[-1]
    assert isinstance(message, models.MessageOutputEntry) and isinstance(message.content, list)
    tool_file = message.content[-1]
    assert isinstance(tool_file, models.ToolFileChunk) and tool_file.file_type == "png"

    download = client.files.download(file_id=tool_file.file_id)
    assert image_size(download.read()) == (256, 256)
    assert fake_mistral.of("/v1/files")[-1].headers["accept"] == "application/octet-stream"


def test_sdk_streams_a_conversation(fake_mistral: FakeMistral) -> None:
    client = sdk(fake_mistral)
    agent = client.beta.agents.create(
        model="mistral-medium-latest", name="img", tools=[models.ImageGenerationTool()]
    )
    events = list(client.beta.conversations.start_stream(inputs="draw a cat", agent_id=agent.id))
    names = [event.event for event in events]
    assert names[0] == "conversation.response.started" and names[-1] == "conversation.response.done"
    assert "tool.execution.started" in names
    deltas = [event.data for event in events if event.event == "message.output.delta"]
    assert isinstance(deltas[-1], models.MessageOutputEvent)
    assert isinstance(deltas[-1].content, models.ToolFileChunk)
    assert fake_mistral.of("/v1/conversations")[-1].headers["accept"] == "text/event-stream"


def test_sdk_vision_chat_and_strict_validation(fake_mistral: FakeMistral) -> None:
    client = sdk(fake_mistral)
    image = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    message = models.UserMessage(
        content=[
            models.TextChunk(text="What is this?"),
            models.ImageURLChunk(image_url=models.ImageURL(url=image, detail="low")),
        ]
    )
    reply = client.chat.complete(model="pixtral-12b-2409", messages=[message], max_tokens=100)
    answer = reply.choices[0].message
    assert answer is not None and answer.content == fake_mistral.chat.answer
    assert fake_mistral.chat.last.image_sizes() == [(64, 48)]
    refused = httpx2.post(
        f"{fake_mistral.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {fake_mistral.api_key}"},
        json={"model": "m", "messages": [], "stream_options": {"include_usage": True}},
        timeout=5,
    )
    assert refused.status_code == 422
    assert refused.json()["message"]["detail"][0]["type"] == "extra_forbidden"
    with pytest.raises(errors.SDKError):
        Mistral(api_key="wrong", server_url=fake_mistral.url).beta.agents.create(model="m", name="x")
