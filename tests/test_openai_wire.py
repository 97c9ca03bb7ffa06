"""Our OpenAI/Azure client against the loopback fake: the requests it sends are the SDK's.

Each test makes the same logical call twice, once with the official `openai` SDK and
once with our client, and compares what reached the fake: method, path, query, auth and
content headers, JSON body with key order, multipart parts byte for byte (boundary aside).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from PIL import Image

from mcp_imagegen.config import AzureSettings, EndpointSettings, OpenAISettings
from mcp_imagegen.errors import ContentPolicyError, InputError, ProviderError
from mcp_imagegen.providers.base import EditRequest, GenerateRequest, InputImage, Tokens
from mcp_imagegen.providers.openai.endpoint import (
    azure_endpoint,
    compatible_endpoint,
    openai_capabilities,
    openai_endpoint,
)
from mcp_imagegen.providers.openai.images import OpenAIImages
from tests.conftest import png_bytes
from tests.fakes.openai_images import FakeOpenAIImages, Recorded

pytestmark = pytest.mark.anyio
CAPS = openai_capabilities(("gpt-image-2",), "gpt-image-2", ("png", "jpeg", "webp"))
WIRE_HEADERS = ("authorization", "api-key", "openai-organization", "openai-project", "accept")


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def ours(fake: FakeOpenAIImages, http: httpx2.AsyncClient, **settings: Any) -> OpenAIImages:
    config = OpenAISettings(api_key=fake.api_key, base_url=f"{fake.url}/v1", **settings)
    return OpenAIImages(openai_endpoint(config), http, CAPS, timeout_s=30)


def assert_same_wire(mine: Recorded, sdk: Recorded) -> None:
    assert (mine.method, mine.path, mine.query) == (sdk.method, sdk.path, sdk.query)
    for header in WIRE_HEADERS:
        assert mine.headers.get(header) == sdk.headers.get(header), header
    assert mine.headers["content-type"].split(";")[0] == sdk.headers["content-type"].split(";")[0]
    if sdk.json is not None:
        assert mine.json is not None
        assert list(mine.json.items()) == list(sdk.json.items())
    else:
        assert mine.parts is not None and sdk.parts is not None
        assert [(p.raw_headers, p.data) for p in mine.parts] == [(p.raw_headers, p.data) for p in sdk.parts]


def input_image(data: bytes, filename: str) -> InputImage:
    with Image.open(io.BytesIO(data)) as image:
        return InputImage(data, "image/png", image.width, image.height, filename)


async def test_generate_matches_sdk_byte_for_byte(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    headers = {"org_id": "org-x", "project_id": "proj-y"}
    sdk = openai.OpenAI(
        api_key=fake_openai.api_key,
        base_url=f"{fake_openai.url}/v1",
        organization="org-x",
        project="proj-y",
        max_retries=0,
    )
    sdk.images.generate(
        model="gpt-image-2",
        prompt="a lighthouse",
        background="opaque",
        moderation="low",
        n=3,
        output_compression=70,
        output_format="jpeg",
        quality="high",
        size="1920x1088",
    )
    sdk_sent = fake_openai.last
    result = await ours(fake_openai, http, **headers).generate(
        GenerateRequest(
            prompt="a lighthouse",
            model="gpt-image-2",
            n=3,
            size="1920x1088",
            quality="high",
            background="opaque",
            output_format="jpeg",
            output_compression=70,
            moderation="low",
        )
    )
    assert_same_wire(fake_openai.last, sdk_sent)
    assert len(result.images) == 3
    assert result.metadata["usage"] == {
        "total_tokens": 350,
        "input_tokens": 50,
        "output_tokens": 300,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
        "output_tokens_details": {"text_tokens": 0, "image_tokens": 300},
    }
    assert result.tokens == Tokens(50, 300)  # what a token price settles on
    assert str(result.metadata["request_id"]).startswith("req_fake_")


async def test_minimal_generate_sends_only_model_and_prompt(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    await ours(fake_openai, http).generate(GenerateRequest(prompt="a cat", model="gpt-image-1.5"))
    assert fake_openai.last.json == {"model": "gpt-image-1.5", "prompt": "a cat"}
    assert list(fake_openai.last.json) == ["model", "prompt"]


async def test_edit_with_mask_and_several_images_matches_sdk(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    first, second = png_bytes((64, 96)), png_bytes((64, 96), (0, 90, 0))
    mask = png_bytes((64, 96), (0, 0, 0, 0), mode="RGBA")
    sdk = openai.OpenAI(api_key=fake_openai.api_key, base_url=f"{fake_openai.url}/v1", max_retries=0)
    sdk.images.edit(
        model="gpt-image-1.5",
        prompt="put them together",
        input_fidelity="high",
        n=2,
        output_format="png",
        quality="medium",
        size="1024x1536",
        image=[("image.png", first, "image/png"), ("image-2.png", second, "image/png")],
        mask=("mask.png", mask, "image/png"),
    )
    sdk_sent = fake_openai.last
    result = await ours(fake_openai, http).edit(
        EditRequest(
            prompt="put them together",
            model="gpt-image-1.5",
            n=2,
            size="1024x1536",
            quality="medium",
            output_format="png",
            input_fidelity="high",
            images=(input_image(first, "image.png"), input_image(second, "image-2.png")),
            mask=input_image(mask, "mask.png"),
        )
    )
    assert_same_wire(fake_openai.last, sdk_sent)
    assert len(result.images) == 2


async def test_azure_deployment_path_matches_sdk(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    sdk = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url,
        api_version="2025-04-01-preview",
        api_key=fake_openai.azure_key,
        max_retries=0,
    )
    sdk.images.generate(model="my-image-deployment", prompt="a cat", quality="high", size="1024x1024")
    sdk_sent = fake_openai.last
    settings = AzureSettings(
        api_key=fake_openai.azure_key,
        endpoint=fake_openai.url,
        api_version="2025-04-01-preview",
    )
    provider = OpenAIImages(azure_endpoint(settings), http, CAPS, timeout_s=30)
    await provider.generate(
        GenerateRequest(prompt="a cat", model="my-image-deployment", quality="high", size="1024x1024")
    )
    assert_same_wire(fake_openai.last, sdk_sent)
    assert fake_openai.last.path == "/openai/deployments/my-image-deployment/images/generations"
    assert fake_openai.last.headers["api-key"] == fake_openai.azure_key


async def test_azure_deployment_path_edit_matches_sdk(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    picture = png_bytes((32, 32))
    sdk = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url,
        api_version="2025-04-01-preview",
        api_key=fake_openai.azure_key,
        max_retries=0,
    )
    sdk.images.edit(model="dep", prompt="x", image=[("image.png", picture, "image/png")])
    sdk_sent = fake_openai.last
    settings = AzureSettings(
        api_key=fake_openai.azure_key, endpoint=fake_openai.url, api_version="2025-04-01-preview"
    )
    await OpenAIImages(azure_endpoint(settings), http, CAPS, 30).edit(
        EditRequest(prompt="x", model="dep", images=(input_image(picture, "image.png"),))
    )
    assert_same_wire(fake_openai.last, sdk_sent)


@pytest.mark.parametrize(
    ("version", "query"), [(None, {}), ("v1", {}), ("preview", {"api-version": "preview"})]
)
async def test_azure_v1_path(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, version: str | None, query: dict[str, str]
) -> None:
    settings = AzureSettings(
        api_key=fake_openai.azure_key, endpoint=f"{fake_openai.url}/", api_version=version
    )
    await OpenAIImages(azure_endpoint(settings), http, CAPS, 30).generate(
        GenerateRequest(prompt="x", model="gpt-image-2-deployment")
    )
    sent = fake_openai.last
    assert sent.path == "/openai/v1/images/generations"
    assert sent.query == query
    assert sent.headers["api-key"] == fake_openai.azure_key
    assert sent.json == {"model": "gpt-image-2-deployment", "prompt": "x"}


async def test_azure_entra_token_is_a_bearer(fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient) -> None:
    settings = AzureSettings(ad_token=fake_openai.azure_key, api_key="ignored", endpoint=fake_openai.url)
    await OpenAIImages(azure_endpoint(settings), http, CAPS, 30).generate(
        GenerateRequest(prompt="x", model="d")
    )
    assert fake_openai.last.headers["authorization"] == f"Bearer {fake_openai.azure_key}"
    assert "api-key" not in fake_openai.last.headers


async def test_named_compatible_endpoint(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_IMAGES_KEY", fake_openai.api_key)
    settings = EndpointSettings(
        base_url=f"{fake_openai.url}/v1", api_key_env="LOCAL_IMAGES_KEY", response_format="b64_json"
    )
    provider = OpenAIImages(compatible_endpoint("local", settings), http, CAPS, 30)
    await provider.generate(GenerateRequest(prompt="x", model="sdxl", size="512x512"))
    assert fake_openai.last.json == {
        "model": "sdxl",
        "prompt": "x",
        "response_format": "b64_json",
        "size": "512x512",
    }


async def test_content_policy_refusal_gives_providers_reason(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.fail_next.append(
        (
            400,
            {
                "error": {
                    "message": "Your request was rejected by the safety system. safety_violations=[sexual].",
                    "type": "image_generation_user_error",
                    "param": None,
                    "code": "moderation_blocked",
                }
            },
        )
    )
    with pytest.raises(ContentPolicyError) as caught:
        await ours(fake_openai, http).generate(GenerateRequest(prompt="x", model="gpt-image-2"))
    message = str(caught.value)
    assert "refused the request under its content policy" in message
    assert "safety_violations=[sexual]" in message
    assert "req_fake_error" in message


async def test_azure_content_filter_in_a_200_body(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.fail_next.append(
        (
            200,
            {
                "created": 1,
                "error": {
                    "code": "contentFilter",
                    "message": "Generated image was filtered as a result of our safety system.",
                },
            },
        )
    )
    settings = AzureSettings(api_key=fake_openai.azure_key, endpoint=fake_openai.url)
    with pytest.raises(ContentPolicyError, match="Generated image was filtered"):
        await OpenAIImages(azure_endpoint(settings), http, CAPS, 30).generate(
            GenerateRequest(prompt="x", model="d")
        )


async def test_bad_key_names_the_variable_and_never_echoes_the_key(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    secret = "sk-this-is-secret-123"
    fake_openai.fail_next.append(
        (
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {secret}.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
    )
    provider = OpenAIImages(
        openai_endpoint(OpenAISettings(api_key=secret, base_url=f"{fake_openai.url}/v1")), http, CAPS, 30
    )
    with pytest.raises(ProviderError) as caught:
        await provider.generate(GenerateRequest(prompt="x", model="gpt-image-2"))
    assert caught.value.status == 401
    assert secret not in str(caught.value)
    assert "check OPENAI_API_KEY" in str(caught.value)


async def test_azure_deployment_takes_every_model_as_the_sdk_does(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    """AZURE_OPENAI_DEPLOYMENT alone: a call naming a model goes to that deployment, exactly as the
    SDK with `azure_deployment` sends it; the model name still picks the size rules."""
    sdk = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url,
        azure_deployment="img-deploy",
        api_version="2025-04-01-preview",
        api_key=fake_openai.azure_key,
        max_retries=0,
    )
    sdk.images.generate(model="gpt-image-1.5", prompt="a cat", size="1024x1536")
    sdk_sent = fake_openai.last
    settings = AzureSettings(
        api_key=fake_openai.azure_key,
        endpoint=fake_openai.url,
        api_version="2025-04-01-preview",
        deployment="img-deploy",
    )
    provider = OpenAIImages(azure_endpoint(settings), http, CAPS, timeout_s=30)
    await provider.generate(GenerateRequest(prompt="a cat", model="gpt-image-1.5", size="1024x1536"))
    assert_same_wire(fake_openai.last, sdk_sent)
    assert fake_openai.last.path == "/openai/deployments/img-deploy/images/generations"
    with pytest.raises(InputError, match=r"gpt-image-1\.5"):  # its size rules still apply
        await provider.generate(GenerateRequest(prompt="a cat", model="gpt-image-1.5", size="640x480"))


@pytest.mark.parametrize("version", ["2025-04-01-preview", None])
async def test_azure_deployments_by_model(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, version: str | None
) -> None:
    settings = AzureSettings(
        api_key=fake_openai.azure_key,
        endpoint=fake_openai.url,
        api_version=version,
        deployments="gpt-image-1.5=img-deploy, gpt-image-2=img2",
    )
    provider = OpenAIImages(azure_endpoint(settings), http, CAPS, timeout_s=30)
    for model, deployment in (("gpt-image-1.5", "img-deploy"), ("gpt-image-2", "img2")):
        await provider.generate(GenerateRequest(prompt="x", model=model))
        sent = fake_openai.last
        assert sent.json is not None
        if version:  # classic: the URL names the deployment, the body the model (as the SDK)
            assert sent.path == f"/openai/deployments/{deployment}/images/generations"
            assert sent.json["model"] == model
        else:  # /openai/v1/: the body's model is the deployment
            assert sent.path == "/openai/v1/images/generations"
            assert sent.json["model"] == deployment
        await provider.edit(EditRequest(prompt="x", model=model, images=(input_image(png_bytes(), "i.png"),)))
        edit_sent = fake_openai.last
        assert (deployment in edit_sent.path) if version else (edit_sent.fields()["model"] == deployment)
    before = len(fake_openai.requests)
    with pytest.raises(InputError) as refused:
        await provider.generate(GenerateRequest(prompt="x", model="gpt-image-1-mini"))
    assert "gpt-image-1.5 (img-deploy), gpt-image-2 (img2)" in str(refused.value)
    assert len(fake_openai.requests) == before, "nothing was sent"


async def test_azure_model_names_reach_the_deployment_through_mcp(
    fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The model name list_providers teaches reaches the configured deployment, not a deployment of
    that name (which a real resource does not have)."""
    from mcp import Client

    from mcp_imagegen.config import load_settings
    from mcp_imagegen.server.app import build_server

    for name, value in {
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        "AZURE_OPENAI_API_KEY": fake_openai.azure_key,
        "AZURE_OPENAI_ENDPOINT": fake_openai.url,
        "AZURE_OPENAI_API_VERSION": "2025-04-01-preview",
        "AZURE_OPENAI_DEPLOYMENTS": "gpt-image-1.5=img-deploy",
    }.items():
        monkeypatch.setenv(name, value)
    async with Client(build_server(load_settings())) as client:
        listing = await client.call_tool("list_providers", {})
        assert listing.structured_content is not None
        [azure] = [item for item in listing.structured_content["providers"] if item["name"] == "azure"]
        assert azure["default_model"] == "gpt-image-1.5"
        assert azure["deployments"] == {"gpt-image-1.5": "img-deploy"}
        made = await client.call_tool("generate_image", {"prompt": "a fox", "provider": "azure"})
        assert not made.is_error, made.content
        assert fake_openai.last.path == "/openai/deployments/img-deploy/images/generations"
        refused = await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-2"})
        assert refused.is_error and "AZURE_OPENAI_DEPLOYMENTS: gpt-image-1.5 (img-deploy)" in str(
            refused.content
        )
