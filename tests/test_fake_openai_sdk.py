"""The fake is only trusted because the official openai SDK runs against it.

Each test makes a real SDK call to the loopback fake, checks the SDK parsed the reply
into its own types, and checks the request the SDK sent matches the captures in
providers.md (field order, `image[]` parts, Azure URL shapes and auth headers).
"""

from __future__ import annotations

import base64
import io

import openai
import pytest
from PIL import Image

from tests.conftest import image_size, png_bytes
from tests.fakes.openai_images import FakeOpenAIImages


def sdk(fake: FakeOpenAIImages) -> openai.OpenAI:
    return openai.OpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1", max_retries=0)


def test_sdk_generate_full_request_parses_reply(fake_openai: FakeOpenAIImages) -> None:
    result = sdk(fake_openai).images.generate(
        model="gpt-image-1.5",
        prompt="a cat",
        background="opaque",
        moderation="low",
        n=2,
        output_compression=80,
        output_format="webp",
        quality="low",
        size="1536x1024",
    )
    sent = fake_openai.last
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert sent.headers["accept"] == "application/json"
    # The order captured from openai 3.54 in providers.md 1.2.
    assert list(sent.json or {}) == [
        "model",
        "prompt",
        "background",
        "moderation",
        "n",
        "output_compression",
        "output_format",
        "quality",
        "size",
    ]
    assert result.data is not None and len(result.data) == 2
    first = base64.b64decode(result.data[0].b64_json or "")
    with Image.open(io.BytesIO(first)) as image:
        assert (image.format, image.size) == ("WEBP", (1536, 1024))
    assert result.usage is not None and result.usage.output_tokens == 200
    assert result.output_format == "webp"
    assert result.size == "1536x1024"


def test_sdk_edit_with_image_list_and_mask(fake_openai: FakeOpenAIImages) -> None:
    picture = png_bytes((64, 96))
    second = png_bytes((64, 96), (0, 0, 255))
    mask = png_bytes((64, 96), (0, 0, 0, 0), mode="RGBA")
    result = sdk(fake_openai).images.edit(
        model="gpt-image-1.5",
        prompt="edit",
        image=[("a.png", picture, "image/png"), ("b.png", second, "image/png")],
        mask=("m.png", mask, "image/png"),
        input_fidelity="high",
        n=2,
        output_format="png",
        quality="high",
        size="1024x1536",
    )
    sent = fake_openai.last
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    # Field order and part names as captured in providers.md 1.4.1.
    assert [part.name for part in sent.parts or []] == [
        "prompt",
        "input_fidelity",
        "model",
        "n",
        "output_format",
        "quality",
        "size",
        "image[]",
        "image[]",
        "mask",
    ]
    assert [(p.filename, p.content_type) for p in sent.files()] == [
        ("a.png", "image/png"),
        ("b.png", "image/png"),
        ("m.png", "image/png"),
    ]
    assert sent.files()[0].data == picture
    assert result.data is not None and len(result.data) == 2
    assert image_size(base64.b64decode(result.data[0].b64_json or "")) == (1024, 1536)


def test_sdk_single_file_uses_bare_image_field(fake_openai: FakeOpenAIImages) -> None:
    sdk(fake_openai).images.edit(
        model="gpt-image-1.5", prompt="edit", image=("a.png", png_bytes(), "image/png")
    )
    assert [part.name for part in fake_openai.last.parts or []] == ["prompt", "model", "image"]


def test_sdk_sees_moderation_error_as_bad_request(fake_openai: FakeOpenAIImages) -> None:
    fake_openai.fail_next.append(
        (
            400,
            {
                "error": {
                    "message": "Your request was rejected by the safety system.",
                    "type": "image_generation_user_error",
                    "param": None,
                    "code": "moderation_blocked",
                }
            },
        )
    )
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(fake_openai).images.generate(model="gpt-image-2", prompt="x")
    assert caught.value.code == "moderation_blocked"


def test_fake_rejects_unknown_fields_and_bad_keys_like_the_service(fake_openai: FakeOpenAIImages) -> None:
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: bogus"):
        sdk(fake_openai).images.generate(model="gpt-image-2", prompt="x", extra_body={"bogus": 1})
    bad_key = openai.OpenAI(api_key="wrong", base_url=f"{fake_openai.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.images.generate(model="gpt-image-2", prompt="x")


def test_sdk_azure_deployment_path(fake_openai: FakeOpenAIImages) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url,
        api_version="2025-04-01-preview",
        api_key=fake_openai.azure_key,
        max_retries=0,
    )
    result = client.images.generate(model="image-deployment", prompt="a cat", size="1024x1024")
    sent = fake_openai.last
    assert sent.path == "/openai/deployments/image-deployment/images/generations"
    assert sent.query == {"api-version": "2025-04-01-preview"}
    assert sent.headers["api-key"] == fake_openai.azure_key
    assert "authorization" not in sent.headers
    assert result.data is not None and len(result.data) == 1


def test_sdk_azure_v1_path(fake_openai: FakeOpenAIImages) -> None:
    client = openai.OpenAI(
        api_key=fake_openai.azure_key, base_url=f"{fake_openai.url}/openai/v1", max_retries=0
    )
    client.images.edit(model="image-deployment", prompt="x", image=[("a.png", png_bytes(), "image/png")])
    sent = fake_openai.last
    assert sent.path == "/openai/v1/images/edits"
    assert sent.headers["authorization"] == f"Bearer {fake_openai.azure_key}"


def test_sdk_streams_partial_images_then_the_final_image(fake_openai: FakeOpenAIImages) -> None:
    stream = sdk(fake_openai).images.generate(
        model="gpt-image-1.5", prompt="a cat", size="1024x1536", stream=True, partial_images=2
    )
    events = list(stream)
    sent = fake_openai.last
    assert sent.json == {
        "model": "gpt-image-1.5",
        "prompt": "a cat",
        "partial_images": 2,
        "size": "1024x1536",
        "stream": True,
    }
    assert list(sent.json or {}) == ["model", "stream", "prompt", "partial_images", "size"]
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    partial, final = events[0], events[-1]
    assert isinstance(partial, openai.types.ImageGenPartialImageEvent)
    assert partial.partial_image_index == 0 and partial.size == "1024x1536"
    assert isinstance(final, openai.types.ImageGenCompletedEvent)
    assert final.usage.output_tokens == 100
    assert image_size(base64.b64decode(final.b64_json)) == (1024, 1536)


def test_sdk_streams_an_edit_and_raises_a_stream_error(fake_openai: FakeOpenAIImages) -> None:
    client = sdk(fake_openai)
    events = list(
        client.images.edit(
            model="gpt-image-1.5",
            prompt="add a hat",
            image=("cat.png", png_bytes((32, 24)), "image/png"),
            stream=True,
            partial_images=1,
        )
    )
    assert fake_openai.last.fields()["stream"] == "true"
    assert fake_openai.last.fields()["partial_images"] == "1"
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert image_size(base64.b64decode(events[-1].b64_json)) == (32, 24)

    fake_openai.stream_error = {"message": "Your request was rejected by the safety system.", "type": "x"}
    with pytest.raises(openai.APIError, match="rejected by the safety system"):
        list(client.images.generate(model="gpt-image-1.5", prompt="x", stream=True, partial_images=1))


def test_sdk_is_refused_partial_images_without_stream(fake_openai: FakeOpenAIImages) -> None:
    with pytest.raises(openai.BadRequestError, match="partial_images requires stream"):
        sdk(fake_openai).images.generate(model="gpt-image-1.5", prompt="a cat", partial_images=2)
