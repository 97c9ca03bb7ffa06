"""One person on a shared server cannot hurt the others: the reproductions of the security review
(issue 28), each run against a real server over Streamable HTTP with two named tokens, asserting
what a user or operator sees (the reply, the provider's requests, the ledger, the log, the
server's peak memory)."""

from __future__ import annotations

import base64
import io
import random
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult
from PIL import Image

from tests.conftest import png_bytes
from tests.connect import http_server_process
from tests.fakes.issuer import ISSUER, issuer
from tests.fakes.loopback import free_port
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
TOKENS = {name: f"{name}-token-0123456789abcdef" for name in ("alice", "bob")}


@dataclass
class Shared:
    """A running shared server: its URL, its process (for its memory), and where it keeps things."""

    url: str
    process: subprocess.Popen[bytes]
    store: Path
    logged: list[bytes]
    """What the server wrote to stderr, read as it comes: an undrained pipe would fill and block
    the server's logging, and with it the server."""
    drain: threading.Thread

    def peak_rss_mib(self) -> float:
        """The process's peak resident memory so far (VmHWM), in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> str:
        """Stop the server and return what it logged."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.drain.join(timeout=10)
        return b"".join(self.logged).decode()

    def ledger(self) -> list[dict[str, Any]]:
        """Every call's row in the usage ledger, by column name."""
        with sqlite3.connect(self.store / "usage.sqlite3") as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM calls ORDER BY id")]


@contextmanager
def shared_server(
    fake: FakeOpenAIImages, tmp_path: Path, *, port: int | None = None, **extra: str
) -> Iterator[Shared]:
    env = {
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        "OPENAI_API_KEY": fake.api_key,
        "OPENAI_BASE_URL": f"{fake.url}/v1",
        "IMAGEGEN_AUTH_TOKENS": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
        **extra,
    }
    with http_server_process("http", env, port=port) as (url, process):
        logged: list[bytes] = []
        stream = process.stderr
        assert stream is not None
        drain = threading.Thread(target=lambda: logged.extend(iter(stream.readline, b"")), daemon=True)
        drain.start()
        yield Shared(url, process, tmp_path / "store", logged, drain)


@asynccontextmanager
async def with_token(server: Shared, token: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=300)
    )
    async with http, Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
        yield client


@asynccontextmanager
async def as_user(server: Shared, who: str) -> AsyncIterator[Client]:
    async with with_token(server, TOKENS[who]) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def edit_requests(fake: FakeOpenAIImages) -> int:
    return sum(1 for request in fake.requests if request.path.endswith("/images/edits"))


def big_png(side: int) -> str:
    """A data URI of a one-colour PNG of side x side: small to send (about 0.3 MB at 8192), large
    to decode (256 MiB as RGBA)."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (12, 80, 140)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def noisy_png(side: int) -> str:
    """A data URI of a PNG of random pixels: as large to send as it is to decode (about 160 kB
    at 200)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(side).randbytes(side * side * 3)).save(
        buffer, format="PNG"
    )
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# Point 1: a budget bounds what token-priced calls spend


async def test_concurrent_describes_never_spend_past_the_budget(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    """64 describe calls at once against a $0.02 day, from a model that writes 20,000 tokens when
    not capped (gpt-6-luna: $0.10 and $0.50 per million tokens, so about $0.0043 reserved per call
    at the 8,192-token cap): every request carries the output cap, each call is reserved at that
    cap, and what settles stays within the budget."""
    fake_openai.chat.answer_tokens = 20_000
    image = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    with shared_server(
        fake_openai, tmp_path, IMAGEGEN_BUDGET_USD_PER_DAY="0.02", IMAGEGEN_RATE_LIMIT_PER_MINUTE="1000"
    ) as server:
        async with as_user(server, "bob") as bob:
            answers: list[CallToolResult] = []

            async def describe() -> None:
                answers.append(
                    await bob.call_tool("describe_image", {"images": [image], "provider": "openai"})
                )

            async with anyio.create_task_group() as group:
                for _ in range(64):
                    group.start_soon(describe)
            capped = await bob.call_tool(
                "describe_image", {"images": [image], "provider": "openai", "max_tokens": 100}
            )
        rows = server.ledger()
    sent = [request.json for request in fake_openai.chat.requests]
    assert sent and all(body["max_completion_tokens"] == 8192 for body in sent[:-1])
    assert sent[-1]["max_completion_tokens"] == 100 and not capped.is_error, text_of(capped)
    succeeded = [answer for answer in answers if not answer.is_error]
    refused = [text_of(answer) for answer in answers if answer.is_error]
    assert 1 <= len(succeeded) <= 6 and len(succeeded) == len(sent) - 1
    assert all("daily budget" in text for text in refused), refused[:2]
    spent = sum(row["cost_usd"] or 0.0 for row in rows)
    assert spent <= 0.02 + 1e-9, f"spent ${spent:.4f} of a $0.02 budget"
    assert all(row["cost_usd"] <= row["estimate_usd"] for row in rows), rows


async def test_a_responses_call_reserves_its_mainline_model_and_caps_it(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    """The Responses API runs a mainline model (gpt-6.1-terra: $1 and $5 per million tokens) as well
    as the image model (gpt-image-2.6-sunburst: $8 in, $30 out, at most 28,096 tokens for a
    1024x1024 high image): every request caps the mainline's output, the reservation holds both
    bounds, and the call settles on the tokens the reply reports for each."""
    prompt = {
        "prompt": "a lighthouse",
        "model": "gpt-image-2.6-sunburst",
        "quality": "high",
        "size": "1024x1024",
    }
    with shared_server(
        fake_openai,
        tmp_path,
        IMAGEGEN_BUDGET_USD_PER_DAY="1",
        OPENAI_IMAGE_API="responses",
        OPENAI_RESPONSES_MODEL="gpt-6.1-terra",
    ) as server:
        async with as_user(server, "bob") as bob:
            made = await bob.call_tool("generate_image", prompt)
            assert not made.is_error, text_of(made)
            sent = fake_openai.last.json or {}
            fake_openai.responses.mainline_output_tokens = 5_000  # a model that thinks past the cap
            stopped = await bob.call_tool("generate_image", prompt)
        rows = server.ledger()
    assert sent["max_output_tokens"] == 4096 and sent["model"] == "gpt-6.1-terra"
    first, second = rows
    prompt_in = 6  # the prompt at one token per two bytes
    image_bound = (prompt_in * 8 + 28_096 * 30) / 1e6
    mainline_bound = ((500 + prompt_in) * 1 + 4096 * 5) / 1e6  # the request's framing, and the cap
    assert first["estimate_usd"] == pytest.approx(image_bound + mainline_bound, abs=1e-6)
    # The fake bills the image 60 tokens in and 1,056 out, the mainline 120 in and 40 out.
    assert first["cost_usd"] == pytest.approx((60 * 8 + 1056 * 30 + 120 * 1 + 40 * 5) / 1e6, abs=1e-6)
    assert "mainline model gpt-6.1-terra: 120 input and 40 output tokens" in first["basis"]
    assert stopped.is_error and "used all of its 4096 output tokens" in text_of(stopped)
    assert (second["outcome"], second["cost_usd"]) == ("failed", 0.0)


async def test_a_mainline_model_without_a_price_is_refused_under_a_budget(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    with shared_server(
        fake_openai,
        tmp_path,
        IMAGEGEN_BUDGET_USD_PER_DAY="1",
        OPENAI_IMAGE_API="responses",
        OPENAI_RESPONSES_MODEL="house-mainline",
    ) as server:
        async with as_user(server, "bob") as bob:
            refused = await bob.call_tool("generate_image", {"prompt": "a cat"})
    assert refused.is_error and not fake_openai.requests
    assert "no price is known for openai house-mainline generate" in text_of(refused), text_of(refused)


# Point 2: unknown argument names cost the server little, whatever their number


async def test_a_flood_of_unknown_names_gets_a_short_answer_and_a_short_log(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    with shared_server(fake_openai, tmp_path, IMAGEGEN_RATE_LIMIT_PER_MINUTE="100") as server:
        async with as_user(server, "bob") as bob:
            arguments: dict[str, Any] = {"prompt": "a cat"}
            arguments |= {f"unknown_parameter_number_{i}": i for i in range(100_000)}
            with pytest.raises(MCPError) as unread:  # refused before the SDK parses it
                await bob.call_tool("generate_image", arguments)
            assert len(unread.value.error.message) < 400, unread.value.error.message
            assert "commas and colons, more than any valid call (50,000)" in unread.value.error.message

            arguments = {"prompt": "a cat", **{f"unknown_parameter_number_{i}": i for i in range(2000)}}
            flood = await bob.call_tool("generate_image", arguments)  # over 64 KiB, so looked at first
            assert flood.is_error
            reply = text_of(flood)
            assert len(reply) < 400, reply
            assert "2,001 arguments is more than any tool takes (at most 64)" in reply
            assert "Nothing was sent to a provider" in reply

            some = {"prompt": "a cat", "qualty": "high", **{f"extra{i}": 1 for i in range(40)}}
            named = text_of(await bob.call_tool("generate_image", some))
            assert "unknown parameter 'qualty'; did you mean 'quality'?" in named
            assert "unknown parameter 'extra0'. unknown parameter 'extra1'." in named
            assert "'extra2'" not in named and "And 38 more unknown parameters." in named
            assert named.count("Valid parameters: ") == 1 and "quality, size, wait_seconds." in named

            deep = {"prompt": "a cat", "response_format": [[0] * 1000 for _ in range(20)]}
            assert "more than 10,000 values" in text_of(await bob.call_tool("generate_image", deep))

            bad_values = {"images": ["x"] * 16, "question": "", "max_tokens": -1}
            values = text_of(await bob.call_tool("describe_image", bad_values))
            assert len(values) < 600, values
        async with as_user(server, "alice") as alice:  # the server kept serving
            made = await alice.call_tool("generate_image", {"prompt": "a cat"})
            assert not made.is_error, text_of(made)
        assert fake_openai.requests and all("extra" not in str(r.body) for r in fake_openai.requests)
        log = server.stop()
    assert len(log) < 64 * 1024, f"{len(log):,} bytes of log"
    assert "unknown_parameter_number_99999" not in log


async def test_the_rate_limit_refuses_before_the_arguments_are_read(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    with shared_server(fake_openai, tmp_path, IMAGEGEN_RATE_LIMIT_PER_MINUTE="2") as server:
        async with as_user(server, "bob") as bob:
            garbage = {"prompt": "a cat", **{f"junk{i}": i for i in range(1000)}}
            answers = [text_of(await bob.call_tool("generate_image", garbage)) for _ in range(3)]
            # Over the limit, a large request is refused before it is read, and bob's session lives on.
            large = {"prompt": "a cat", "image": noisy_png(200)}
            with pytest.raises(MCPError) as unread:
                await bob.call_tool("edit_image", large)
            assert (await bob.list_tools()).tools
        assert "more than any tool takes" in answers[0] and "more than any tool takes" in answers[1]
        assert answers[2].startswith("Error executing tool generate_image: rate limit: at most 2 image calls")
        assert unread.value.error.message.startswith("rate limit: at most 2 image calls per minute")
        assert "Requests over 64 KiB are refused unread until then." in unread.value.error.message
        async with as_user(server, "alice") as alice:  # bob's limit is bob's
            assert not (await alice.call_tool("generate_image", {"prompt": "a cat"})).is_error
            made = await alice.call_tool("edit_image", large)
            assert not made.is_error, text_of(made)
        assert edit_requests(fake_openai) == 1


# Point 3: inputs are decoded after the rate limit and the budget, a few at a time


async def test_large_inputs_are_refused_before_decoding_and_decoded_a_few_at_a_time(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.output_size = (64, 64)
    image = big_png(8192)
    with shared_server(fake_openai, tmp_path, IMAGEGEN_RATE_LIMIT_PER_MINUTE="2") as server:
        async with as_user(server, "bob") as bob:
            answers: list[str] = [""] * 12

            async def edit(index: int) -> None:
                try:
                    result = await bob.call_tool("edit_image", {"image": image, "prompt": "make it red"})
                except MCPError as unread:  # refused at the door once the limit was reached
                    answers[index] = unread.error.message
                else:
                    answers[index] = text_of(result)

            async with anyio.create_task_group() as group:
                for index in range(12):
                    group.start_soon(edit, index)
        refused = [answer for answer in answers if "rate limit: at most 2 image calls" in answer]
        assert len(refused) == 10, answers
        assert edit_requests(fake_openai) == 2
        limited_peak = server.peak_rss_mib()

    fake_openai.requests.clear()
    with shared_server(fake_openai, tmp_path / "unlimited", IMAGEGEN_RATE_LIMIT_PER_MINUTE="0") as server:
        idle = server.rss_mib()
        async with as_user(server, "bob") as bob:
            results: list[CallToolResult] = []

            async def edit_unlimited() -> None:
                results.append(await bob.call_tool("edit_image", {"image": image, "prompt": "make it red"}))

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(edit_unlimited)
        assert all(not result.is_error for result in results), [text_of(r) for r in results]
        assert edit_requests(fake_openai) == 8
        peak = server.peak_rss_mib()
    # Each decode holds about 200 MiB: eight at once peaked near 2 GiB before decodes took turns
    # (and the ten refused calls would have decoded too); now about 270 MiB over idle.
    assert limited_peak < idle + 600, f"rate-limited run peaked at {limited_peak:.0f} MiB"
    assert peak - idle < 600, (
        f"peak {peak:.0f} MiB from {idle:.0f} MiB idle (rate-limited run: {limited_peak:.0f})"
    )


async def test_an_input_that_cannot_be_read_gives_its_reservation_back(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    """The reservation is made before the inputs are read; an input that cannot be read gives it
    back, so the call neither counts against the budget nor shows in the usage report."""
    with shared_server(fake_openai, tmp_path) as server:
        async with as_user(server, "bob") as bob:
            broken = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nnot really").decode()
            answer = await bob.call_tool("edit_image", {"image": broken, "prompt": "make it red"})
            assert answer.is_error and "image" in text_of(answer)
            assert edit_requests(fake_openai) == 0
            assert server.ledger() == []
            made = await bob.call_tool("generate_image", {"prompt": "a cat"})
            assert not made.is_error, text_of(made)
        rows = server.ledger()
    assert [(row["principal"], row["tool"], row["outcome"]) for row in rows] == [
        ("bob", "generate_image", "succeeded")
    ]


# Point 7: list cursors reveal nothing of other people's activity


def cursor_text(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


async def test_list_cursors_are_the_callers_own_and_carry_no_global_position(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.output_size = (64, 64)
    with shared_server(fake_openai, tmp_path, IMAGEGEN_RATE_LIMIT_PER_MINUTE="100") as server:
        async with as_user(server, "alice") as alice:
            made: list[str] = []
            for _ in range(6):
                result = await alice.call_tool("generate_image", {"prompt": "a dot", "n": 10})
                made += [image["id"] for image in (result.structured_content or {})["images"]]
            first = await alice.list_resources()
            assert len(first.resources) == 50 and first.next_cursor is not None
            # The cursor names the last image shown (alice's own), not the store's global count.
            assert cursor_text(first.next_cursor) == f"v2:{made[10]}"
            rest = await alice.list_resources(cursor=first.next_cursor)
            assert len(rest.resources) == 10 and rest.next_cursor is None
        async with as_user(server, "bob") as bob:
            errors = []
            for cursor in (
                first.next_cursor,
                "bm90LWEtY3Vyc29y",
                base64.urlsafe_b64encode(b"v1:" + b"9" * 4000).decode(),
            ):
                with pytest.raises(MCPError) as caught:
                    await bob.list_resources(cursor=cursor)
                errors.append((caught.value.error.code, caught.value.error.message))
            # Alice's cursor answers bob exactly like garbage, and a huge number is no crash (-32603).
            assert errors[0] == errors[1] == errors[2]
            assert errors[0][0] == -32602 and errors[0][1].startswith("invalid cursor")
            assert (await bob.list_resources()).resources == []


# Point 9: malformed input to the download route and to cursors is a plain 4xx


async def test_a_download_link_with_a_non_ascii_signature_is_refused_not_a_500(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.output_size = (64, 64)
    port = free_port()
    public = f"http://127.0.0.1:{port}/mcp"
    with shared_server(fake_openai, tmp_path, port=port, IMAGEGEN_PUBLIC_URL=public) as server:
        async with as_user(server, "alice") as alice:
            result = await alice.call_tool("generate_image", {"prompt": "a dot"})
        link = (result.structured_content or {})["images"][0]["download_url"]
        assert httpx2.get(link).status_code == 200
        base, _, _ = link.partition("?")
        answers = {
            "signature": httpx2.get(base, params={"expires": "9999999999", "signature": "é" * 43}),
            "expires": httpx2.get(base, params={"expires": "١٢٣", "signature": "x"}),
            "huge": httpx2.get(base, params={"expires": "9" * 5000, "signature": "x"}),
        }
    assert {name: reply.status_code for name, reply in answers.items()} == dict.fromkeys(answers, 403)
    assert "signature does not match" in answers["signature"].text
    assert answers["expires"].text == answers["huge"].text == "this link is malformed"


# Point 4: the store is never readable by path, whatever folder an operator allows


async def test_a_folder_allowed_for_paths_never_opens_the_store(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.output_size = (64, 64)
    shared = tmp_path / "team"
    (shared / "photos").mkdir(parents=True)
    Image.new("RGB", (32, 32), (1, 2, 3)).save(shared / "photos" / "ok.png")
    with shared_server(
        fake_openai,
        shared,  # the store is shared/store: inside the allowed folder
        IMAGEGEN_REMOTE_ALLOW_PATHS=str(shared),
        IMAGEGEN_RATE_LIMIT_PER_MINUTE="100",
    ) as server:
        async with as_user(server, "alice") as alice:
            made = await alice.call_tool("generate_image", {"prompt": "alice's secret"})
        (alices,) = [path for path in server.store.rglob("*.png") if path.parent.name != "photos"]
        (shared / "photos" / "link.png").symlink_to(alices)
        wrong_day = alices.parent.with_name("1999-01-01") / alices.name
        async with as_user(server, "bob") as bob:

            async def answer(path: Path) -> str:
                result = await bob.call_tool("edit_image", {"image": str(path), "prompt": "copy"})
                return text_of(result).replace(str(path), "PATH")

            own = await bob.call_tool(
                "edit_image", {"image": str(shared / "photos" / "ok.png"), "prompt": "x"}
            )
            assert not own.is_error, text_of(own)
            refusals = [
                await answer(alices),
                await answer(wrong_day),
                await answer(shared / "photos" / "link.png"),
                await answer(tmp_path / "elsewhere.png"),
            ]
    assert not made.is_error
    assert "outside the folders this server may read" in refusals[0]
    assert refusals[0] == refusals[1] == refusals[2] == refusals[3], refusals
    assert edit_requests(fake_openai) == 1


# Point 6: every secret is scrubbed, and a token in a URL is refused


async def test_a_token_from_the_tokens_file_is_scrubbed_and_refused_in_a_url(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    admin = "ops-token-from-the-file-0123456789"
    tokens_file = tmp_path / "tokens.txt"
    tokens_file.write_text(f"ops {admin} imagegen:admin\n")
    with shared_server(fake_openai, tmp_path, IMAGEGEN_AUTH_TOKENS_FILE=str(tokens_file)) as server:
        in_query = {
            "plain": httpx2.get(f"{server.url}/healthz", params={"t": admin}),
            "named": httpx2.get(f"{server.url}/healthz", params={"access_token": TOKENS["alice"]}),
            "mcp": httpx2.post(f"{server.url}/mcp?auth={TOKENS['bob']}", json={}),
        }
        header = httpx2.get(f"{server.url}/healthz", headers={"Authorization": f"Bearer {admin}"})
        log = server.stop()
    assert {name: reply.status_code for name, reply in in_query.items()} == dict.fromkeys(in_query, 400)
    assert "Send it only in the Authorization header" in in_query["plain"].json()["error"]["message"]
    assert header.status_code == 200
    assert admin not in log and TOKENS["alice"] not in log and TOKENS["bob"] not in log
    assert "/healthz?t=[redacted]" in log, log[-2000:]


# Point 8: one person's flood neither evicts another's finished jobs nor crowds out their calls


async def test_one_persons_flood_neither_evicts_nor_crowds_out_anothers_jobs(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.output_size = (16, 16)
    with shared_server(
        fake_openai,
        tmp_path,
        IMAGEGEN_MAX_KEPT_JOBS="11",
        IMAGEGEN_MAX_KEPT_JOBS_PER_PRINCIPAL="10",
        IMAGEGEN_MAX_JOBS_PER_PRINCIPAL="3",
        IMAGEGEN_RATE_LIMIT_PER_MINUTE="1000",
    ) as server:
        async with as_user(server, "alice") as alice, as_user(server, "bob") as bob:

            async def job_of(client: Client, **extra: Any) -> str:
                result = await client.call_tool("generate_image", {"prompt": "a dot", **extra})
                assert not result.is_error, text_of(result)
                return str((result.structured_content or {})["job_id"])

            alices = [await job_of(alice), await job_of(alice)]
            bobs = [await job_of(bob) for _ in range(30)]
            for job_id in alices:  # kept: bob's flood sheds bob's own oldest first
                kept = await alice.call_tool("get_job", {"job_id": job_id})
                assert (kept.structured_content or {}).get("status") == "succeeded", text_of(kept)
            gone = await bob.call_tool("get_job", {"job_id": bobs[0]})
            assert gone.is_error and "no job" in text_of(gone)
            assert not (await bob.call_tool("get_job", {"job_id": bobs[-1]})).is_error

            fake_openai.delay_s = 30
            running = [await job_of(bob, wait_seconds=0) for _ in range(3)]
            assert len(set(running)) == 3
            refused = await bob.call_tool("generate_image", {"prompt": "one more", "wait_seconds": 0})
            assert refused.is_error
            assert "you have 3 calls running or queued, the most one person may have" in text_of(refused)
            assert await job_of(alice, wait_seconds=0)  # bob's share is bob's
            await bob.call_tool("cancel_job", {"job_id": running[0]})
            assert await job_of(bob, wait_seconds=0)  # a seat comes back when a job ends


# Also seen: principals from different claims must not collide


async def test_a_client_id_cannot_become_the_person_whose_sub_it_equals(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with issuer() as keys:
        jwt_env = {
            "IMAGEGEN_AUTH_ISSUER": ISSUER,
            "IMAGEGEN_AUTH_JWKS_URL": keys.jwks_url,
            "IMAGEGEN_PUBLIC_URL": resource,
        }
        bob = keys.token(resource, sub="bob-sub")
        impostor = keys.token(resource, client_id="bob-sub")  # no sub: a client acting for itself
        reserved = keys.token(resource, sub="client:bob-sub")
        with shared_server(fake_openai, tmp_path, port=port, **jwt_env) as server:
            async with with_token(server, bob) as client:
                made = await client.call_tool("generate_image", {"prompt": "bob's"})
                uri = (made.structured_content or {})["images"][0]["uri"]
            async with with_token(server, impostor) as client:
                assert (await client.list_resources()).resources == []
                with pytest.raises(MCPError):
                    await client.read_resource(uri)
                usage = (await client.call_tool("get_usage", {})).structured_content or {}
                assert usage["principal"] == "client:bob-sub" and usage["calls"] == 0, usage
            refused = httpx2.post(
                resource,
                headers={
                    "Authorization": f"Bearer {reserved}",
                    "Accept": "application/json, text/event-stream",
                },
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            )
    assert refused.status_code == 401
