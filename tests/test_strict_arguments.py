"""The tool surface is closed: every input schema says additionalProperties false, and an
argument no schema names is refused by name, with the closest valid one, before any provider
request and with nothing stored. Options are declared once and checked from the declarations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mcp.types import TextContent
from pydantic import SecretStr

from mcp_imagegen.config import OpenAISettings, Settings, load_settings
from mcp_imagegen.errors import InputError, UnsupportedOptionError
from mcp_imagegen.providers.base import Capabilities, EditRequest, GenerateRequest, ModelFamily
from mcp_imagegen.providers.options import (
    OPTION_NAMES,
    EditOptions,
    GenerateOptions,
    RecontextOptions,
    SegmentOptions,
    UpscaleOptions,
    given_options,
    option_fields,
)
from mcp_imagegen.providers.registry import BUILTIN, spec_for
from mcp_imagegen.server.tools.arguments import unknown_parameter
from mcp_imagegen.server.tools.checks import checked
from tests.connect import Transport, connect_with
from tests.fakes.openai_images import FakeOpenAIImages
from tests.settings_file import write_settings

pytestmark = pytest.mark.anyio

CAPS = Capabilities(
    operations=frozenset({"generate", "edit"}),
    models=("m",),
    default_model="m",
    options=frozenset({"size", "aspect_ratio", "partial_images", "output_format", "output_compression"}),
    output_formats=("png", "webp"),
    max_images=2,
)


def stored_files(store: Path) -> list[Path]:
    images = store / "images"
    return sorted(path for path in images.rglob("*") if path.is_file()) if images.exists() else []


@pytest.fixture
def openai_settings(fake_openai: FakeOpenAIImages, tmp_path: Path) -> Settings:
    """A server that uses the OpenAI fake, as Settings (not environment variables)."""
    return Settings(
        store_dir=tmp_path / "store",
        openai=OpenAISettings(api_key=SecretStr(fake_openai.api_key), base_url=f"{fake_openai.url}/v1"),
    )


def test_settings_reach_a_spawned_server_unchanged(openai_settings: Settings, tmp_path: Path) -> None:
    assert load_settings(write_settings(openai_settings, tmp_path)) == openai_settings


@pytest.mark.parametrize("transport", ["memory", "stdio", "http"])
async def test_unknown_arguments_are_refused_by_name_before_any_request(
    transport: Transport, openai_settings: Settings, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    async with connect_with(transport, openai_settings, tmp_path) as client:
        tools = (await client.list_tools()).tools
        assert {tool.name for tool in tools} >= {"generate_image", "edit_image", "get_job", "list_providers"}
        for tool in tools:
            assert tool.input_schema.get("additionalProperties") is False, tool.name

        result = await client.call_tool(
            "generate_image", {"prompt": "a fox", "sizee": "13x7", "qualty": "ultra"}
        )
        assert result.is_error
        block = result.content[0]
        assert isinstance(block, TextContent)
        assert "unknown parameter 'sizee'; did you mean 'size'?" in block.text
        assert "unknown parameter 'qualty'; did you mean 'quality'?" in block.text

        edit = await client.call_tool(
            "edit_image", {"image": "imagegen://images/x", "prompt": "p", "mask_url": "m"}
        )
        assert edit.is_error and "unknown parameter 'mask_url'; did you mean 'mask'?" in str(edit.content)
        listing = await client.call_tool("list_providers", {"verbose": True})
        assert listing.is_error and "unknown parameter 'verbose'; this tool takes no parameters." in str(
            listing.content
        )
        job = await client.call_tool("get_job", {"job": "abc"})
        assert job.is_error and "did you mean 'job_id'?" in str(job.content)

        # The same call spelled right goes through.
        made = await client.call_tool(
            "generate_image", {"prompt": "a fox", "size": "1024x1024", "quality": "low"}
        )
        assert not made.is_error, made.content
    assert len(fake_openai.requests) == 1
    assert (fake_openai.last.json or {})["quality"] == "low"
    assert len(stored_files(tmp_path / "store")) == 1


def test_every_option_is_declared_once_and_named_in_the_option_names() -> None:
    declared = {
        name
        for options in (GenerateOptions, EditOptions, RecontextOptions, UpscaleOptions, SegmentOptions)
        for name, _, _ in option_fields(options)
    }
    assert declared == set(OPTION_NAMES)
    settings = load_settings()
    for name in BUILTIN:
        assert spec_for(name).capabilities(settings).options <= OPTION_NAMES, name
    # A request carries its operation's options: edit-only ones never reach a generate request.
    generate_fields = {name for name, _, _ in option_fields(GenerateRequest)}
    assert {"mask_mode", "reference_type", "input_fidelity"}.isdisjoint(generate_fields)
    assert {name for name, _, _ in option_fields(EditRequest)} >= {"mask_mode", "moderation", "size"}


def test_checks_read_the_declarations() -> None:
    request = checked(
        "p", CAPS, GenerateRequest(prompt="x", model="m", aspect_ratio=" 16 : 9 ", partial_images=0)
    )
    assert request.aspect_ratio == "16:9" and request.partial_images is None
    assert given_options(request) == {"aspect_ratio": "16:9"}
    with pytest.raises(
        UnsupportedOptionError, match="p does not support negative_prompt, seed; leave them out"
    ):
        checked("p", CAPS, GenerateRequest(prompt="x", model="m", seed=1, negative_prompt="no"))
    with pytest.raises(UnsupportedOptionError, match="p does not support mask_classes"):
        checked("p", CAPS, EditRequest(prompt="x", model="m", mask_classes=(1, 2)))
    with pytest.raises(UnsupportedOptionError, match="p makes png, webp, not jpeg"):
        checked("p", CAPS, GenerateRequest(prompt="x", model="m", output_format="jpeg"))
    with pytest.raises(InputError, match="at most 2 image"):
        checked("p", CAPS, GenerateRequest(prompt="x", model="m", n=3))
    with pytest.raises(InputError, match="set output_format too"):
        checked("p", CAPS, GenerateRequest(prompt="x", model="m", output_compression=3))
    # Where a provider's model families differ, the model's family decides.
    families = replace(
        CAPS,
        options=CAPS.options | {"seed", "negative_prompt"},
        families=(
            ModelFamily("Small", ("small-",), frozenset({"seed"})),
            ModelFamily("Big", ("big-",), frozenset({"seed", "negative_prompt"})),
        ),
    )
    with pytest.raises(
        UnsupportedOptionError, match=r"small-1 \(Small\) does not take negative_prompt; those are Big"
    ):
        checked("p", families, GenerateRequest(prompt="x", model="small-1", seed=2, negative_prompt="no"))
    assert (
        checked("p", families, GenerateRequest(prompt="x", model="big-1", negative_prompt="no")).model
        == "big-1"
    )
    # Options classes work without a request around them (upscale, segment).
    assert checked("p", CAPS, UpscaleOptions(output_format="webp")) == UpscaleOptions(output_format="webp")


def test_unknown_parameter_message() -> None:
    assert (
        unknown_parameter("qualty", ["quality", "size"])
        == "unknown parameter 'qualty'; did you mean 'quality'?"
    )
    assert unknown_parameter("zzz", ["size", "quality"]).endswith("valid parameters: quality, size.")
    assert unknown_parameter("x", []).endswith("this tool takes no parameters.")
