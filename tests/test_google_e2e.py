"""Google through the MCP tools, as a user would configure it: the Gemini API with
GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL, Vertex with GOOGLE_CLOUD_PROJECT,
GOOGLE_CLOUD_LOCATION, GOOGLE_OAUTH_ACCESS_TOKEN and GOOGLE_VERTEX_BASE_URL, both pointed at
the loopback fake."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import png_bytes
from tests.connect import Transport, connect
from tests.fakes.google_genai import FakeGoogle, decode_b64
from tests.fakes.loopback import LoopbackServer
from tests.test_e2e import images_of, read_blob, read_json

pytestmark = pytest.mark.anyio


@pytest.fixture
def google_env(fake_google: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "GEMINI_API_KEY": fake_google.api_key,
        "GOOGLE_GEMINI_BASE_URL": fake_google.url,
        "GOOGLE_CLOUD_PROJECT": fake_google.project,
        "GOOGLE_CLOUD_LOCATION": "us-central1",
        "GOOGLE_OAUTH_ACCESS_TOKEN": fake_google.access_token,
        "GOOGLE_VERTEX_BASE_URL": fake_google.url,
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


IMAGEN_RETIRED = "imagen-4.0-generate-001,imagen-3.0-capability-001"
"""Shut down by Google on 2026-08-17: the tests of our Imagen adapter run as a project that still
has access to them would ([models] allow_retired)."""


@pytest.fixture
def imagen_env(google_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("IMAGEGEN_MODELS_ALLOW_RETIRED", IMAGEN_RETIRED)
    return {**google_env, "IMAGEGEN_MODELS_ALLOW_RETIRED": IMAGEN_RETIRED}


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    facts: dict[str, Any] = result.structured_content
    return facts


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_generate_on_gemini_then_edit_on_vertex(
    transport: Transport, google_env: dict[str, str], fake_google: FakeGoogle
) -> None:
    async with connect(transport, google_env) as client:
        providers = structured(await client.call_tool("list_providers", {}))
        by_name = {info["name"]: info for info in providers["providers"]}
        assert by_name["google"]["configured"] and by_name["vertex"]["configured"]
        assert (
            "image_size" in by_name["google"]["options"]
            and "person_generation" not in by_name["google"]["options"]
        )
        assert "person_generation" in by_name["vertex"]["options"]
        assert by_name["vertex"]["default_model"] == "gemini-nano-banana-2.1"
        assert "imagen-4.0-generate-001" not in by_name["vertex"]["models"], "shut down 2026-08-17"

        made = structured(
            await client.call_tool(
                "generate_image",
                {"prompt": "a lighthouse", "provider": "google", "aspect_ratio": "16:9", "image_size": "2K"},
            )
        )
        assert made["provider"] == "google" and made["model"] == "gemini-nano-banana-2.1"
        assert made["text"] == "Here is the image you asked for."
        assert (made["images"][0]["width"], made["images"][0]["height"]) == (672, 384)
        assert fake_google.last.backend == "gemini"
        assert fake_google.last.json["generationConfig"]["imageConfig"] == {
            "aspectRatio": "16:9",
            "imageSize": "2K",
        }

        edited = await client.call_tool(
            "edit_image",
            {
                "image": made["images"][0]["uri"],
                "prompt": "make it night",
                "provider": "vertex",
                "model": "gemini-3-pro-image",
                "output_format": "jpeg",
                "person_generation": "dont_allow",
            },
        )
        facts = structured(edited)
        assert fake_google.last.backend == "vertex" and fake_google.last.model == "gemini-3-pro-image"
        sent_parts = fake_google.last.json["contents"][0]["parts"]
        assert sent_parts[0]["inlineData"]["mimeType"] == "image/png" and sent_parts[1] == {
            "text": "make it night"
        }
        assert fake_google.last.json["generationConfig"]["imageConfig"] == {
            "personGeneration": "ALLOW_NONE",
            "imageOutputOptions": {"mimeType": "image/jpeg"},
        }
        assert facts["parent_ids"] == [made["images"][0]["id"]]
        assert images_of(edited)
        blob, mime = await read_blob(client, facts["images"][0]["uri"])
        assert mime == "image/jpeg" and blob[:2] == b"\xff\xd8"


async def test_refusals_store_nothing_and_say_why(
    imagen_env: dict[str, str], fake_google: FakeGoogle, tmp_path: Path
) -> None:
    async with connect("memory", imagen_env) as client:
        fake_google.block_prompt = "SAFETY"
        blocked = await client.call_tool("generate_image", {"prompt": "x", "provider": "google"})
        assert blocked.is_error and "the prompt was blocked (SAFETY)" in str(blocked.content)
        fake_google.block_prompt = None
        unsupported = await client.call_tool(
            "generate_image", {"prompt": "x", "provider": "google", "output_format": "jpeg"}
        )
        assert unsupported.is_error and "google does not support output_format" in str(unsupported.content)
        masked = await client.call_tool(
            "edit_image",
            {
                "image": "data:image/png;base64,iVBORw0KGgo=",
                "prompt": "x",
                "provider": "vertex",
                "size": "1024x1024",
            },
        )
        assert (
            masked.is_error
            and "unknown parameter 'size': none of the providers configured here (google, vertex)"
            in str(masked.content)
        )
        fake_google.filtered = 2
        filtered = await client.call_tool(
            "generate_image",
            {"prompt": "x", "provider": "vertex", "model": "imagen-4.0-generate-001", "n": 2},
        )
        assert filtered.is_error
        assert (
            "vertex refused the request under its content policy: 56562880: the image may depict violence"
            in str(filtered.content)
        )
    assert not list((tmp_path / "store" / "images").rglob("*.*"))


async def test_a_model_only_one_configured_provider_serves_routes_there(
    fake_google: FakeGoogle, fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "GEMINI_API_KEY": fake_google.api_key,
        "GOOGLE_GEMINI_BASE_URL": fake_google.url,
    }.items():
        monkeypatch.setenv(name, value)
    async with connect("memory", {}) as client:
        by_default = structured(await client.call_tool("generate_image", {"prompt": "x"}))
        assert by_default["provider"] == "openai", "openai is configured first"
        by_model = structured(
            await client.call_tool("generate_image", {"prompt": "x", "model": "gemini-3-pro-image"})
        )
        assert (by_model["provider"], by_model["model"]) == ("google", "gemini-3-pro-image")
        assert fake_google.last.model == "gemini-3-pro-image"


async def test_imagen_generate_through_the_tool(imagen_env: dict[str, str], fake_google: FakeGoogle) -> None:
    fake_google.filtered = 1
    async with connect("memory", imagen_env) as client:
        result = await client.call_tool(
            "generate_image",
            {
                "prompt": "a fox in the snow",
                "provider": "vertex",
                "model": "imagen-4.0-generate-001",
                "n": 3,
                "negative_prompt": "people",
                "aspect_ratio": "9:16",
                "safety_filter": "block_medium_and_above",
                "enhance_prompt": True,
                "output_format": "jpeg",
            },
        )
        facts = structured(result)
        assert len(facts["images"]) == 2, "one of three was filtered"
        assert facts["images"][0]["revised_prompt"] == "a fox in the snow, golden hour, detailed"
        assert facts["images"][0]["mime_type"] == "image/jpeg"
        parameters = fake_google.last.json["parameters"]
        assert (
            parameters["negativePrompt"] == "people"
            and parameters["safetySetting"] == "BLOCK_MEDIUM_AND_ABOVE"
        )
        metadata = await read_json(client, facts["images"][0]["uri"] + "/metadata")
        assert metadata["provider_response"]["filtered"]["count"] == 1
        assert metadata["parameters"]["negative_prompt"] == "people"
        refused = await client.call_tool(
            "generate_image", {"prompt": "x", "provider": "vertex", "negative_prompt": "people"}
        )
        assert refused.is_error and "those are Imagen options" in str(refused.content)


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_upscale_segment_and_recontext_through_the_tools(
    transport: Transport, google_env: dict[str, str], fake_google: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_DEFAULT_PROVIDER", "google")  # google cannot do these: vertex is chosen
    env = {**google_env, "IMAGEGEN_DEFAULT_PROVIDER": "google"}
    async with connect(transport, env) as client:
        made = structured(
            await client.call_tool("generate_image", {"prompt": "a red box", "image_size": "1K"})
        )
        assert made["provider"] == "google"
        source = made["images"][0]

        upscaled = structured(
            await client.call_tool("upscale_image", {"image": source["uri"], "factor": "x4"})
        )
        assert (upscaled["provider"], upscaled["model"]) == ("vertex", "imagen-4.0-upscale-preview")
        big = upscaled["images"][0]
        assert (big["width"], big["height"], big["kind"]) == (
            source["width"] * 4,
            source["height"] * 4,
            "upscaled",
        )
        assert upscaled["parent_ids"] == [source["id"]]

        segmented = await client.call_tool(
            "segment_image",
            {"image": source["uri"], "mode": "semantic", "labels": ["box", "floor"], "cutout": True},
        )
        facts = structured(segmented)
        assert fake_google.last.json["instances"][0]["prompt"] == "box, floor"
        kinds = [(image["kind"], image["label"], image["score"]) for image in facts["images"]]
        assert kinds == [
            ("segment_mask", "box", 0.98),
            ("segment_mask", "floor", 0.88),
            ("cutout", "box", 0.98),
            ("cutout", "floor", 0.88),
        ]
        mask_blob, mask_mime = await read_blob(client, facts["images"][0]["uri"])
        cutout_blob, _ = await read_blob(client, facts["images"][2]["uri"])
        assert mask_mime == "image/png"
        with Image.open(io.BytesIO(cutout_blob)) as cut:
            assert cut.mode == "RGBA" and cut.size == (source["width"], source["height"])
            assert cut.getpixel((0, 0))[3] == 0, "outside the mask is transparent"
            assert cut.getpixel((source["width"] // 2, source["height"] // 2))[3] == 255
        # A mask from segment_image is a valid edit mask (white = the area to change).
        assert mask_blob.startswith(b"\x89PNG")

        interactive = structured(
            await client.call_tool(
                "segment_image",
                {"image": source["uri"], "mode": "interactive", "points": [[10, 10], [20, 15]]},
            )
        )
        assert interactive["images"][0]["label"] == "interactive"
        assert "scribble" in fake_google.last.json["instances"][0]

        placed = structured(
            await client.call_tool(
                "recontext_image", {"images": [source["uri"]], "prompt": "on a beach", "n": 2}
            )
        )
        assert placed["model"] == "imagen-product-recontext-preview-06-30" and len(placed["images"]) == 2
        assert all(image["kind"] == "recontexted" for image in placed["images"])
        assert placed["parent_ids"] == [source["id"]]

        refused = await client.call_tool("segment_image", {"image": source["uri"], "labels": ["box"]})
        assert refused.is_error and "labels apply to mode semantic" in str(refused.content)
        outside = await client.call_tool(
            "segment_image", {"image": source["uri"], "mode": "interactive", "points": [[5000, 1]]}
        )
        assert outside.is_error and "is outside the" in str(outside.content)


async def test_only_providers_with_the_capability_are_used(
    fake_google: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", fake_google.api_key)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake_google.url)
    small = "data:image/png;base64," + base64.b64encode(png_bytes((16, 16))).decode()
    async with connect("memory", {}) as client:
        result = await client.call_tool("upscale_image", {"image": small, "factor": "x2"})
        # Gemini cannot upscale, so the local provider is asked; this test's models folder is empty.
        assert result.is_error and "the local model realesr-animevideov3 is not installed" in str(
            result.content
        )
        named = await client.call_tool("upscale_image", {"image": small, "provider": "google"})
        assert named.is_error
        assert "google cannot upscale images; providers that can: vertex, local" in str(named.content)


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_imagen_edits_through_the_tool(
    transport: Transport, imagen_env: dict[str, str], fake_google: FakeGoogle
) -> None:
    async with connect(transport, imagen_env) as client:
        made = structured(
            await client.call_tool("generate_image", {"prompt": "a room", "provider": "vertex"})
        )
        source = made["images"][0]
        mask = structured(
            await client.call_tool("segment_image", {"image": source["uri"], "mode": "foreground"})
        )
        mask_uri = mask["images"][0]["uri"]

        inpainted = structured(
            await client.call_tool(
                "edit_image",
                {
                    "image": source["uri"],
                    "mask": mask_uri,
                    "prompt": "a red armchair",
                    "provider": "vertex",
                    "mask_dilation": 0.02,
                },
            )
        )
        assert inpainted["model"] == "imagen-3.0-capability-001", "a mask picks Imagen's editor on vertex"
        sent = fake_google.last.json
        references = sent["instances"][0]["referenceImages"]
        assert [reference["referenceType"] for reference in references] == [
            "REFERENCE_TYPE_RAW",
            "REFERENCE_TYPE_MASK",
        ]
        assert references[1]["maskImageConfig"] == {"maskMode": "MASK_MODE_USER_PROVIDED", "dilation": 0.02}
        assert sent["parameters"]["editMode"] == "EDIT_MODE_INPAINT_INSERTION"
        with Image.open(
            io.BytesIO(decode_b64(references[1]["referenceImage"]["bytesBase64Encoded"]))
        ) as sent_mask:
            width, height = sent_mask.size
            assert sent_mask.convert("L").getpixel((width // 2, height // 2)) == 255, (
                "white marks the area to change"
            )
            assert sent_mask.convert("L").getpixel((0, 0)) == 0
        metadata = await read_json(client, inpainted["images"][0]["uri"] + "/metadata")
        assert metadata["parent_ids"] == [source["id"]] and "mask_id" in metadata

        swapped = structured(
            await client.call_tool(
                "edit_image",
                {
                    "image": source["uri"],
                    "prompt": "a beach",
                    "provider": "vertex",
                    "mode": "background_swap",
                },
            )
        )
        assert swapped["model"] == "imagen-3.0-capability-001"
        references = fake_google.last.json["instances"][0]["referenceImages"]
        assert references[1] == {
            "referenceId": 2,
            "referenceType": "REFERENCE_TYPE_MASK",
            "maskImageConfig": {"maskMode": "MASK_MODE_BACKGROUND"},
        }
        assert fake_google.last.json["parameters"]["editMode"] == "EDIT_MODE_BGSWAP"

        styled = structured(
            await client.call_tool(
                "edit_image",
                {
                    "image": source["uri"],
                    "images": [made["images"][0]["uri"]],
                    "prompt": "[1] painted in the style of [2]",
                    "provider": "vertex",
                    "reference_type": "style",
                    "reference_description": "watercolor",
                },
            )
        )
        assert styled["model"] == "imagen-3.0-capability-001"
        references = fake_google.last.json["instances"][0]["referenceImages"]
        assert [reference["referenceType"] for reference in references] == ["REFERENCE_TYPE_STYLE"] * 2
        assert references[0]["styleImageConfig"] == {"styleDescription": "watercolor"}
        assert "editMode" not in fake_google.last.json["parameters"]

        refused = await client.call_tool(
            "edit_image",
            {"image": source["uri"], "prompt": "x", "provider": "vertex", "subject_type": "person"},
        )
        assert refused.is_error and "go with reference_type" in str(refused.content)


async def test_vertex_with_application_default_credentials(
    fake_google: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GOOGLE_OAUTH_ACCESS_TOKEN: google-auth reads the service account in
    GOOGLE_APPLICATION_CREDENTIALS and gets a token at its token_uri (a loopback endpoint here),
    once, with a signed JWT assertion; the quota project is sent."""
    refreshes: list[dict[str, str]] = []

    async def token(request: Request) -> Response:
        refreshes.append(dict((await request.form()).items()))  # type: ignore[arg-type]
        return JSONResponse(
            {"access_token": fake_google.access_token, "expires_in": 3600, "token_type": "Bearer"}
        )

    with LoopbackServer(Starlette(routes=[Route("/token", token, methods=["POST"])])) as issuer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        credentials = tmp_path / "service-account.json"
        credentials.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": fake_google.project,
                    "private_key_id": "key-1",
                    "private_key": pem,
                    "client_email": "imagegen@test-project.iam.gserviceaccount.com",
                    "client_id": "1234567890",
                    "token_uri": f"{issuer.url}/token",
                }
            )
        )
        for name, value in {
            "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
            "GOOGLE_CLOUD_QUOTA_PROJECT": "billing-project",
            "GOOGLE_CLOUD_PROJECT": fake_google.project,
            "GOOGLE_VERTEX_BASE_URL": fake_google.url,
        }.items():
            monkeypatch.setenv(name, value)
        async with connect("memory", {}) as client:
            for _ in range(2):
                result = await client.call_tool("generate_image", {"prompt": "x", "provider": "vertex"})
                assert not result.is_error, result.content
    assert len(refreshes) == 1, "the token is reused until it expires"
    assert refreshes[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(  # signed with the service account's key
        refreshes[0]["assertion"], key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
    )
    assert claims["iss"] == "imagegen@test-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert fake_google.last.headers["authorization"] == f"Bearer {fake_google.access_token}"
    assert fake_google.last.headers["x-goog-user-project"] == "billing-project"


async def test_vertex_without_any_credentials_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud credentials file either
    async with connect("memory", {}) as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "provider": "vertex"})
    assert result.is_error
    assert (
        "the vertex provider is not configured: set GOOGLE_CLOUD_PROJECT and GOOGLE_OAUTH_ACCESS_TOKEN"
        in str(result.content)
    )


async def test_describe_with_google(google_env: dict[str, str], fake_google: FakeGoogle) -> None:
    async with connect("memory", google_env) as client:
        made = structured(
            await client.call_tool("generate_image", {"prompt": "a red box", "provider": "google"})
        )
        answer = structured(
            await client.call_tool(
                "describe_image",
                {"images": [made["images"][0]["uri"]], "question": "What is in it?", "provider": "google"},
            )
        )
        assert answer["answer"] == "A red box on a white floor." and answer["model"] == "gemini-2.5-flash"
        assert fake_google.last.method == "streamGenerateContent" and fake_google.last.query == {"alt": "sse"}
        sent = fake_google.last.json["contents"][0]["parts"]
        assert sent[-1] == {"text": "What is in it?"} and "inlineData" in sent[0]


async def test_imagen_generate_and_edit_are_refused_with_the_route_that_works(
    google_env: dict[str, str], fake_google: FakeGoogle
) -> None:
    """Google shut Imagen's generate and edit models down on 2026-08-17: a call to them sends
    nothing and names the Gemini model that replaces them; a retired Gemini model too."""
    async with connect("memory", google_env) as client:
        generate = await client.call_tool(
            "generate_image", {"prompt": "x", "provider": "vertex", "model": "imagen-4.0-ultra-generate-001"}
        )
        masked = await client.call_tool(
            "edit_image",
            {
                "image": "data:image/png;base64,iVBORw0KGgo=",
                "prompt": "x",
                "provider": "vertex",
                "mask_mode": "background",
            },
        )
        retired = await client.call_tool("generate_image", {"prompt": "x", "model": "gemini-3.1-flash-image"})
    assert generate.is_error and (
        "imagen-4.0-ultra-generate-001 was shut down by Google on 2026-08-17; use gemini-3-pro-image. "
        "Nothing was sent." in str(generate.content)
    )
    assert masked.is_error and "imagen-3.0-capability-001 was shut down by Google on 2026-08-17" in str(
        masked.content
    )
    assert retired.is_error and (
        "gemini-3.1-flash-image was shut down by Google on 2026-10-29; use gemini-nano-banana-2.1"
        in str(retired.content)
    )
    assert fake_google.requests == []
