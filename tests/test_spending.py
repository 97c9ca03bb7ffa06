"""What calls cost: the price table, the usage ledger and its reports (tool and command line),
daily budgets that hold under concurrency and reset at midnight UTC, and the confirmation asked
of the user above a threshold, on both protocol versions."""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult
from pydantic import SecretStr

from mcp_imagegen.config import OpenAISettings, Settings
from mcp_imagegen.errors import BudgetError
from mcp_imagegen.providers.base import Mainline, MainlineUse, Tokens
from mcp_imagegen.server.app import build_server
from mcp_imagegen.usage.ledger import UsageLedger
from mcp_imagegen.usage.prices import Charge, Estimate, Metering, PriceEntry, PriceTable
from tests.connect import child_env
from tests.fakes.openai_images import FakeOpenAIImages
from tests.waiting import eventually

pytestmark = pytest.mark.anyio
PRICE = 0.01
TEST_PRICE = PriceEntry(
    providers=("openai",),
    model="gpt-image-2.6-sunburst",
    usd_per_image=PRICE,
    source="a test's own price",
    as_of=datetime.date(2026, 11, 30),
)


def settings_for(fake: FakeOpenAIImages, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        store_dir=tmp_path / "store",
        openai=OpenAISettings(
            api_key=SecretStr(fake.api_key), base_url=f"{fake.url}/v1", default_model="gpt-image-2.6-sunburst"
        ),
        prices=[TEST_PRICE],
        **extra,
    )


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def image_requests(fake: FakeOpenAIImages) -> int:
    return sum(1 for request in fake.requests if "/images/" in request.path)


# The price table


def test_prices_pick_the_most_specific_entry_and_the_dearest_when_left_open() -> None:
    table = PriceTable()  # the model data's prices (providers/*/models.toml)
    medium = table.estimate(Charge("azure", "gpt-image-1.5", "generate", 2, "1024x1024", "medium"))
    assert medium.usd == pytest.approx(0.068)
    assert "$0.034" in medium.basis and "2025-12-16" in medium.basis and "openai.com" in medium.basis
    open_ended = table.estimate(Charge("azure", "gpt-image-1.5", "edit", 1, None, "auto"))
    assert open_ended.usd == pytest.approx(0.2) and "dearest" in open_ended.basis
    assert table.estimate(Charge("azure", "gpt-image-1-mini", "generate", 1, "1024x1024", "low")).usd == 0.005
    # Billed by tokens: the bound of one image at its quality and size (7,024 tokens at
    # 1024x1024 high for gpt-image-2), its prompt in at the image-input rate.
    tokens = table.estimate(
        Charge("openai", "gpt-image-2", "generate", 1, "1024x1024", "high", input_tokens=100)
    )
    assert tokens.usd == pytest.approx((100 * 8 + 7_024 * 30) / 1e6)
    assert "at most about 100 input and 7,024 output tokens" in tokens.basis
    larger = table.estimate(
        Charge("openai", "gpt-image-2", "generate", 1, "2048x2048", "high", input_tokens=0)
    )
    assert larger.usd == pytest.approx(
        math.ceil(7_024 * (2e6 + 2048 * 2048) / (2e6 + 1024 * 1024)) * 30 / 1e6
    )
    unknown = table.estimate(Charge("openai", "some-new-model", "generate"))
    assert unknown.usd is None and "no price is known" in unknown.basis
    assert table.estimate(Charge("local", "u2netp", "segment")).usd == 0.0
    overridden = PriceTable([TEST_PRICE]).estimate(
        Charge("openai", "gpt-image-2.6-sunburst", "generate", 3, "1024x1024", "high")
    )
    assert overridden.usd == pytest.approx(0.03) and "a test's own price" in overridden.basis
    # A describe call is estimated before and settled on the tokens reported.
    unbounded = table.estimate(Charge("google", "gemini-2.5-flash", "describe", 1))
    assert unbounded.usd is None and "nothing bounds its output" in unbounded.basis
    describe = Charge("google", "gemini-2.5-flash", "describe", 1, input_tokens=2_000, output_tokens=1_000)
    assert table.estimate(describe).usd == pytest.approx((2_000 * 0.30 + 1_000 * 2.50) / 1e6)
    settled = table.settle(describe, Metering(tokens=Tokens(1_000_000, 100_000)))
    assert settled.usd == pytest.approx(0.30 + 0.25)


def test_a_price_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="give usd_per_image"):
        PriceEntry(providers=("x",), model="m", source="s", as_of=datetime.date(2026, 1, 1))


# The ledger and budgets


async def test_64_reservations_at_once_against_a_budget_for_10(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path / "usage.sqlite3")
    charge = Charge("openai", "gpt-image-2.6-sunburst", "generate")
    admitted: list[int] = []
    refused: list[str] = []

    async def one() -> None:
        try:
            reservation = await ledger.reserve("alice", "generate_image", charge, Estimate(0.1, "test"), 1.0)
            admitted.append(reservation.row_id)
        except BudgetError as exc:
            refused.append(str(exc))

    async with anyio.create_task_group() as group:
        for _ in range(64):
            group.start_soon(one)
    assert (len(admitted), len(refused)) == (10, 54)
    assert "spent $1.00 of the $1.00 daily budget ($0.00 left)" in refused[0]
    # Bob's budget is his own.
    await ledger.reserve("bob", "generate_image", charge, Estimate(0.1, "test"), 1.0)


async def test_the_budget_day_ends_at_midnight_utc(tmp_path: Path) -> None:
    now = [datetime.datetime(2026, 11, 30, 23, 59, 0, tzinfo=datetime.timezone.utc).timestamp()]
    ledger = UsageLedger(tmp_path / "usage.sqlite3", clock=lambda: now[0])
    charge = Charge("openai", "gpt-image-2.6-sunburst", "generate")
    first = await ledger.reserve("alice", "generate_image", charge, Estimate(0.6, "test"), 1.0)
    await ledger.settle(first, "succeeded", Estimate(0.6, "test"), images=1)
    with pytest.raises(BudgetError) as refused:
        await ledger.reserve("alice", "generate_image", charge, Estimate(0.6, "test"), 1.0)
    message = str(refused.value)
    assert "spent $0.60 of the $1.00 daily budget ($0.40 left)" in message
    assert (
        "estimated at $0.60" in message
        and "resets at midnight UTC, 2026-12-01T00:00:00Z (in 1 min)" in message
    )
    now[0] += 120  # 00:01 UTC the next day
    await ledger.reserve("alice", "generate_image", charge, Estimate(0.6, "test"), 1.0)
    state = await ledger.budget("alice", 1.0)
    assert (
        state.spent_usd == pytest.approx(0.6) and state.resets_at.isoformat() == "2026-12-02T00:00:00+00:00"
    )


async def test_a_call_settles_once(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path / "usage.sqlite3")
    charge = Charge("openai", "gpt-image-2.6-sunburst", "generate")
    reservation = await ledger.reserve("alice", "generate_image", charge, Estimate(0.5, "test"), None)
    await ledger.settle(reservation, "cancelled", Estimate(0.0, "never sent"))
    await ledger.settle(reservation, "failed", Estimate(0.4, "a late second word"))
    [line] = await ledger.report("alice", "2000-01-01", "2999-12-31")
    assert (line.cost_usd, line.failed) == (0.0, 0)


async def test_an_unpriced_call_is_refused_under_a_budget(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path / "usage.sqlite3")
    unknown = PriceTable().estimate(Charge("openai", "brand-new-model", "generate"))
    with pytest.raises(BudgetError, match="cannot be priced"):
        await ledger.reserve(
            "alice", "generate_image", Charge("openai", "brand-new-model", "generate"), unknown, 5.0
        )
    await ledger.reserve(
        "alice", "generate_image", Charge("openai", "brand-new-model", "generate"), unknown, None
    )


# Through the server


async def test_budget_under_64_concurrent_calls_sends_exactly_10(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    settings = settings_for(fake_openai, tmp_path, budget_usd_per_day=10 * PRICE)
    results: list[CallToolResult] = []
    async with Client(build_server(settings)) as client:

        async def one(index: int) -> None:
            results.append(
                await client.call_tool("generate_image", {"prompt": f"fox {index}", "size": "1024x1024"})
            )

        async with anyio.create_task_group() as group:
            for index in range(64):
                group.start_soon(one, index)
        assert image_requests(fake_openai) == 10
        succeeded = [result for result in results if not result.is_error]
        refused = [result for result in results if result.is_error]
        assert (len(succeeded), len(refused)) == (10, 54)
        assert all("budget:" in text_of(result) for result in refused)
        assert "was not sent" in text_of(refused[0]) and "resets at midnight UTC" in text_of(refused[0])
        for result in succeeded:
            assert result.structured_content is not None
            assert result.structured_content["cost"]["estimated_usd"] == pytest.approx(PRICE)
        # Refused calls send nothing, now or later today.
        again = await client.call_tool("generate_image", {"prompt": "one more"})
        assert again.is_error and image_requests(fake_openai) == 10
        usage = await client.call_tool("get_usage", {})
        report = usage.structured_content
        assert report is not None and report["calls"] == 10 and report["total_cost_usd"] == pytest.approx(0.1)
        assert report["budget"]["remaining_usd"] == 0 and report["budget"]["limit_usd"] == pytest.approx(0.1)


async def test_usage_tool_and_command_line_agree_with_the_provider(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    settings = settings_for(fake_openai, tmp_path)
    async with Client(build_server(settings)) as client:
        two = await client.call_tool("generate_image", {"prompt": "two foxes", "n": 2})
        assert two.structured_content is not None
        assert two.structured_content["cost"]["estimated_usd"] == pytest.approx(2 * PRICE)
        mirrored = json.loads(getattr(two.content[-1], "text", ""))  # for hosts without structured content
        assert mirrored["cost"] == two.structured_content["cost"]
        fake_openai.fail_next.append(
            (400, {"error": {"message": "bad prompt", "type": "invalid_request_error"}})
        )
        failed = await client.call_tool("generate_image", {"prompt": "fails"})
        assert failed.is_error
        # Next month's model: unknown to the data, so it passes through, at an unknown price.
        unpriced = await client.call_tool("generate_image", {"prompt": "new model", "model": "gpt-image-3"})
        assert unpriced.structured_content is not None
        assert unpriced.structured_content["cost"]["estimated_usd"] is None, "unknown, never zero"
        assert "no price is known" in unpriced.structured_content["cost"]["basis"]
        report = (await client.call_tool("get_usage", {})).structured_content
    assert report is not None
    recorded = image_requests(fake_openai)
    assert report["calls"] == recorded == 3
    lines = {line["model"]: line for line in report["lines"]}
    assert lines["gpt-image-2.6-sunburst"]["calls"] == 2 and lines["gpt-image-2.6-sunburst"]["failed"] == 1
    assert lines["gpt-image-2.6-sunburst"]["images"] == 2 and lines["gpt-image-2.6-sunburst"][
        "cost_usd"
    ] == pytest.approx(2 * PRICE)
    assert lines["gpt-image-3"]["unpriced_calls"] == 1 and report["unpriced_calls"] == 1
    assert report["total_cost_usd"] == pytest.approx(2 * PRICE)
    as_json = await anyio.to_thread.run_sync(usage_command, tmp_path, "--json")
    printed = json.loads(as_json.stdout)
    assert printed["principal"] == "*" and printed["calls"] == 3
    assert printed["lines"] == report["lines"]
    table = await anyio.to_thread.run_sync(usage_command, tmp_path, "--principal", "local")
    assert "gpt-image-2.6-sunburst" in table.stdout
    assert "Total: 3 call(s), $0.0200 estimated, plus 1 call(s) of unknown cost" in table.stdout
    nobody = await anyio.to_thread.run_sync(usage_command, tmp_path, "--principal", "bob")
    assert "no provider calls" in nobody.stdout
    bad = await anyio.to_thread.run_sync(usage_command, tmp_path, "--since", "yesterday")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


def usage_command(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`mcp-imagegen usage ...` as a person would run it, on the test's store."""
    env = child_env({"IMAGEGEN_STORE_DIR": str(folder / "store")})
    command = [sys.executable, "-m", "mcp_imagegen", "usage", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


# Confirmation


@asynccontextmanager
async def confirming_client(
    settings: Settings, mode: str, answer: str | None
) -> AsyncIterator[tuple[Client, list[ElicitRequestParams]]]:
    asked: list[ElicitRequestParams] = []

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params)
        if answer == "accept":
            return ElicitResult(action="accept", content={"proceed": True})
        return ElicitResult(action=answer)

    callback = elicit if answer is not None else None
    async with Client(build_server(settings), mode=mode, elicitation_callback=callback) as client:
        yield client, asked


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("answer", ["accept", "decline", "cancel", None])
async def test_confirmation_above_the_threshold(
    fake_openai: FakeOpenAIImages, tmp_path: Path, mode: str, answer: str | None
) -> None:
    settings = settings_for(fake_openai, tmp_path, confirm_above_usd=1.5 * PRICE)
    async with confirming_client(settings, mode, answer) as (client, asked):
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        cheap = await client.call_tool("generate_image", {"prompt": "one fox"})
        assert not cheap.is_error and asked == [] and image_requests(fake_openai) == 1
        dear = await client.call_tool("generate_image", {"prompt": "three foxes", "n": 3})
        if answer is None:  # a client without elicitation goes ahead: the budget is the guard
            assert not dear.is_error and image_requests(fake_openai) == 2
            return
        [question] = asked
        assert "about $0.03" in question.message and "3 image(s)" in question.message
        assert "proceed" in json.dumps(question.model_dump(mode="json"))
        if answer == "accept":
            assert not dear.is_error and image_requests(fake_openai) == 2
            assert dear.structured_content is not None and len(dear.structured_content["images"]) == 3
        else:
            assert dear.is_error and image_requests(fake_openai) == 1
            word = "declined" if answer == "decline" else "dismissed"
            assert f"the user {word} its estimated cost. Nothing was sent to openai" in text_of(dear)


async def test_cancelled_calls_settle_their_reservation(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    """A call cancelled while queued for a provider slot was never sent: its reservation is released.
    One cancelled while the provider works keeps its estimate (the provider may charge for it)."""
    fake_openai.delay_s = 30.0
    settings = settings_for(fake_openai, tmp_path, max_concurrent_provider_calls=1, budget_usd_per_day=1.0)
    async with Client(build_server(settings)) as client:
        running = await client.call_tool("generate_image", {"prompt": "slow", "n": 2, "wait_seconds": 0})
        await eventually(lambda: fake_openai.in_flight == 1, "the first call reaches the provider")
        queued = await client.call_tool("generate_image", {"prompt": "queued", "n": 3, "wait_seconds": 0})
        ids = [
            result.structured_content["job_id"] for result in (running, queued) if result.structured_content
        ]
        assert queued.structured_content is not None
        assert queued.structured_content["cost"]["estimated_usd"] == pytest.approx(3 * PRICE)
        report = (await client.call_tool("get_usage", {})).structured_content
        assert report is not None and report["budget"]["spent_usd"] == pytest.approx(5 * PRICE), (
            "both reserved"
        )
        costs = []
        for job_id in reversed(ids):
            stopped = await client.call_tool("cancel_job", {"job_id": job_id})
            assert stopped.structured_content is not None
            assert stopped.structured_content["status"] == "cancelled"
            costs.append(stopped.structured_content["cost"]["estimated_usd"])
        assert costs == [0.0, pytest.approx(2 * PRICE)], "what cancel_job shows is what the ledger keeps"
        report = (await client.call_tool("get_usage", {})).structured_content
    assert report is not None and image_requests(fake_openai) == 1
    assert report["budget"]["spent_usd"] == pytest.approx(2 * PRICE), (
        "the queued call's reservation is released"
    )
    assert [(line["calls"], line["failed"]) for line in report["lines"]] == [(2, 0)]


def test_a_token_priced_call_is_reserved_at_its_bounds_and_an_overrun_is_said() -> None:
    """gpt-5-mini at $0.25 and $2 per million tokens: reserved at the input estimate and the output
    cap; settled on the reported tokens; above the reservation only with the ledger saying so."""
    table = PriceTable()
    charge = Charge("openai", "gpt-5-mini", "describe", 1, input_tokens=2_000, output_tokens=1_000)
    assert table.estimate(charge).usd == pytest.approx(0.0025)
    within = table.settle(charge, Metering(tokens=Tokens(1_500, 1_000)))
    assert within.usd == pytest.approx(0.002375) and "reservation" not in within.basis
    over = table.settle(charge, Metering(tokens=Tokens(1_500, 5_000)))
    assert over.usd == pytest.approx(0.010375)
    assert over.basis.startswith("over its reservation of $0.0025: the provider reported more tokens")


def test_a_token_priced_image_model_is_reserved_per_image_at_its_bound() -> None:
    """gpt-image-2.x bills tokens and takes no output cap: its entry bounds each image's output
    tokens, the reservation holds that bound for every image asked for, and a reply that reports
    more is settled as reported, saying so."""
    entry = PriceEntry(
        providers=("openai",),
        model="gpt-image-2.6-flare",
        usd_per_million_input_tokens=5.0,
        usd_per_million_output_tokens=30.0,
        max_output_tokens_per_image=8_000,
        source="test",
        as_of=datetime.date(2026, 11, 4),
    )
    table = PriceTable([entry])
    charge = Charge("openai", "gpt-image-2.6-flare", "generate", 2, input_tokens=1_000)
    assert table.estimate(charge).usd == pytest.approx((1_000 * 5 + 16_000 * 30) / 1e6)
    within = table.settle(charge, Metering(images=2, tokens=Tokens(900, 12_000)))
    assert within.usd == pytest.approx((900 * 5 + 12_000 * 30) / 1e6)
    over = table.settle(charge, Metering(images=2, tokens=Tokens(900, 20_000)))
    assert over.basis.startswith("over its reservation of $0.485")
    unbounded = PriceTable([entry.model_copy(update={"max_output_tokens_per_image": None})])
    refused = unbounded.estimate(charge)
    assert refused.usd is None and "max_output_tokens_per_image" in refused.basis


def test_a_reserved_mainline_that_did_not_run_costs_nothing() -> None:
    """An edit of a stored image is reserved with the mainline model (it may continue a response);
    if the call went to the Images API after all, only the image is paid for."""
    table = PriceTable()
    charge = Charge(
        "azure",
        "gpt-image-1.5",
        "edit",
        1,
        "1024x1024",
        "low",
        input_tokens=1_600,
        mainline=Mainline("gpt-5-mini", 4096, may_continue=True),
    )
    reserved = table.estimate(charge)
    mainline_bound = ((500 + 1_600 + 3_700) * 0.25 + 4096 * 2.0) / 1e6
    assert reserved.usd == pytest.approx(0.009 + mainline_bound, abs=1e-6)
    assert "plus mainline model gpt-5-mini: at most about 5,800 input" in reserved.basis
    settled = table.settle(charge, Metering(images=1))
    assert settled.usd == pytest.approx(0.009) and "no mainline model ran" in settled.basis
    ran = table.settle(charge, Metering(images=1, mainline=MainlineUse("gpt-5-mini", Tokens(3_000, 200))))
    assert ran.usd == pytest.approx(0.009 + (3_000 * 0.25 + 200 * 2.0) / 1e6, abs=1e-6)


def test_tokens_are_read_in_every_providers_names() -> None:
    assert Tokens.reported({"input_tokens": 3, "output_tokens": 4}) == Tokens(3, 4)
    assert Tokens.reported({"prompt_tokens": 3, "completion_tokens": 4}) == Tokens(3, 4)
    gemini = {"promptTokenCount": 3, "candidatesTokenCount": 1290, "thoughtsTokenCount": 200}
    assert Tokens.reported(gemini) == Tokens(3, 1490)  # thinking is billed as output
    assert Tokens.reported({"total_tokens": 7}) is None and Tokens.reported(None) is None
