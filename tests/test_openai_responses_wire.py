"""Our Responses API client (`api: responses`) against the loopback fake: for each intent the
request it sends is the official SDK's for the same intent (path, query, auth, body key for key
and in the SDK's key order, the tool object key for key), and the reply becomes the right image,
metadata and errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import pytest

from mcp_imagegen.config import AzureSettings, OpenAISettings
from mcp_imagegen.errors import (
    ConfigError,
    ContentPolicyError,
    MalformedReplyError,
    ProviderError,
    ProviderUnreachableError,
    UnsupportedOptionError,
)
from mcp_imagegen.providers.base import Continuation, EditRequest, GenerateRequest, InputImage
from mcp_imagegen.providers.openai.endpoint import azure_endpoint, openai_capabilities, openai_endpoint
from mcp_imagegen.providers.openai.images import OpenAIImages
from mcp_imagegen.providers.openai.responses import MAINLINE_OUTPUT_TOKENS
from tests.conftest import image_size, png_bytes
from tests.fakes.openai_images import FakeOpenAIImages, Recorded
from tests.fakes.openai_responses import input_images
from tests.test_openai_streaming import RecordingEvents

pytestmark = pytest.mark.anyio
CAPS = openai_capabilities(("gpt-image-1.5",), "gpt-image-1.5", ("png", "jpeg", "webp"))
HEADERS = ("authorization", "api-key", "accept", "x-ms-oai-image-generation-deployment")
CHOICE = {"type": "image_generation"}
CLASSIC = "2025-04-01-preview"


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def ours(fake: FakeOpenAIImages, http: httpx2.AsyncClient, **settings: Any) -> OpenAIImages:
    settings.setdefault("image_api", "responses")
    config = OpenAISettings(api_key=fake.api_key, base_url=f"{fake.url}/v1", **settings)
    return OpenAIImages(openai_endpoint(config), http, CAPS, timeout_s=30)


def sdk(fake: FakeOpenAIImages) -> openai.OpenAI:
    return openai.OpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1", max_retries=0)


def assert_same_request(mine: Recorded, theirs: Recorded, *, auth: bool = True) -> None:
    assert (mine.method, mine.path, mine.query) == (theirs.method, theirs.path, theirs.query)
    for header in HEADERS if auth else HEADERS[2:]:
        assert mine.headers.get(header) == theirs.headers.get(header), header
    assert mine.json is not None and theirs.json is not None
    assert list(mine.json) == list(theirs.json)  # the SDK's key order
    assert mine.json["tools"][0] == theirs.json["tools"][0]  # the tool object, key for key
    assert mine.json == theirs.json


def png_input(data: bytes, name: str = "image.png") -> InputImage:
    width, height = image_size(data)
    return InputImage(data, "image/png", width, height, name)


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def azure(fake: FakeOpenAIImages, http: httpx2.AsyncClient, **settings: Any) -> OpenAIImages:
    """Our Azure provider on the Responses API, with a chat deployment for the mainline model."""
    config = AzureSettings(
        api_key=fake.azure_key,
        endpoint=fake.url,
        image_api="responses",
        responses_deployment="chat-deploy",
        **settings,
    )
    return OpenAIImages(azure_endpoint(config), http, CAPS, 30)


def azure_sdk(fake: FakeOpenAIImages) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=fake.url, api_key=fake.azure_key, api_version=CLASSIC, max_retries=0
    )


def text_input(prompt: str) -> Any:
    """The SDK's `input` for a prompt alone: one user message with one text part."""
    return [{"role": "user", "content": [{"type": "input_text", "text": prompt}]}]


async def test_generate_with_every_option_is_the_sdks_request(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    result = await ours(fake_openai, http).generate(
        GenerateRequest(
            prompt="a lighthouse at dusk",
            model="gpt-image-1.5",
            size="1536x1024",
            quality="high",
            background="opaque",
            output_format="jpeg",
            output_compression=70,
            moderation="low",
        )
    )
    mine = fake_openai.last
    sdk(fake_openai).responses.create(
        model="gpt-6.1-terra",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=text_input("a lighthouse at dusk"),
        tool_choice={"type": "image_generation"},
        tools=[
            {
                "type": "image_generation",
                "model": "gpt-image-1.5",
                "size": "1536x1024",
                "quality": "high",
                "background": "opaque",
                "output_format": "jpeg",
                "output_compression": 70,
                "moderation": "low",
                "action": "generate",
            }
        ],
    )
    assert_same_request(mine, fake_openai.last)
    assert mine.path == "/v1/responses"
    (image,) = result.images
    assert image.data[:3] == b"\xff\xd8\xff" and image_size(image.data) == (1536, 1024)
    assert image.revised_prompt == "A detailed rendering of: a lighthouse at dusk"
    meta = result.metadata
    assert meta["api"] == "responses" and str(meta["response_id"]).startswith("resp_")
    assert str(meta["image_generation_call_id"]).startswith("ig_")
    assert meta["mainline_model"] == "gpt-6.1-terra"
    assert (meta["size"], meta["quality"], meta["output_format"]) == ("1536x1024", "high", "jpeg")
    # The image model's tokens price the call; the mainline model's are kept beside them.
    assert (
        meta["usage"] == fake_openai.responses.made[str(meta["response_id"])].body["tool_usage"]["image_gen"]
    )
    assert isinstance(meta["response_usage"], dict) and meta["response_usage"]["total_tokens"] == 160
    assert isinstance(meta["tool_usage"], dict) and "image_gen" in meta["tool_usage"]
    assert meta["request_id"].startswith("req_resp_")  # type: ignore[union-attr]


async def test_edit_with_mask_and_references_is_the_sdks_request(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    first, second = png_bytes((96, 64), (200, 30, 30)), png_bytes((32, 32), (30, 30, 200))
    mask = png_bytes((96, 64), (0, 0, 0, 0), mode="RGBA")
    result = await ours(fake_openai, http).edit(
        EditRequest(
            prompt="put [2] on the table",
            model="gpt-image-1.5",
            input_fidelity="high",
            moderation="auto",
            images=(png_input(first), png_input(second)),
            mask=png_input(mask, "mask.png"),
        )
    )
    mine = fake_openai.last
    sdk(fake_openai).responses.create(
        model="gpt-6.1-terra",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "put [2] on the table"},
                    {"type": "input_image", "image_url": data_url(first), "detail": "auto"},
                    {"type": "input_image", "image_url": data_url(second), "detail": "auto"},
                ],
            }
        ],
        tool_choice={"type": "image_generation"},
        tools=[
            {
                "type": "image_generation",
                "model": "gpt-image-1.5",
                "input_fidelity": "high",
                "moderation": "auto",
                "input_image_mask": {"image_url": data_url(mask)},
                "action": "edit",
            }
        ],
    )
    assert_same_request(mine, fake_openai.last)
    assert input_images(mine.json or {}) == [first, second]
    assert image_size(result.images[0].data) == (96, 64)  # `auto` size follows the input


async def test_refinement_continues_the_response_and_sends_no_image(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    provider = ours(fake_openai, http)
    made = await provider.generate(GenerateRequest(prompt="a fox in snow", model="gpt-image-1.5"))
    response_id = str(made.metadata["response_id"])
    image = made.images[0].data
    edited = await provider.edit(
        EditRequest(
            prompt="now make the fox look at the camera",
            model="gpt-image-1.5",
            images=(png_input(image),),
            continues=Continuation("openai", response_id),
        )
    )
    mine = fake_openai.last
    sdk(fake_openai).responses.create(
        model="gpt-6.1-terra",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=text_input("now make the fox look at the camera"),
        previous_response_id=response_id,
        tool_choice={"type": "image_generation"},
        tools=[{"type": "image_generation", "model": "gpt-image-1.5", "action": "edit"}],
    )
    assert_same_request(mine, fake_openai.last)
    assert input_images(mine.json or {}) == []
    assert edited.metadata["previous_response_id"] == response_id
    assert edited.metadata["response_id"] != response_id


async def test_a_response_kept_with_store_false_is_not_continued(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    provider = ours(fake_openai, http, responses_store=False)
    made = await provider.generate(GenerateRequest(prompt="a fox", model="gpt-image-1.5"))
    assert fake_openai.last.json is not None and fake_openai.last.json["store"] is False
    assert made.metadata["store"] is False
    image = made.images[0].data
    edited = await provider.edit(
        EditRequest(
            prompt="closer",
            model="gpt-image-1.5",
            images=(png_input(image),),
            continues=Continuation("openai", str(made.metadata["response_id"]), stored=False),
        )
    )
    sent = fake_openai.last.json or {}
    assert "previous_response_id" not in sent and input_images(sent) == [image]
    assert "store: false" in str(edited.metadata["conversation"])
    # Asked not to continue: the image is sent even though the response could be continued.
    kept = await ours(fake_openai, http).generate(GenerateRequest(prompt="a fox", model="gpt-image-1.5"))
    await ours(fake_openai, http).edit(
        EditRequest(
            prompt="closer",
            model="gpt-image-1.5",
            images=(png_input(kept.images[0].data),),
            continue_conversation=False,
            continues=Continuation("openai", str(kept.metadata["response_id"])),
        )
    )
    assert "previous_response_id" not in (fake_openai.last.json or {})
    assert input_images(fake_openai.last.json or {}) == [kept.images[0].data]


async def test_streamed_partials_are_the_sdks_request_and_reach_progress(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    events = RecordingEvents()
    result = await ours(fake_openai, http).generate(
        GenerateRequest(prompt="a fox", model="gpt-image-1.5", partial_images=2, size="1024x1024"), events
    )
    mine = fake_openai.last
    stream = sdk(fake_openai).responses.create(
        model="gpt-6.1-terra",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=text_input("a fox"),
        stream=True,
        tool_choice={"type": "image_generation"},
        tools=[
            {
                "type": "image_generation",
                "model": "gpt-image-1.5",
                "size": "1024x1024",
                "partial_images": 2,
                "action": "generate",
            }
        ],
    )
    list(stream)
    assert_same_request(mine, fake_openai.last)
    assert [index for index, _ in events.partials] == [0, 1]
    assert all(image_size(data) == (1024, 1024) for _, data in events.partials)
    assert "openai is drawing the image" in events.steps
    assert result.metadata["streamed"] is True and result.metadata["partial_images_received"] == 2
    assert str(result.metadata["response_id"]).startswith("resp_")
    assert image_size(result.images[0].data) == (1024, 1024)


async def test_a_stream_cut_short_stores_nothing(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.stream_cut_after = 6  # after the first partial image
    events = RecordingEvents()
    with pytest.raises(ProviderUnreachableError, match="stream ended before the response completed"):
        await ours(fake_openai, http).generate(
            GenerateRequest(prompt="a fox", model="gpt-image-1.5", partial_images=2), events
        )
    assert len(events.partials) == 1


async def test_azure_classic_is_the_sdks_request_with_the_deployment_header(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    provider = azure(
        fake_openai,
        http,
        api_version=CLASSIC,
        deployments={"gpt-image-1.5": "img-15", "gpt-image-2": "img-2"},
    )
    await provider.generate(GenerateRequest(prompt="a fox", model="gpt-image-2", quality="low"))
    mine = fake_openai.last
    azure_sdk(fake_openai).responses.create(
        model="chat-deploy",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=text_input("a fox"),
        tool_choice={"type": "image_generation"},
        tools=[{"type": "image_generation", "quality": "low", "action": "generate"}],
        extra_headers={"x-ms-oai-image-generation-deployment": "img-2"},
    )
    assert_same_request(mine, fake_openai.last)
    assert (mine.path, mine.query) == ("/openai/responses", {"api-version": CLASSIC})
    assert mine.headers["x-ms-oai-image-generation-deployment"] == "img-2"
    await provider.generate(GenerateRequest(prompt="a fox", model="gpt-image-1.5"))
    assert fake_openai.last.headers["x-ms-oai-image-generation-deployment"] == "img-15"


async def test_azure_v1_sends_the_single_deployment_whatever_the_model(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    await azure(fake_openai, http, deployment="img-deploy").generate(
        GenerateRequest(prompt="a fox", model="gpt-image-1.5")
    )
    mine = fake_openai.last
    openai.OpenAI(
        api_key=fake_openai.azure_key, base_url=f"{fake_openai.url}/openai/v1", max_retries=0
    ).responses.create(
        model="chat-deploy",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=text_input("a fox"),
        tool_choice={"type": "image_generation"},
        tools=[{"type": "image_generation", "action": "generate"}],
        extra_headers={"x-ms-oai-image-generation-deployment": "img-deploy"},
    )
    # The SDK's plain client sends the key as a bearer token; we send Azure's api-key header.
    assert_same_request(mine, fake_openai.last, auth=False)
    assert mine.headers["api-key"] == fake_openai.azure_key


async def test_azure_without_a_mainline_deployment_says_which_setting(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    settings = AzureSettings(api_key="k", endpoint=fake_openai.url, deployment="img", image_api="responses")
    with pytest.raises(ConfigError, match="AZURE_OPENAI_RESPONSES_DEPLOYMENT"):
        await OpenAIImages(azure_endpoint(settings), http, CAPS, 30).generate(
            GenerateRequest(prompt="a fox", model="gpt-image-1.5")
        )
    assert fake_openai.requests == []


async def test_moderation_block_is_a_content_policy_error_with_categories(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.responses.moderate_next.append(["violence", "self-harm"])
    with pytest.raises(ContentPolicyError) as caught:
        await ours(fake_openai, http).generate(GenerateRequest(prompt="x", model="gpt-image-1.5"))
    text = str(caught.value)
    assert "refused the request under its content policy" in text
    assert "flagged: violence, self-harm; at the output stage" in text


async def test_options_the_chosen_api_cannot_take_are_refused_before_sending(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    image = png_input(png_bytes())
    with pytest.raises(UnsupportedOptionError, match="one image per call"):
        await ours(fake_openai, http).generate(GenerateRequest(prompt="x", model="gpt-image-1.5", n=2))
    images_api = ours(fake_openai, http, image_api="images")
    with pytest.raises(UnsupportedOptionError, match="Images API's edits take no moderation"):
        await images_api.edit(
            EditRequest(prompt="x", model="gpt-image-1.5", moderation="low", images=(image,))
        )
    with pytest.raises(UnsupportedOptionError, match="continue_conversation applies with api 'responses'"):
        await images_api.edit(
            EditRequest(prompt="x", model="gpt-image-1.5", continue_conversation=True, images=(image,))
        )
    assert fake_openai.requests == []
    # The call's `api` wins over the provider's default, both ways.
    await images_api.generate(GenerateRequest(prompt="x", model="gpt-image-1.5", api="responses"))
    await ours(fake_openai, http).generate(GenerateRequest(prompt="x", model="gpt-image-1.5", api="images"))
    assert [sent.path for sent in fake_openai.requests] == ["/v1/responses", "/v1/images/generations"]


async def test_an_error_event_is_the_providers_error(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.stream_error = {"code": "server_error", "message": "The image tool failed."}
    events = RecordingEvents()
    with pytest.raises(ProviderError, match="The image tool failed") as caught:
        await ours(fake_openai, http).generate(
            GenerateRequest(prompt="a fox", model="gpt-image-1.5", partial_images=1), events
        )
    assert caught.value.code == "server_error" and len(events.partials) == 1


async def test_a_failed_or_imageless_response_stores_nothing(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    failed = {"id": "resp_x", "object": "response", "status": "failed", "output": []}
    fake_openai.fail_next = [
        (200, {**failed, "error": {"code": "server_error", "message": "The model broke down."}}),
        (200, {**failed, "status": "completed", "output": [{"type": "message", "content": []}]}),
    ]
    provider = ours(fake_openai, http)
    with pytest.raises(ProviderError, match="The model broke down"):
        await provider.generate(GenerateRequest(prompt="x", model="gpt-image-1.5"))
    with pytest.raises(MalformedReplyError, match="answered without an image"):
        await provider.generate(GenerateRequest(prompt="x", model="gpt-image-1.5"))


async def test_a_response_the_provider_no_longer_has_falls_back_to_sending_the_image(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    provider = ours(fake_openai, http)
    made = await provider.generate(GenerateRequest(prompt="a fox", model="gpt-image-1.5"))
    response_id = str(made.metadata["response_id"])
    del fake_openai.responses.made[response_id]  # expired at the provider (30 days) or deleted
    image = made.images[0].data
    events = RecordingEvents()
    edited = await provider.edit(
        EditRequest(
            prompt="closer",
            model="gpt-image-1.5",
            images=(png_input(image),),
            continues=Continuation("openai", response_id),
        ),
        events,
    )
    refused, resent = fake_openai.requests[-2:]
    assert (refused.json or {})["previous_response_id"] == response_id
    assert "previous_response_id" not in (resent.json or {}) and input_images(resent.json or {}) == [image]
    assert (
        edited.metadata["conversation"]
        == f"new: openai no longer has response {response_id}, so the image was sent again"
    )
    assert "openai no longer has the image's response; sending the image instead" in events.steps


async def test_azure_edit_with_every_option_is_the_sdks_request(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    image = png_bytes((96, 64))
    mask = png_bytes((96, 64), (0, 0, 0, 0), mode="RGBA")
    await azure(fake_openai, http, api_version=CLASSIC, deployment="img-deploy").edit(
        EditRequest(
            prompt="a red door",
            model="gpt-image-1.5",
            size="1536x1024",
            quality="medium",
            background="opaque",
            output_format="jpeg",
            output_compression=60,
            moderation="low",
            input_fidelity="low",
            partial_images=1,
            images=(png_input(image),),
            mask=png_input(mask, "mask.png"),
        )
    )
    mine = fake_openai.last
    stream = azure_sdk(fake_openai).responses.create(
        model="chat-deploy",
        max_output_tokens=MAINLINE_OUTPUT_TOKENS,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "a red door"},
                    {"type": "input_image", "image_url": data_url(image), "detail": "auto"},
                ],
            }
        ],
        stream=True,
        tool_choice={"type": "image_generation"},
        tools=[
            {
                "type": "image_generation",
                "size": "1536x1024",
                "quality": "medium",
                "background": "opaque",
                "output_format": "jpeg",
                "output_compression": 60,
                "partial_images": 1,
                "input_fidelity": "low",
                "moderation": "low",
                "input_image_mask": {"image_url": data_url(mask)},
                "action": "edit",
            }
        ],
        extra_headers={"x-ms-oai-image-generation-deployment": "img-deploy"},
    )
    list(stream)
    assert_same_request(mine, fake_openai.last)
    assert mine.headers["x-ms-oai-image-generation-deployment"] == "img-deploy"
