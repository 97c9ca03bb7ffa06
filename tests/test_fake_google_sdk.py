"""The Google fake is only trusted because the official google-genai SDK runs against it.

Each test makes a real SDK call to the loopback fake on the Gemini API or on Vertex, checks
the SDK parsed the reply into its own types, and checks what the SDK sent (path, auth, the
captured body shapes of providers.md section 3).
"""

from __future__ import annotations

import base64

import google.oauth2.credentials
import pytest
from google import genai
from google.genai import errors, types

from tests.conftest import image_size, png_bytes
from tests.fakes.google_genai import FakeGoogle


def gemini_sdk(fake: FakeGoogle) -> genai.Client:
    return genai.Client(api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.url))


def vertex_sdk(fake: FakeGoogle, location: str = "us-central1") -> genai.Client:
    credentials = google.oauth2.credentials.Credentials(token=fake.access_token)  # type: ignore[no-untyped-call]
    return genai.Client(
        vertexai=True,
        project=fake.project,
        location=location,
        credentials=credentials,
        http_options=types.HttpOptions(base_url=fake.url),
    )


def test_sdk_generate_content_with_image_output_on_the_gemini_api(fake_google: FakeGoogle) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio="16:9", image_size="2K"),
    )
    client = gemini_sdk(fake_google)  # held: the SDK closes its connection when the client is collected
    reply = client.models.generate_content(
        model="gemini-3.1-flash-image", contents="a lighthouse", config=config
    )
    sent = fake_google.last
    assert sent.path == "/v1/models/gemini-3.1-flash-image:generateContent"
    assert sent.headers["x-goog-api-key"] == fake_google.api_key
    assert sent.json == {
        "contents": [{"parts": [{"text": "a lighthouse"}], "role": "user"}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        },
    }
    parts = reply.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts is not None and parts[0].text == "Here is the image you asked for."
    image = parts[1].inline_data
    assert image is not None and image.mime_type == "image/png"
    assert image_size(image.data or b"") == (1344 * 2 // 4, 768 * 2 // 4)
    assert reply.usage_metadata is not None and reply.usage_metadata.total_token_count == 1302


def test_sdk_edit_on_vertex_with_vertex_only_image_options(fake_google: FakeGoogle) -> None:
    source = png_bytes((40, 30))
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        candidate_count=1,
        image_config=types.ImageConfig(
            person_generation="ALLOW_ADULT", output_mime_type="image/jpeg", output_compression_quality=80
        ),
    )
    client = vertex_sdk(fake_google)
    content = types.Content(
        role="user",
        parts=[
            types.Part.from_bytes(data=source, mime_type="image/png"),
            types.Part.from_text(text="make it blue"),
        ],
    )
    reply = client.models.generate_content(model="gemini-3-pro-image", contents=content, config=config)
    sent = fake_google.last
    assert sent.path == (
        "/v1beta1/projects/test-project/locations/us-central1/publishers/google/models/gemini-3-pro-image:generateContent"
    )
    assert sent.headers["authorization"] == f"Bearer {fake_google.access_token}"
    assert sent.json["contents"][0]["parts"] == [
        {"inlineData": {"data": base64.b64encode(source).decode(), "mime_type": "image/png"}},
        {"text": "make it blue"},
    ]
    assert sent.json["generationConfig"]["imageConfig"] == {
        "personGeneration": "ALLOW_ADULT",
        "imageOutputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80},
    }
    image = reply.candidates[0].content.parts[1].inline_data  # type: ignore[index, union-attr]
    assert image is not None and image.mime_type == "image/jpeg"
    assert image_size(image.data or b"") == (40, 30)


def test_sdk_sees_blocked_prompts_finish_reasons_and_errors(fake_google: FakeGoogle) -> None:
    client = genai.Client(
        api_key=fake_google.api_key,
        http_options=types.HttpOptions(
            base_url=fake_google.url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    fake_google.block_prompt = "PROHIBITED_CONTENT"
    reply = client.models.generate_content(model="gemini-3.1-flash-image", contents="x")
    assert reply.prompt_feedback is not None and reply.prompt_feedback.block_reason == "PROHIBITED_CONTENT"
    assert not reply.candidates
    fake_google.block_prompt = None
    fake_google.finish_reason = "IMAGE_SAFETY"
    config = types.GenerateContentConfig(response_modalities=["IMAGE"])
    reply = client.models.generate_content(model="gemini-3.1-flash-image", contents="x", config=config)
    assert reply.candidates and reply.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY
    fake_google.fail_next.append(
        (429, {"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}})
    )
    with pytest.raises(errors.ClientError, match="Quota exceeded") as caught:
        client.models.generate_content(model="gemini-3.1-flash-image", contents="x")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    wrong = genai.Client(api_key="AIza-wrong", http_options=types.HttpOptions(base_url=fake_google.url))
    with pytest.raises(errors.ClientError, match="API key not valid"):
        wrong.models.generate_content(model="gemini-3.1-flash-image", contents="x")


def test_sdk_streams_generate_content(fake_google: FakeGoogle) -> None:
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    client = gemini_sdk(fake_google)
    chunks = list(
        client.models.generate_content_stream(model="gemini-3.1-flash-image", contents="a cat", config=config)
    )
    assert fake_google.last.path.endswith(":streamGenerateContent") and fake_google.last.query == {
        "alt": "sse"
    }
    assert len(chunks) == 1
    parts = chunks[0].candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts is not None and parts[1].inline_data is not None


IMAGEN_DEPRECATION = "ignore:The .* method is deprecated"
"""google-genai 3.x steers users to Gemini image models; Vertex still serves Imagen's :predict."""


@pytest.mark.filterwarnings(IMAGEN_DEPRECATION)
def test_sdk_generate_images_on_vertex_with_every_option(fake_google: FakeGoogle) -> None:
    client = vertex_sdk(fake_google)
    config = types.GenerateImagesConfig(
        number_of_images=2,
        aspect_ratio="16:9",
        negative_prompt="dogs",
        seed=3,
        add_watermark=False,
        output_mime_type="image/jpeg",
        output_compression_quality=85,
        person_generation="ALLOW_ADULT",
        safety_filter_level="BLOCK_MEDIUM_AND_ABOVE",
        language="en",
        enhance_prompt=True,
        include_rai_reason=True,
        include_safety_attributes=True,
        image_size="2K",
        guidance_scale=7.5,
    )
    reply = client.models.generate_images(model="imagen-4.0-generate-001", prompt="a cat", config=config)
    sent = fake_google.last
    assert sent.path.endswith("/publishers/google/models/imagen-4.0-generate-001:predict")
    assert sent.json["instances"] == [{"prompt": "a cat"}]
    assert sent.json["parameters"]["sampleImageSize"] == "2K"
    images = reply.generated_images or []
    assert len(images) == 2
    assert images[0].image is not None and images[0].image.mime_type == "image/jpeg"
    assert image_size(images[0].image.image_bytes or b"") == (1344 * 2 // 4, 768 * 2 // 4)
    assert images[0].enhanced_prompt == "a cat, golden hour, detailed"
    assert reply.positive_prompt_safety_attributes is not None


@pytest.mark.filterwarnings(IMAGEN_DEPRECATION)
def test_sdk_sees_filtered_imagen_results(fake_google: FakeGoogle) -> None:
    client = vertex_sdk(fake_google)
    fake_google.filtered = 1
    config = types.GenerateImagesConfig(number_of_images=2, include_rai_reason=True)
    reply = client.models.generate_images(model="imagen-4.0-generate-001", prompt="x", config=config)
    images = reply.generated_images or []
    assert [image.rai_filtered_reason for image in images] == [
        "56562880: the image may depict violence.",
        None,
    ]


def test_sdk_upscale_segment_and_recontext_on_vertex(fake_google: FakeGoogle) -> None:
    client = vertex_sdk(fake_google)
    source = types.Image(image_bytes=png_bytes((40, 30)), mime_type="image/png")
    upscaled = client.models.upscale_image(
        model="imagen-4.0-upscale-preview",
        image=source,
        upscale_factor="x4",
        config=types.UpscaleImageConfig(output_mime_type="image/png", include_rai_reason=True),
    )
    assert fake_google.last.json["parameters"] == {
        "upscaleConfig": {"upscaleFactor": "x4"},
        "includeRaiReason": True,
        "outputOptions": {"mimeType": "image/png"},
        "sampleCount": 1,
        "mode": "upscale",
    }
    upscaled_image = (upscaled.generated_images or [])[0].image
    assert upscaled_image is not None and image_size(upscaled_image.image_bytes or b"") == (160, 120)

    masks = client.models.segment_image(
        model="image-segmentation-001",
        source=types.SegmentImageSource(image=source, prompt="cat, sofa"),
        config=types.SegmentImageConfig(mode="SEMANTIC", max_predictions=5, confidence_threshold=0.5),
    )
    assert fake_google.last.json["instances"][0]["prompt"] == "cat, sofa"
    assert fake_google.last.json["parameters"] == {
        "mode": "SEMANTIC",
        "maxPredictions": 5,
        "confidenceThreshold": 0.5,
    }
    found = masks.generated_masks or []
    assert [(mask.labels or [])[0].label for mask in found] == ["cat", "sofa"]
    assert (found[0].labels or [])[0].score == 0.98
    assert found[0].mask is not None and image_size(found[0].mask.image_bytes or b"") == (40, 30)

    scribble = types.Image(image_bytes=png_bytes((40, 30), (255, 255, 255)), mime_type="image/png")
    client.models.segment_image(
        model="image-segmentation-001",
        source=types.SegmentImageSource(image=source, scribble_image=types.ScribbleImage(image=scribble)),
        config=types.SegmentImageConfig(mode="INTERACTIVE"),
    )
    assert set(fake_google.last.json["instances"][0]) == {"image", "scribble"}

    placed = client.models.recontext_image(
        model="imagen-product-recontext-preview-06-30",
        source=types.RecontextImageSource(
            prompt="on a beach", product_images=[types.ProductImage(product_image=source)] * 2
        ),
        config=types.RecontextImageConfig(number_of_images=2, seed=1, add_watermark=False),
    )
    assert len(fake_google.last.json["instances"][0]["productImages"]) == 2
    assert len(placed.generated_images or []) == 2


@pytest.mark.filterwarnings(IMAGEN_DEPRECATION)
def test_sdk_edit_image_with_mask_and_customisation_references(fake_google: FakeGoogle) -> None:
    client = vertex_sdk(fake_google)
    base = types.Image(image_bytes=png_bytes((40, 30)), mime_type="image/png")
    mask = types.Image(image_bytes=png_bytes((40, 30), (255, 255, 255)), mime_type="image/png")
    edited = client.models.edit_image(
        model="imagen-3.0-capability-001",
        prompt="add a hat",
        reference_images=[
            types.RawReferenceImage(reference_id=1, reference_image=base),
            types.MaskReferenceImage(
                reference_id=2,
                reference_image=mask,
                config=types.MaskReferenceConfig(mask_mode="MASK_MODE_USER_PROVIDED", mask_dilation=0.03),
            ),
        ],
        config=types.EditImageConfig(
            edit_mode="EDIT_MODE_INPAINT_INSERTION", number_of_images=2, guidance_scale=60
        ),
    )
    references = fake_google.last.json["instances"][0]["referenceImages"]
    assert [reference["referenceType"] for reference in references] == [
        "REFERENCE_TYPE_RAW",
        "REFERENCE_TYPE_MASK",
    ]
    assert references[1]["maskImageConfig"] == {"maskMode": "MASK_MODE_USER_PROVIDED", "dilation": 0.03}
    images = edited.generated_images or []
    assert len(images) == 2 and images[0].image is not None
    assert image_size(images[0].image.image_bytes or b"") == (40, 30)

    client.models.edit_image(
        model="imagen-3.0-capability-001",
        prompt="a portrait of [1] in the style of [2]",
        reference_images=[
            types.SubjectReferenceImage(
                reference_id=1,
                reference_image=base,
                config=types.SubjectReferenceConfig(
                    subject_type="SUBJECT_TYPE_PERSON", subject_description="a man"
                ),
            ),
            types.StyleReferenceImage(
                reference_id=2,
                reference_image=base,
                config=types.StyleReferenceConfig(style_description="watercolor"),
            ),
        ],
    )
    references = fake_google.last.json["instances"][0]["referenceImages"]
    assert references[0]["subjectImageConfig"] == {
        "subject_type": "SUBJECT_TYPE_PERSON",
        "subject_description": "a man",
    }
    assert references[1]["styleImageConfig"] == {"style_description": "watercolor"}
