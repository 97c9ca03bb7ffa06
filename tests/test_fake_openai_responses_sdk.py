"""The Responses half of the OpenAI fake is only trusted because the official SDK runs against it:
`responses.create` (JSON), `responses.stream` (every image event of providers.md 1.10, parsed
into the SDK's event types), `previous_response_id`, moderation failures, and Azure's two URL
shapes with the image deployment header."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from openai.types.responses.response_output_item import ImageGenerationCall
from PIL import Image

from tests.fakes.openai_images import FakeOpenAIImages

TOOL = {
    "type": "image_generation",
    "model": "gpt-image-1.5",
    "quality": "low",
    "size": "1536x1024",
    "output_format": "webp",
    "output_compression": 80,
    "moderation": "low",
    "background": "opaque",
    "input_fidelity": "high",
    "partial_images": 0,
    "action": "generate",
}


def sdk(fake: FakeOpenAIImages) -> openai.OpenAI:
    return openai.OpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1", max_retries=0)


def image_call(response: object) -> ImageGenerationCall:
    output = getattr(response, "output", [])
    calls = [item for item in output if isinstance(item, ImageGenerationCall)]
    assert len(calls) == 1, output
    return calls[0]


def decoded(result: str | None) -> Image.Image:
    assert result is not None
    return Image.open(io.BytesIO(base64.b64decode(result)))


def test_create_parses_into_sdk_types(fake_openai: FakeOpenAIImages) -> None:
    response = sdk(fake_openai).responses.create(
        model="gpt-5-mini",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "a lighthouse"}]}],
        tool_choice={"type": "image_generation"},
        tools=[TOOL],
    )
    sent = fake_openai.last
    assert sent.path == "/v1/responses"
    # The SDK writes `model` and `stream` first, then the rest alphabetically; the tool as given.
    assert list(sent.json or {}) == ["model", "input", "tool_choice", "tools"]
    assert (sent.json or {})["tools"] == [TOOL]
    call = image_call(response)
    assert (call.status, call.action, call.size, call.output_format) == (
        "completed",
        "generate",
        "1536x1024",
        "webp",
    )
    assert call.revised_prompt == "A detailed rendering of: a lighthouse"
    with decoded(call.result) as image:
        assert (image.format, image.size) == ("WEBP", (1536, 1024))
    assert response.id.startswith("resp_") and response.model == "gpt-5-mini"
    assert response.usage is not None and response.usage.total_tokens == 160
    assert response.tool_usage is not None and response.tool_usage.image_gen.output_tokens == 1056


def test_stream_events_parse_and_final_response_has_the_image(fake_openai: FakeOpenAIImages) -> None:
    with sdk(fake_openai).responses.stream(
        model="gpt-5-mini",
        input="a fox",
        tool_choice={"type": "image_generation"},
        tools=[{"type": "image_generation", "partial_images": 2, "size": "1024x1024"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.image_generation_call.in_progress",
        "response.image_generation_call.generating",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.completed",
        "response.output_item.done",
        "response.completed",
    ]
    with decoded(image_call(final).result) as image:
        assert image.size == (1024, 1024)


def test_partial_events_carry_decodable_images(fake_openai: FakeOpenAIImages) -> None:
    stream = sdk(fake_openai).responses.create(
        model="gpt-5-mini",
        input="a fox",
        stream=True,
        tools=[{"type": "image_generation", "partial_images": 1, "size": "1024x1536"}],
    )
    partials = [event for event in stream if event.type == "response.image_generation_call.partial_image"]
    assert [event.partial_image_index for event in partials] == [0]
    with decoded(partials[0].partial_image_b64) as image:
        assert image.size == (1024, 1536)


def test_previous_response_id_continues_only_stored_responses(fake_openai: FakeOpenAIImages) -> None:
    client = sdk(fake_openai)
    tools = [{"type": "image_generation"}]
    first = client.responses.create(model="gpt-5-mini", input="a fox", tools=tools)
    second = client.responses.create(
        model="gpt-5-mini",
        input="now make it look at the camera",
        previous_response_id=first.id,
        tools=tools,
    )
    assert second.previous_response_id == first.id and image_call(second).action == "edit"
    unstored = client.responses.create(model="gpt-5-mini", input="x", store=False, tools=tools)
    for missing in (unstored.id, "resp_nope"):
        with pytest.raises(openai.BadRequestError, match=f"Previous response with id '{missing}' not found"):
            client.responses.create(
                model="gpt-5-mini",
                input="again",
                previous_response_id=missing,
                tools=tools,
            )


def test_moderation_block_is_a_failed_call_with_categories(fake_openai: FakeOpenAIImages) -> None:
    fake_openai.responses.moderate_next.append(["sexual", "violence"])
    response = sdk(fake_openai).responses.create(
        model="gpt-5-mini", input="x", tools=[{"type": "image_generation"}]
    )
    call = image_call(response)
    assert call.status == "failed" and call.result is None and call.error is not None
    assert call.error.code == "moderation_blocked"
    assert call.error.moderation_details is not None
    assert call.error.moderation_details.categories == ["sexual", "violence"]


def test_unknown_tool_field_and_partials_without_stream_are_refused(fake_openai: FakeOpenAIImages) -> None:
    client = sdk(fake_openai)
    with pytest.raises(openai.BadRequestError, match=r"tools\[0\]\.n"):
        client.responses.create(model="m", input="x", tools=[{"type": "image_generation", "n": 2}])
    with pytest.raises(openai.BadRequestError, match="partial_images requires stream"):
        client.responses.create(
            model="m", input="x", tools=[{"type": "image_generation", "partial_images": 1}]
        )


def test_azure_shapes_need_the_image_deployment_header(fake_openai: FakeOpenAIImages) -> None:
    header = {"x-ms-oai-image-generation-deployment": "img-deploy"}
    classic = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url,
        api_key=fake_openai.azure_key,
        api_version="2025-04-01-preview",
        max_retries=0,
    )
    response = classic.responses.create(
        model="chat-deploy", input="a fox", tools=[{"type": "image_generation"}], extra_headers=header
    )
    sent = fake_openai.last
    assert (sent.path, sent.query) == ("/openai/responses", {"api-version": "2025-04-01-preview"})
    assert sent.headers["api-key"] == fake_openai.azure_key
    assert image_call(response).result
    v1 = openai.OpenAI(api_key=fake_openai.azure_key, base_url=f"{fake_openai.url}/openai/v1", max_retries=0)
    v1.responses.create(
        model="chat-deploy", input="a fox", tools=[{"type": "image_generation"}], extra_headers=header
    )
    assert fake_openai.last.path == "/openai/v1/responses"
    with pytest.raises(openai.BadRequestError, match="x-ms-oai-image-generation-deployment"):
        v1.responses.create(model="chat-deploy", input="a fox", tools=[{"type": "image_generation"}])


def test_an_error_event_ends_the_stream(fake_openai: FakeOpenAIImages) -> None:
    fake_openai.stream_error = {"code": "server_error", "message": "The image tool failed."}
    stream = sdk(fake_openai).responses.create(
        model="gpt-5-mini",
        input="a fox",
        stream=True,
        tools=[{"type": "image_generation", "partial_images": 1}],
    )
    events = list(stream)
    assert [event.type for event in events][-2:] == ["response.image_generation_call.partial_image", "error"]
    last = events[-1]
    assert last.type == "error" and (last.code, last.message) == ("server_error", "The image tool failed.")
