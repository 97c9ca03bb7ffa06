"""A shared remote server: two principals on one server, over Streamable HTTP and SSE, with static
tokens and with JWTs. Nothing one makes can be listed, read, used as an input, waited on or
cancelled by the other, and another's id answers exactly like an id that does not exist."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import BlobResourceContents, CallToolResult, TextResourceContents

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.server.auth import parse_token, read_token_file
from mcp_imagegen.server.principals import derived_name
from tests.conftest import png_bytes
from tests.connect import http_server
from tests.fakes.issuer import ISSUER, issuer
from tests.fakes.loopback import free_port
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
NOBODY_IMAGE = "0123456789abcdef"
NOBODY_JOB = "job_" + "N" * 24
JOB_S = 15.0
"""How long the fake takes over a slow job: its first partial image comes at a third of it."""
UPLOAD = png_bytes(colour=(1, 2, 3))
"""The same bytes, uploaded by both principals."""


@dataclass
class Made:
    """What one principal made: stored image ids, a job id, a partial image's URI."""

    images: list[str] = field(default_factory=list)
    upload_id: str = ""
    job_id: str = ""
    partial_uri: str = ""


@dataclass(frozen=True)
class Team:
    url: str
    tokens: dict[str, str]
    """alice, bob, and admin (with the imagegen:admin scope)."""


@contextmanager
def team_server(
    transport: str, auth: str, fake: FakeOpenAIImages, tmp_path: Path, **extra: str
) -> Iterator[Team]:
    port = free_port()
    path = "/mcp" if transport == "http" else "/sse"
    env = {
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        "OPENAI_API_KEY": fake.api_key,
        "OPENAI_BASE_URL": f"{fake.url}/v1",
        **extra,
    }
    with issuer() as keys:
        if auth == "jwt":
            resource = f"http://127.0.0.1:{port}{path}"
            env |= {
                "IMAGEGEN_AUTH_ISSUER": ISSUER,
                "IMAGEGEN_AUTH_JWKS_URL": keys.jwks_url,
                "IMAGEGEN_PUBLIC_URL": resource,
            }
            tokens = {
                "alice": keys.token(resource, sub="alice-sub", client_id="shared-app"),
                "bob": keys.token(resource, sub="bob-sub", client_id="shared-app"),
                "admin": keys.token(resource, sub="ops", scope="imagegen:admin"),
            }
        else:
            tokens = {name: f"{name}-token-0123456789abcdef" for name in ("alice", "bob", "admin")}
            env["IMAGEGEN_AUTH_TOKENS"] = f"alice:{tokens['alice']},bob:{tokens['bob']}"
            tokens_file = tmp_path / "tokens.txt"
            tokens_file.write_text(f"# operators\nops {tokens['admin']} imagegen:admin\n")
            env["IMAGEGEN_AUTH_TOKENS_FILE"] = str(tokens_file)
        with http_server(transport, env, port=port) as url:  # type: ignore[arg-type]
            yield Team(url, tokens)


@asynccontextmanager
async def as_user(team: Team, transport: str, who: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {team.tokens[who]}"}
    if transport == "sse":
        async with Client(sse_client(team.url + "/sse", headers=headers)) as client:
            yield client
        return
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120))
    async with http, Client(streamable_http_client(team.url + "/mcp", http_client=http)) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def make_things(client: Client, name: str) -> Made:
    made = Made()
    generated = structured(await client.call_tool("generate_image", {"prompt": f"{name}'s fox"}))
    made.images += [image["id"] for image in generated["images"]]
    upload = "data:image/png;base64," + base64.b64encode(UPLOAD).decode()
    edited = structured(await client.call_tool("edit_image", {"image": upload, "prompt": f"{name}'s edit"}))
    made.images += [image["id"] for image in edited["images"]]
    [made.upload_id] = edited["parent_ids"]
    made.images.append(made.upload_id)
    return made


async def start_slow_job(client: Client, name: str, made: Made) -> None:
    """A job that goes on running (the fake takes JOB_S), with a partial image already stored."""
    handle = structured(
        await client.call_tool(
            "generate_image",
            {"prompt": f"{name}'s slow fox", "partial_images": 2, "keep_partials": True, "wait_seconds": 0},
        )
    )
    assert handle["status"] == "running"
    made.job_id = handle["job_id"]


async def first_partial(client: Client, made: Made) -> None:
    steps: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(message or "")

    pending = await client.call_tool(
        "get_job", {"job_id": made.job_id, "wait_seconds": JOB_S / 3 + 1.5}, progress_callback=progress
    )
    assert structured(pending)["status"] == "running", "the job must still be running for this test"
    [made.partial_uri] = [step.split(": ")[-1] for step in steps if step.startswith("partial image 1 ")]


async def refused_like_nobodys(client: Client, made: Made) -> None:
    """Every surface answers for someone else's ids exactly as for ids that do not exist."""

    async def read_error(uri: str) -> str:
        with pytest.raises(MCPError) as caught:
            await client.read_resource(uri, cache_mode="bypass")
        return f"{caught.value.error.code} {caught.value.error.message}"

    for image_id in made.images:
        for suffix in ("", "/metadata"):
            theirs = await read_error(f"imagegen://images/{image_id}{suffix}")
            nobodys = await read_error(f"imagegen://images/{NOBODY_IMAGE}{suffix}")
            assert theirs.replace(image_id, "ID") == nobodys.replace(NOBODY_IMAGE, "ID")
    theirs = await read_error(made.partial_uri)
    assert "Unknown resource" in theirs
    for tool, arguments in (
        ("edit_image", lambda uri: {"image": uri, "prompt": "steal"}),
        ("describe_image", lambda uri: {"images": [uri]}),
    ):
        for image_id in (made.images[0], made.upload_id):
            stolen = await client.call_tool(tool, arguments(f"imagegen://images/{image_id}"))
            missing = await client.call_tool(tool, arguments(f"imagegen://images/{NOBODY_IMAGE}"))
            assert stolen.is_error and missing.is_error
            assert text_of(stolen).replace(image_id, "ID") == text_of(missing).replace(NOBODY_IMAGE, "ID")
    for tool in ("get_job", "cancel_job"):
        theirs_job = await client.call_tool(
            tool, {"job_id": made.job_id, "wait_seconds": 0} if tool == "get_job" else {"job_id": made.job_id}
        )
        unknown_job = await client.call_tool(tool, {"job_id": NOBODY_JOB})
        assert theirs_job.is_error and unknown_job.is_error
        assert text_of(theirs_job).replace(made.job_id, "ID") == text_of(unknown_job).replace(
            NOBODY_JOB, "ID"
        )
    listed = {resource.uri for resource in (await client.list_resources(cache_mode="bypass")).resources}
    assert not listed & {f"imagegen://images/{image_id}" for image_id in made.images}


async def sees_all_of_their_own(client: Client, made: Made, store: Path) -> None:
    listed = {resource.uri for resource in (await client.list_resources(cache_mode="bypass")).resources}
    assert {f"imagegen://images/{image_id}" for image_id in made.images} <= listed
    for image_id in made.images:
        [blob] = (await client.read_resource(f"imagegen://images/{image_id}", cache_mode="bypass")).contents
        assert isinstance(blob, BlobResourceContents) and base64.b64decode(blob.blob)
        [meta] = (await client.read_resource(f"imagegen://images/{image_id}/metadata")).contents
        assert isinstance(meta, TextResourceContents)
        document = json.loads(meta.text)
        assert "path" not in document and str(store) not in meta.text, "no server paths for remote callers"
    [partial] = (await client.read_resource(made.partial_uri)).contents
    assert isinstance(partial, BlobResourceContents)
    described = structured(
        await client.call_tool("describe_image", {"images": [f"imagegen://images/{made.images[0]}"]})
    )
    assert described["answer"]


@pytest.mark.parametrize("auth", ["static", "jwt"])
@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_two_principals_share_nothing(
    transport: str, auth: str, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with team_server(transport, auth, fake_openai, tmp_path) as team:
        async with as_user(team, transport, "alice") as alice, as_user(team, transport, "bob") as bob:
            alices = await make_things(alice, "alice")
            bobs = await make_things(bob, "bob")
            fake_openai.delay_s = JOB_S
            await start_slow_job(alice, "alice", alices)
            await start_slow_job(bob, "bob", bobs)
            async with anyio.create_task_group() as group:
                group.start_soon(first_partial, alice, alices)
                group.start_soon(first_partial, bob, bobs)
            fake_openai.delay_s = 0.0  # both slow requests have long reached the fake
            # Each probes the other's things while both jobs are still running.
            await refused_like_nobodys(bob, alices)
            await refused_like_nobodys(alice, bobs)
            # The same upload is two images, one each: no dedup oracle.
            assert alices.upload_id != bobs.upload_id
            # Each still has everything of their own; the jobs were neither cancelled nor lost.
            for client, made in ((alice, alices), (bob, bobs)):
                finished = structured(
                    await client.call_tool("get_job", {"job_id": made.job_id, "wait_seconds": 60})
                )
                assert finished["status"] == "succeeded"
                assert all("path" not in image for image in finished["images"])
                assert str(store) not in json.dumps(finished)
                made.images += [image["id"] for image in finished["images"]]
                await sees_all_of_their_own(client, made, store)
            # Each one's usage is their own: the calls the provider saw from them, and no one else's.
            alice_name = "alice" if auth == "static" else "alice-sub"
            mine = structured(await alice.call_tool("get_usage", {}))
            assert {line["principal"] for line in mine["lines"]} == {alice_name}
            assert mine["calls"] == 4  # generate, edit, the slow job, describe
            snooping = await bob.call_tool("get_usage", {"principal": alice_name})
            assert snooping.is_error and "only the imagegen:admin scope" in text_of(snooping)
            # A server file path is refused for remote callers, even one inside the store.
            stored_file = next((store / "images").rglob("*.png"))
            refused = await alice.call_tool("edit_image", {"image": str(stored_file), "prompt": "x"})
            assert refused.is_error and "file paths are not read for callers over the network" in text_of(
                refused
            )
        async with as_user(team, transport, "admin") as admin:
            listed = {resource.uri for resource in (await admin.list_resources()).resources}
            everything = {f"imagegen://images/{image_id}" for image_id in alices.images + bobs.images}
            assert everything <= listed
            [meta] = (await admin.read_resource(f"imagegen://images/{bobs.images[0]}/metadata")).contents
            assert isinstance(meta, TextResourceContents)
            owner = json.loads(meta.text)["owner"]
            assert owner == ("bob" if auth == "static" else "bob-sub")
            everyone = structured(await admin.call_tool("get_usage", {"principal": "*"}))
            assert {line["principal"] for line in everyone["lines"]} == {alice_name, owner}
            assert everyone["calls"] == len(fake_openai.requests) + len(fake_openai.chat.requests) == 8


def test_static_token_names(tmp_path: Path) -> None:
    named = parse_token("alice:s3cret-token", "IMAGEGEN_AUTH_TOKENS")
    assert (named.name, named.token) == ("alice", "s3cret-token")
    unnamed = parse_token("s3cret-token", "IMAGEGEN_AUTH_TOKENS")
    assert unnamed.name == derived_name("s3cret-token") and "s3cret" not in unnamed.name
    assert unnamed.name == parse_token("s3cret-token", "elsewhere").name, "stable"
    listed = tmp_path / "tokens"
    listed.write_text("# team\nalice tok-a\nops tok-o imagegen:admin\ntok-bare\n")
    assert [(t.name, t.token, t.scopes) for t in read_token_file(listed)] == [
        ("alice", "tok-a", ()),
        ("ops", "tok-o", ("imagegen:admin",)),
        (derived_name("tok-bare"), "tok-bare", ()),
    ]
    listed.write_text("local tok-l\n")
    with pytest.raises(ConfigError, match="'local' is the name of the local"):
        read_token_file(listed)
