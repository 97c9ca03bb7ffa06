"""Our Google client against the loopback fake: the requests it sends are the google-genai SDK's.

Each test makes the same logical call with the SDK and with our client and compares what
reached the fake: path, auth header, and the JSON body. The SDK writes `inlineData.mime_type`
in snake_case and we write camelCase (both are accepted by Google), so bodies are compared
after normalising that one key.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from google.genai import types
from PIL import Image

from mcp_imagegen.config import GoogleSettings, VertexSettings
from mcp_imagegen.errors import ContentPolicyError, InputError, ProviderError
from mcp_imagegen.providers._http import RetryPolicy
from mcp_imagegen.providers.base import (
    DescribeRequest,
    EditRequest,
    GenerateRequest,
    InputImage,
    RecontextRequest,
    SegmentRequest,
    Tokens,
    UpscaleRequest,
)
from mcp_imagegen.providers.google.endpoint import gemini_endpoint, vertex_endpoint
from mcp_imagegen.providers.google.gemini import GoogleImages, gemini_capabilities
from tests.conftest import image_size, png_bytes
from tests.fakes.google_genai import FakeGoogle, GoogleRequest, decode_b64
from tests.test_fake_google_sdk import gemini_sdk, vertex_sdk

pytestmark = pytest.mark.anyio
NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def gemini(fake: FakeGoogle, http: httpx2.AsyncClient) -> GoogleImages:
    settings = GoogleSettings(api_key=fake.api_key, base_url=fake.url)
    caps = gemini_capabilities("gemini", "gemini-3.1-flash-image")
    return GoogleImages(gemini_endpoint(settings), http, caps, 30, NO_RETRY)


def vertex(fake: FakeGoogle, http: httpx2.AsyncClient) -> GoogleImages:
    settings = VertexSettings(
        project=fake.project, location="us-central1", access_token=fake.access_token, base_url=fake.url
    )
    caps = gemini_capabilities("vertex", "gemini-3.1-flash-image")
    return GoogleImages(vertex_endpoint(settings), http, caps, 30, NO_RETRY)


SNAKE_KEYS = {
    "mime_type": "mimeType",
    "style_description": "styleDescription",
    "subject_type": "subjectType",
    "subject_description": "subjectDescription",
}


def normalised(value: Any) -> Any:
    """The body with the SDK's spelling habits undone: snake_case inside pass-through objects
    (providers.md 3.11) and URL-safe base64."""
    if isinstance(value, dict):
        return {
            SNAKE_KEYS.get(key, key): (
                decode_b64(item) if key in ("data", "bytesBase64Encoded") else normalised(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def assert_same_wire(mine: GoogleRequest, sdk: GoogleRequest) -> None:
    assert (mine.path, mine.query) == (sdk.path, sdk.query)
    for header in ("x-goog-api-key", "authorization", "content-type"):
        assert mine.headers.get(header) == sdk.headers.get(header), header
    assert normalised(mine.json) == normalised(sdk.json)


def input_image(data: bytes) -> InputImage:
    with Image.open(io.BytesIO(data)) as opened:
        return InputImage(data, "image/png", opened.width, opened.height, "image.png")


async def test_generate_on_the_gemini_api_matches_the_sdk(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    client = gemini_sdk(fake_google)
    client.models.generate_content(
        model="gemini-3.1-flash-image",
        contents="a lighthouse",
        config=types.GenerateContentConfig(
            seed=7,
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="16:9", image_size="2K"),
        ),
    )
    sdk_sent = fake_google.last
    result = await gemini(fake_google, http).generate(
        GenerateRequest(
            prompt="a lighthouse",
            model="gemini-3.1-flash-image",
            aspect_ratio="16:9",
            image_size="2K",
            seed=7,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert len(result.images) == 1 and image_size(result.images[0].data) == (672, 384)
    assert result.text == "Here is the image you asked for."
    assert result.metadata["usage"] == {
        "promptTokenCount": 12,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1302,
    }
    assert result.tokens == Tokens(12, 1290)  # what a token price settles on
    assert result.metadata["finish_reasons"] == ["STOP"]


async def test_edit_on_vertex_matches_the_sdk(fake_google: FakeGoogle, http: httpx2.AsyncClient) -> None:
    first, second = png_bytes((40, 30)), png_bytes((40, 30), (0, 80, 0))
    client = vertex_sdk(fake_google)
    client.models.generate_content(
        model="gemini-3-pro-image",
        contents=types.Content(
            role="user",
            parts=[
                types.Part.from_bytes(data=first, mime_type="image/png"),
                types.Part.from_bytes(data=second, mime_type="image/png"),
                types.Part.from_text(text="put the two together"),
            ],
        ),
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(
                person_generation="ALLOW_NONE", output_mime_type="image/jpeg", output_compression_quality=70
            ),
        ),
    )
    sdk_sent = fake_google.last
    result = await vertex(fake_google, http).edit(
        EditRequest(
            prompt="put the two together",
            model="gemini-3-pro-image",
            images=(input_image(first), input_image(second)),
            person_generation="dont_allow",
            output_format="jpeg",
            output_compression=70,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert sdk_sent.headers["authorization"] == f"Bearer {fake_google.access_token}"
    assert image_size(result.images[0].data) == (40, 30)


async def test_n_images_are_n_calls_and_usage_adds_up(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    result = await gemini(fake_google, http).generate(
        GenerateRequest(prompt="x", model="gemini-3.1-flash-image", n=3)
    )
    assert len(fake_google.requests) == 3 and len(result.images) == 3
    assert len({image.data for image in result.images}) == 3
    assert result.metadata["usage"] == {
        "promptTokenCount": 36,
        "candidatesTokenCount": 3870,
        "totalTokenCount": 3906,
    }


async def test_blocks_and_text_only_answers_are_clear_errors(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    provider = gemini(fake_google, http)
    request = GenerateRequest(prompt="x", model="gemini-3.1-flash-image")
    fake_google.block_prompt = "PROHIBITED_CONTENT"
    with pytest.raises(
        ContentPolicyError, match=r"google refused .*the prompt was blocked \(PROHIBITED_CONTENT\)"
    ):
        await provider.generate(request)
    fake_google.block_prompt = None
    fake_google.finish_reason = "IMAGE_SAFETY"
    with pytest.raises(ContentPolicyError, match=r"the image was blocked \(finish reason IMAGE_SAFETY\)"):
        await provider.generate(request)
    fake_google.finish_reason = None
    fake_google.text_only = "Which kind of cat would you like?"
    with pytest.raises(
        ProviderError, match=r'answered without an image .*It said: "Which kind of cat would you like\?"'
    ):
        await provider.generate(request)


async def test_google_errors_name_the_setting_to_check(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    settings = GoogleSettings(api_key="AIza-wrong-key-000000", base_url=fake_google.url)
    caps = gemini_capabilities("gemini", "gemini-3.1-flash-image")
    wrong = GoogleImages(gemini_endpoint(settings), http, caps, 30, NO_RETRY)
    with pytest.raises(ProviderError, match=r"HTTP 400, INVALID_ARGUMENT\): API key not valid") as caught:
        await wrong.generate(GenerateRequest(prompt="x", model="gemini-3.1-flash-image"))
    assert "AIza-wrong-key-000000" not in str(caught.value)
    fake_google.fail_next.append(
        (404, {"error": {"code": 404, "message": "models/old is not found.", "status": "NOT_FOUND"}})
    )
    with pytest.raises(ProviderError, match="retired models answer 404"):
        await gemini(fake_google, http).generate(GenerateRequest(prompt="x", model="old"))


async def test_each_gemini_model_takes_its_own_ratios_and_sizes(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    """Nano Banana 2.1 takes the 14 ratios (1:4 among them) as the SDK sends them; the models
    whose data lists fewer ratios or sizes are refused before any request."""
    client = gemini_sdk(fake_google)  # kept: the SDK closes its connection when the client goes
    client.models.generate_content(
        model="gemini-nano-banana-2.1",
        contents="a banner",
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="1:4", image_size="4K"),
        ),
    )
    sdk_sent = fake_google.last
    provider = gemini(fake_google, http)
    await provider.generate(
        GenerateRequest(
            prompt="a banner", model="gemini-nano-banana-2.1", aspect_ratio="1:4", image_size="4K"
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    sent = len(fake_google.requests)
    with pytest.raises(
        InputError, match=r"gemini-2\.5-flash-image supports aspect_ratio 1:1, .*, 21:9, not 1:4"
    ):
        await provider.generate(
            GenerateRequest(prompt="x", model="gemini-2.5-flash-image", aspect_ratio="1:4")
        )
    with pytest.raises(InputError, match=r"gemini-3\.1-flash-lite-image makes image_size 1K, not 2K"):
        await provider.generate(
            GenerateRequest(prompt="x", model="gemini-3.1-flash-lite-image", image_size="2K")
        )
    assert len(fake_google.requests) == sent


async def test_mask_and_unknown_aspect_ratio_are_refused_before_any_request(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    data = png_bytes((40, 30))
    with pytest.raises(InputError, match="edits by instruction and takes no mask"):
        await vertex(fake_google, http).edit(
            EditRequest(
                prompt="x", model="gemini-3-pro-image", images=(input_image(data),), mask=input_image(data)
            )
        )
    with pytest.raises(InputError, match="supports aspect_ratio 1:1, 2:3"):
        await gemini(fake_google, http).generate(
            GenerateRequest(prompt="x", model="gemini-3.1-flash-image", aspect_ratio="7:3")
        )
    assert fake_google.requests == []


@pytest.mark.filterwarnings("ignore:The .* method is deprecated")
async def test_imagen_generate_on_vertex_matches_the_sdk(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    client = vertex_sdk(fake_google)
    client.models.generate_images(
        model="imagen-4.0-generate-001",
        prompt="a cat",
        config=types.GenerateImagesConfig(
            number_of_images=2,
            aspect_ratio="16:9",
            negative_prompt="dogs",
            seed=3,
            add_watermark=False,
            output_mime_type="image/jpeg",
            output_compression_quality=85,
            person_generation="DONT_ALLOW",
            safety_filter_level="BLOCK_ONLY_HIGH",
            language="en",
            enhance_prompt=True,
            include_rai_reason=True,
            include_safety_attributes=True,
            image_size="2K",
            guidance_scale=7.5,
        ),
    )
    sdk_sent = fake_google.last
    result = await vertex(fake_google, http).generate(
        GenerateRequest(
            prompt="a cat",
            model="imagen-4.0-generate-001",
            n=2,
            aspect_ratio="16:9",
            negative_prompt="dogs",
            seed=3,
            add_watermark=False,
            output_format="jpeg",
            output_compression=85,
            person_generation="dont_allow",
            safety_filter="block_only_high",
            language="en",
            enhance_prompt=True,
            image_size="2K",
            guidance_scale=7.5,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert list(fake_google.last.json["parameters"]) == list(sdk_sent.json["parameters"])
    assert len(result.images) == 2
    assert result.images[0].revised_prompt == "a cat, golden hour, detailed"
    assert result.metadata["safety_attributes"] == [{"categories": ["Violence"], "scores": [0.1]}] * 2
    assert result.metadata["prompt_safety_attributes"] == {"categories": [], "scores": []}


async def test_imagen_filtered_images(fake_google: FakeGoogle, http: httpx2.AsyncClient) -> None:
    provider = vertex(fake_google, http)
    fake_google.filtered = 1
    some = await provider.generate(GenerateRequest(prompt="x", model="imagen-4.0-generate-001", n=2))
    assert len(some.images) == 1
    assert some.metadata["filtered"] == {"count": 1, "reasons": ["56562880: the image may depict violence."]}
    fake_google.filtered = 2
    with pytest.raises(ContentPolicyError, match=r"vertex refused .*56562880: the image may depict violence"):
        await provider.generate(GenerateRequest(prompt="x", model="imagen-4.0-generate-001", n=2))


async def test_imagen_rules_are_checked_before_any_request(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    provider = vertex(fake_google, http)
    cases = [
        (
            GenerateRequest(prompt="x", model="imagen-4.0-generate-001", seed=1),
            "seed only without the watermark",
        ),
        (
            GenerateRequest(prompt="x", model="imagen-4.0-generate-001", aspect_ratio="21:9"),
            "aspect_ratio 1:1, 3:4",
        ),
        (GenerateRequest(prompt="x", model="imagen-4.0-generate-001", image_size="4K"), "image_size 1K, 2K"),
        (GenerateRequest(prompt="x", model="imagen-4.0-generate-001", n=5), "at most 4 images"),
        (GenerateRequest(prompt="x", model="imagen-4.0-generate-001", language="fr"), "language auto, en"),  # type: ignore[arg-type]
        (
            GenerateRequest(
                prompt="x", model="imagen-4.0-generate-001", output_format="png", output_compression=5
            ),
            "compresses jpeg output only",
        ),
        (
            GenerateRequest(prompt="x", model="gemini-3.1-flash-image", negative_prompt="dogs"),
            "gemini-3.1-flash-image does not take negative_prompt; those are Imagen options",
        ),
    ]
    for request, expected in cases:
        with pytest.raises(InputError, match=expected):
            await provider.generate(request)
    with pytest.raises(InputError, match="the Gemini API no longer serves"):
        await gemini(fake_google, http).generate(GenerateRequest(prompt="x", model="imagen-4.0-generate-001"))
    assert fake_google.requests == []


async def test_upscale_segment_and_recontext_match_the_sdk(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    data = png_bytes((40, 30))
    image = input_image(data)
    sdk_image = types.Image(image_bytes=data, mime_type="image/png")
    client = vertex_sdk(fake_google)
    provider = vertex(fake_google, http)

    client.models.upscale_image(
        model="imagen-4.0-upscale-preview",
        image=sdk_image,
        upscale_factor="x2",
        config=types.UpscaleImageConfig(
            output_mime_type="image/jpeg", output_compression_quality=90, include_rai_reason=True
        ),
    )
    sdk_sent = fake_google.last
    upscaled = await provider.upscale(
        UpscaleRequest(
            image=image,
            model="imagen-4.0-upscale-preview",
            factor="x2",
            output_format="jpeg",
            output_compression=90,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert list(fake_google.last.json["parameters"]) == list(sdk_sent.json["parameters"])
    assert image_size(upscaled.images[0].data) == (80, 60)

    client.models.segment_image(
        model="image-segmentation-001",
        source=types.SegmentImageSource(image=sdk_image, prompt="the red box"),
        config=types.SegmentImageConfig(
            mode="PROMPT",
            max_predictions=3,
            confidence_threshold=0.2,
            mask_dilation=0.01,
            binary_color_threshold=96,
        ),
    )
    sdk_sent = fake_google.last
    masks = await provider.segment(
        SegmentRequest(
            image=image,
            model="image-segmentation-001",
            mode="prompt",
            prompt="the red box",
            max_predictions=3,
            confidence_threshold=0.2,
            mask_dilation=0.01,
            binary_color_threshold=96,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert [(mask.label, mask.score) for mask in masks.images] == [("the red box", 0.98)]

    client.models.recontext_image(
        model="imagen-product-recontext-preview-06-30",
        source=types.RecontextImageSource(
            prompt="on a beach", product_images=[types.ProductImage(product_image=sdk_image)]
        ),
        config=types.RecontextImageConfig(
            number_of_images=2,
            seed=1,
            person_generation="ALLOW_ADULT",
            add_watermark=False,
            output_mime_type="image/png",
            enhance_prompt=False,
        ),
    )
    sdk_sent = fake_google.last
    placed = await provider.recontext(
        RecontextRequest(
            prompt="on a beach",
            model="imagen-product-recontext-preview-06-30",
            n=2,
            seed=1,
            person_generation="allow_adult",
            add_watermark=False,
            output_format="png",
            enhance_prompt=False,
            images=(image,),
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert list(fake_google.last.json["parameters"]) == list(sdk_sent.json["parameters"])
    assert len(placed.images) == 2


async def test_segment_rules_and_empty_answers(fake_google: FakeGoogle, http: httpx2.AsyncClient) -> None:
    image = input_image(png_bytes((40, 30)))
    provider = vertex(fake_google, http)
    for request, expected in [
        (SegmentRequest(image=image, model="image-segmentation-001", mode="prompt"), "needs what to find"),
        (
            SegmentRequest(image=image, model="image-segmentation-001", mode="semantic"),
            "needs the class names",
        ),
        (SegmentRequest(image=image, model="image-segmentation-001", prompt="cat"), "takes no prompt"),
        (SegmentRequest(image=image, model="image-segmentation-001", mode="interactive"), "needs points"),
    ]:
        with pytest.raises(InputError, match=expected):
            await provider.segment(request)
    assert fake_google.requests == []
    with pytest.raises(ProviderError, match="found nothing to mask in foreground mode"):
        await provider.segment(
            SegmentRequest(image=image, model="image-segmentation-001", confidence_threshold=0.99)
        )


def mask_pixels(reference: dict[str, Any]) -> list[int]:
    with Image.open(io.BytesIO(decode_b64(reference["referenceImage"]["bytesBase64Encoded"]))) as opened:
        return list(opened.convert("L").tobytes())


@pytest.mark.filterwarnings("ignore:The .* method is deprecated")
async def test_imagen_masked_edit_matches_the_sdk(fake_google: FakeGoogle, http: httpx2.AsyncClient) -> None:
    base = png_bytes((40, 30))
    white_on_black = Image.new("L", (40, 30), 0)
    white_on_black.paste(255, (10, 5, 30, 25))
    buffer = io.BytesIO()
    white_on_black.save(buffer, format="PNG")
    neutral = Image.new("RGBA", (40, 30), (0, 0, 0, 255))
    neutral.paste((0, 0, 0, 0), (10, 5, 30, 25))
    neutral_buffer = io.BytesIO()
    neutral.save(neutral_buffer, format="PNG")
    client = vertex_sdk(fake_google)
    client.models.edit_image(
        model="imagen-3.0-capability-001",
        prompt="add a hat",
        reference_images=[
            types.RawReferenceImage(
                reference_id=1, reference_image=types.Image(image_bytes=base, mime_type="image/png")
            ),
            types.MaskReferenceImage(
                reference_id=2,
                reference_image=types.Image(image_bytes=buffer.getvalue(), mime_type="image/png"),
                config=types.MaskReferenceConfig(mask_mode="MASK_MODE_USER_PROVIDED", mask_dilation=0.03),
            ),
        ],
        config=types.EditImageConfig(
            edit_mode="EDIT_MODE_INPAINT_REMOVAL",
            number_of_images=2,
            guidance_scale=60,
            negative_prompt="blur",
            include_rai_reason=True,
            include_safety_attributes=True,
            output_mime_type="image/png",
        ),
    )
    sdk_sent = fake_google.last
    result = await vertex(fake_google, http).edit(
        EditRequest(
            prompt="add a hat",
            model="imagen-3.0-capability-001",
            n=2,
            images=(input_image(base),),
            mask=InputImage(neutral_buffer.getvalue(), "image/png", 40, 30, "mask.png"),
            mode="remove",
            mask_dilation=0.03,
            guidance_scale=60,
            negative_prompt="blur",
            output_format="png",
        )
    )
    mine, sdk = fake_google.last.json, sdk_sent.json
    assert mask_pixels(mine["instances"][0]["referenceImages"][1]) == mask_pixels(
        sdk["instances"][0]["referenceImages"][1]
    )
    for body in (mine, sdk):
        del body["instances"][0]["referenceImages"][1]["referenceImage"]
    assert normalised(mine) == normalised(sdk)
    assert list(mine["parameters"]) == list(sdk["parameters"])
    assert len(result.images) == 2


@pytest.mark.filterwarnings("ignore:The .* method is deprecated")
async def test_imagen_auto_mask_and_customisation_match_the_sdk(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    data = png_bytes((40, 30))
    sdk_image = types.Image(image_bytes=data, mime_type="image/png")
    client = vertex_sdk(fake_google)
    provider = vertex(fake_google, http)
    client.models.edit_image(
        model="imagen-3.0-capability-001",
        prompt="a beach",
        reference_images=[
            types.RawReferenceImage(reference_id=1, reference_image=sdk_image),
            types.MaskReferenceImage(
                reference_id=2, config=types.MaskReferenceConfig(mask_mode="MASK_MODE_BACKGROUND")
            ),
        ],
        config=types.EditImageConfig(
            edit_mode="EDIT_MODE_BGSWAP",
            number_of_images=1,
            include_rai_reason=True,
            include_safety_attributes=True,
        ),
    )
    sdk_sent = fake_google.last
    await provider.edit(
        EditRequest(
            prompt="a beach",
            model="imagen-3.0-capability-001",
            images=(input_image(data),),
            mode="background_swap",
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)

    client.models.edit_image(
        model="imagen-3.0-capability-001",
        prompt="[1] as a knight",
        reference_images=[
            types.SubjectReferenceImage(
                reference_id=1,
                reference_image=sdk_image,
                config=types.SubjectReferenceConfig(
                    subject_type="SUBJECT_TYPE_ANIMAL", subject_description="a dog"
                ),
            )
        ],
        config=types.EditImageConfig(
            number_of_images=1, include_rai_reason=True, include_safety_attributes=True
        ),
    )
    sdk_sent = fake_google.last
    await provider.edit(
        EditRequest(
            prompt="[1] as a knight",
            model="imagen-3.0-capability-001",
            images=(input_image(data),),
            reference_type="subject",
            subject_type="animal",
            reference_description="a dog",
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)


async def test_imagen_edit_rules(fake_google: FakeGoogle, http: httpx2.AsyncClient) -> None:
    image = input_image(png_bytes((40, 30)))
    provider = vertex(fake_google, http)
    model = "imagen-3.0-capability-001"
    for request, expected in [
        (
            EditRequest(prompt="x", model=model, images=(image,), mode="insert"),
            "edit mode insert needs a mask",
        ),
        (
            EditRequest(prompt="x", model=model, images=(image,), mask_mode="semantic"),
            "needs 1 to 5 mask_classes",
        ),
        (EditRequest(prompt="x", model=model, images=(image, image)), "takes one image"),
        (EditRequest(prompt="x", model=model, images=(image,), aspect_ratio="1:1"), "keep the input's size"),
        (
            EditRequest(prompt="x", model=model, images=(image,), reference_type="style", mode="insert"),
            "take no mode",
        ),
        (
            EditRequest(prompt="x", model="gemini-3-pro-image", images=(image,), mode="insert"),
            "those are Imagen options",
        ),
    ]:
        with pytest.raises(InputError, match=expected):
            await provider.edit(request)
        assert fake_google.requests == [], expected


async def test_semantic_and_interactive_segmentation_match_the_sdk(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    data = png_bytes((40, 30))
    scribble_png = png_bytes((40, 30), (0, 0, 0))
    sdk_image = types.Image(image_bytes=data, mime_type="image/png")
    client = vertex_sdk(fake_google)
    provider = vertex(fake_google, http)
    client.models.segment_image(
        model="image-segmentation-001",
        source=types.SegmentImageSource(image=sdk_image, prompt="cat, sofa"),
        config=types.SegmentImageConfig(mode="SEMANTIC", max_predictions=2),
    )
    sdk_sent = fake_google.last
    await provider.segment(
        SegmentRequest(
            image=input_image(data),
            model="image-segmentation-001",
            mode="semantic",
            prompt="cat, sofa",
            max_predictions=2,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    client.models.segment_image(
        model="image-segmentation-001",
        source=types.SegmentImageSource(
            image=sdk_image,
            scribble_image=types.ScribbleImage(
                image=types.Image(image_bytes=scribble_png, mime_type="image/png")
            ),
        ),
        config=types.SegmentImageConfig(mode="INTERACTIVE"),
    )
    sdk_sent = fake_google.last
    await provider.segment(
        SegmentRequest(
            image=input_image(data),
            model="image-segmentation-001",
            mode="interactive",
            scribble=InputImage(scribble_png, "image/png", 40, 30, "scribble.png"),
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)


async def test_describe_matches_the_sdk_and_validates_the_schema(
    fake_google: FakeGoogle, http: httpx2.AsyncClient
) -> None:
    data = png_bytes((40, 30))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"count": {"type": "integer"}},
        "required": ["count"],
    }
    client = gemini_sdk(fake_google)
    list(
        client.models.generate_content_stream(
            model="gemini-2.5-flash",
            contents=types.Content(
                role="user",
                parts=[
                    types.Part.from_bytes(data=data, mime_type="image/png"),
                    types.Part.from_text(text="How many?"),
                ],
            ),
            config=types.GenerateContentConfig(
                system_instruction="Answer in JSON.",
                max_output_tokens=200,
                temperature=0.1,
                top_p=0.8,
                response_mime_type="application/json",
                response_json_schema=schema,
            ),
        )
    )
    sdk_sent = fake_google.last
    result = await gemini(fake_google, http).describe(
        DescribeRequest(
            images=(input_image(data),),
            question="How many?",
            model="gemini-2.5-flash",
            system="Answer in JSON.",
            max_tokens=200,
            temperature=0.1,
            top_p=0.8,
            response_schema=schema,
        )
    )
    assert_same_wire(fake_google.last, sdk_sent)
    assert result.structured == {"objects": ["box"], "count": 1}
    assert result.usage["totalTokenCount"] == 1302 and result.finish_reason == "STOP"
    plain = await vertex(fake_google, http).describe(
        DescribeRequest(images=(input_image(data),), question="What is it?", model="gemini-2.5-flash")
    )
    assert plain.text == "A red box on a white floor." and fake_google.last.backend == "vertex"
    fake_google.block_prompt = "SAFETY"
    with pytest.raises(ContentPolicyError, match=r"the prompt was blocked \(SAFETY\)"):
        await gemini(fake_google, http).describe(
            DescribeRequest(images=(input_image(data),), question="?", model="gemini-2.5-flash")
        )
