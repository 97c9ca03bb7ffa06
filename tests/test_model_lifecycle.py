"""What the server knows of the providers' models is data with a lifecycle (issue 27, points 1, 2
and 4): a shut-down model is never sent, a deprecated one works with a notice, a call can move
to the named replacement, and the defaults are alive and priced. Judged on a fixed day, so that
the calendar cannot change what these tests see."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from mcp_imagegen.config import ModelsSettings, OpenAISettings, Settings, load_settings
from mcp_imagegen.operations import Operation
from mcp_imagegen.providers import model_data
from mcp_imagegen.providers.model_data import ModelBook, load, shipped
from mcp_imagegen.server.app import build_server
from mcp_imagegen.usage.prices import Charge, PriceTable
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
DAY = datetime.date(2026, 12, 8)
OPERATION_OF: dict[model_data.Role, Operation] = {
    "generate": "generate",
    "edit": "edit",
    "describe": "describe",
    "mainline": "describe",
}
BARE = '[[model]]\nid = "m"\nproviders = ["p"]\nkind = "image"\nsource = "s"\nchecked = 2026-12-01\n'


@pytest.fixture(autouse=True)
def on_a_fixed_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcp_imagegen.server.tools.lifecycle.today", lambda: DAY)


def settings_for(fake: FakeOpenAIImages, tmp_path: Path, **models: Any) -> Settings:
    return Settings(
        store_dir=tmp_path / "store",
        openai=OpenAISettings(api_key=SecretStr(fake.api_key), base_url=f"{fake.url}/v1"),
        models=ModelsSettings(**models),
    )


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def sent_models(fake: FakeOpenAIImages) -> list[str]:
    return [str((request.json or {}).get("model")) for request in fake.requests if request.json]


# The data


def test_the_shipped_data_is_whole_and_every_default_is_alive_and_priced() -> None:
    book = shipped()
    table = PriceTable()
    roles: list[tuple[str, model_data.Role]] = [
        ("openai", "generate"),
        ("openai", "edit"),
        ("openai", "describe"),
        ("openai", "mainline"),
        ("azure", "generate"),
        ("google", "generate"),
        ("google", "describe"),
        ("vertex", "generate"),
        ("vertex", "describe"),
        ("mistral", "describe"),
        ("scaleway", "describe"),
    ]
    for provider, role in roles:
        model = book.default(provider, role)
        assert model is not None, f"no {role} default for {provider}"
        judged = book.judge(provider, model, DAY)
        assert judged is not None and judged.status == "active", (provider, role, model)
        operation = OPERATION_OF[role]
        charge = Charge(
            provider, model, operation, 1, "1024x1024", "high", input_tokens=1_000, output_tokens=8_192
        )
        estimate = table.estimate(charge)
        assert estimate.usd is not None and estimate.usd > 0, (provider, role, model, estimate.basis)
    for record in book.records:  # every source resolved to where it was read
        assert "://" in record.source or record.source.startswith("https"), (record.id, record.source)
        if record.price is not None:
            assert "://" in record.price.source, (record.id, record.price.source)
    # The settings' defaults are the data's.
    settings = load_settings()
    assert settings.openai.default_model == "gpt-image-2.6-sunburst"
    assert (settings.openai.vision_model, settings.openai.responses_model) == ("gpt-6-luna", "gpt-6.1-terra")
    assert settings.google.default_model == settings.vertex.default_model == "gemini-nano-banana-2.1"


def test_a_lifecycle_is_judged_on_the_day() -> None:
    book = shipped()
    before = book.judge("openai", "gpt-5-mini-2025-08-07", datetime.date(2026, 12, 10))
    after = book.judge("openai", "gpt-5-mini", datetime.date(2026, 12, 11))
    assert before is not None and before.status == "deprecated"
    assert before.notice("gpt-5-mini-2025-08-07") is not None
    assert "OpenAI shuts it down on 2026-12-11; move to gpt-6.1-terra" in (before.notice("x") or "")
    assert after is not None and after.status == "shut_down"
    assert after.refusal("gpt-5-mini").startswith(
        "gpt-5-mini was shut down by OpenAI on 2026-12-11; use gpt-6.1-terra. Nothing was sent."
    )
    # Azure keeps its own calendar.
    azure = book.judge("azure", "gpt-5-mini", datetime.date(2026, 12, 11))
    assert azure is not None and azure.status == "deprecated"
    assert book.judge("openai", "my-azure-deployment", DAY) is None, "unknown names are not judged"
    assert "gpt-image-1.5" not in book.models("openai", "image", DAY)


def test_the_data_refuses_what_cannot_be_right() -> None:
    with pytest.raises(ValueError, match="a shut-down model needs its shutdown date"):
        load([BARE.replace('source = "s"', 'status = "shut_down"\nsource = "s"')])
    with pytest.raises(ValueError, match="m is listed twice for p"):
        load([BARE, BARE])
    assert isinstance(load([BARE]), ModelBook)


# Calls through the server


async def test_a_shut_down_model_is_refused_before_any_request(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    async with Client(build_server(settings_for(fake_openai, tmp_path))) as client:
        refused = await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-1.5"})
        providers = (await client.call_tool("list_providers", {})).structured_content or {}
    assert refused.is_error and fake_openai.requests == []
    assert text_of(refused).startswith(
        "Error executing tool generate_image: gpt-image-1.5 was shut down by OpenAI on 2026-12-01; use "
        "gpt-image-2.6-flare or gpt-image-2.6-sunburst. Nothing was sent. (Source: https://developers.openai.com"
    )
    openai = next(info for info in providers["providers"] if info["name"] == "openai")
    assert openai["default_model"] == "gpt-image-2.6-sunburst"
    assert "gpt-image-1.5" not in openai["models"] and "gpt-image-2.6-flare" in openai["models"]


async def test_a_retired_model_can_go_to_its_replacement_and_the_result_says_so(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    async with Client(build_server(settings_for(fake_openai, tmp_path, replace_retired=True))) as client:
        moved = await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-1-mini"})
    assert not moved.is_error, text_of(moved)
    assert sent_models(fake_openai) == ["gpt-image-2.6-flare"]
    facts = moved.structured_content or {}
    assert facts["model"] == "gpt-image-2.6-flare"
    said = (
        "gpt-image-1-mini was shut down by OpenAI on 2026-12-01: this call went to gpt-image-2.6-flare, "
        "its replacement ([models] replace_retired)."
    )
    assert facts["notices"] == [said]
    assert isinstance(moved.content[0], TextContent) and moved.content[0].text == "Notice: " + said


async def test_a_project_may_allow_a_retired_model(fake_openai: FakeOpenAIImages, tmp_path: Path) -> None:
    async with Client(
        build_server(settings_for(fake_openai, tmp_path, allow_retired=["gpt-image-1.5"]))
    ) as client:
        sent = await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-1.5"})
    assert not sent.is_error, text_of(sent)
    assert sent_models(fake_openai) == ["gpt-image-1.5"]


async def test_a_deprecated_model_works_and_its_result_gives_the_date(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    async with Client(build_server(settings_for(fake_openai, tmp_path))) as client:
        made = await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-2"})
        described = await client.call_tool(
            "describe_image",
            {"images": [made.structured_content["images"][0]["uri"]], "model": "gpt-4o"},
        )
    assert not made.is_error and sent_models(fake_openai)[0] == "gpt-image-2"
    notice = (made.structured_content or {})["notices"]
    assert notice == [
        "gpt-image-2 is deprecated: OpenAI shuts it down on 2027-02-10; move to gpt-image-2.6-sunburst or "
        "gpt-image-2.6-flare (source: https://github.com/indranilbanerjee/contentforge/releases/tag/v4.7.1 "
        "(3rd; vendor pages read 2026-12-01))."
    ]
    assert not described.is_error, text_of(described)
    assert (described.structured_content or {})["notices"][0].startswith(
        "gpt-4o is deprecated: OpenAI shuts it down on 2027-01-14; move to gpt-6-luna"
    )


async def test_on_its_shutdown_day_a_default_of_yesterday_is_refused(
    fake_openai: FakeOpenAIImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server configured with gpt-5-mini keeps working until OpenAI shuts it down, then refuses it
    without a new release: the shutdown date is in the data."""
    monkeypatch.setattr("mcp_imagegen.server.tools.lifecycle.today", lambda: datetime.date(2026, 12, 11))
    settings = settings_for(fake_openai, tmp_path)
    settings.openai.vision_model = "gpt-5-mini"
    settings.openai.image_api = "responses"
    settings.openai.responses_model = "gpt-5-mini"
    async with Client(build_server(settings)) as client:
        described = await client.call_tool(
            "describe_image", {"images": ["data:image/png;base64,iVBORw0KGgo="]}
        )
        generated = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert (
        described.is_error
        and "gpt-5-mini was shut down by OpenAI on 2026-12-11; use gpt-6.1-terra" in text_of(described)
    )
    assert generated.is_error and (
        "the Responses API's mainline model (OPENAI_RESPONSES_MODEL, or AZURE_OPENAI_RESPONSES_DEPLOYMENT): "
        "gpt-5-mini was shut down by OpenAI on 2026-12-11" in text_of(generated)
    )
    assert fake_openai.requests == []


async def test_a_model_the_provider_no_longer_serves_says_how_to_check(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    """A model the data does not yet know is gone is sent; the provider's 404 `model_not_found`
    becomes an error that names the model and says how to check."""
    fake_openai.gone.add("gpt-image-2.7-preview")
    async with Client(build_server(settings_for(fake_openai, tmp_path))) as client:
        gone = await client.call_tool("generate_image", {"prompt": "a fox", "model": "gpt-image-2.7-preview"})
    said = text_of(gone)
    assert gone.is_error and "openai returned an error (HTTP 404, model_not_found)" in said
    assert "The model `gpt-image-2.7-preview` does not exist or you do not have access to it." in said
    assert "`mcp-imagegen models check` compares the provider's live list with the model data" in said


async def test_transparency_goes_only_to_models_that_make_it(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    async with Client(build_server(settings_for(fake_openai, tmp_path))) as client:
        made = await client.call_tool(
            "generate_image", {"prompt": "an icon", "background": "transparent", "quality": "xhigh"}
        )
        refused = await client.call_tool(
            "generate_image", {"prompt": "an icon", "model": "gpt-image-2", "background": "transparent"}
        )
    assert not made.is_error, text_of(made)
    sent = fake_openai.requests[0].json or {}
    assert (sent["model"], sent["background"], sent["quality"]) == (
        "gpt-image-2.6-sunburst",
        "transparent",
        "xhigh",
    )
    assert refused.is_error and "gpt-image-2 does not make transparent backgrounds" in text_of(refused)
    assert len(fake_openai.requests) == 1
