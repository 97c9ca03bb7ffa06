"""Serving to other machines, over real loopback HTTP and SSE with the real command line:
bearer tokens and OAuth access tokens (JWT, JWKS), Host/Origin checks, the body limit, the
refusal to serve unauthenticated on a public address, rate limits and the provider-call cap."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_imagegen.config import Settings
from mcp_imagegen.images import preview, workers
from mcp_imagegen.images.preview import Preview
from mcp_imagegen.server.http import remote_auth
from mcp_imagegen.server.jobs import images as job_images
from tests.connect import LEGACY_HANDSHAKE, child_env, connect, http_server
from tests.fakes.loopback import LoopbackServer, free_port
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
GOOD_TOKEN = "tok-good-0123456789abcdef"
OTHER_TOKEN = "tok-other-fedcba9876543210"
ISSUER = "https://auth.example.test"
INITIALIZE = LEGACY_HANDSHAKE[0]
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def base_env(tmp_path: Any, **extra: str) -> dict[str, str]:
    return {
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        "IMAGEGEN_DEFAULT_PROVIDER": "placeholder",
        **extra,
    }


@asynccontextmanager
async def authed_client(url: str, transport: str, token: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    if transport == "sse":
        async with Client(sse_client(url + "/sse", headers=headers)) as client:
            yield client
        return
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        yield client


def refused_status(url: str, transport: str, token: str | None, **headers: str) -> httpx2.Response:
    """One unauthenticated-looking request: POST /mcp (HTTP) or GET /sse (SSE)."""
    sent = {**headers}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    if transport == "sse":
        return httpx2.get(url + "/sse", headers=sent, timeout=5)
    return httpx2.post(url + "/mcp", json=INITIALIZE, headers={**JSON_HEADERS, **sent}, timeout=5)


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_static_bearer_tokens(transport: str, tmp_path: Any) -> None:
    env = base_env(tmp_path, IMAGEGEN_AUTH_TOKENS=f"{GOOD_TOKEN},{OTHER_TOKEN}")
    with http_server(transport, env) as url:  # type: ignore[arg-type]
        for token in (None, "wrong-token", GOOD_TOKEN[:-1], GOOD_TOKEN + "x"):
            response = refused_status(url, transport, token)
            assert response.status_code == 401, (token, response.text)
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
        health = httpx2.get(url + "/healthz", timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        resource_path = "/mcp" if transport == "http" else "/sse"
        metadata = httpx2.get(f"{url}/.well-known/oauth-protected-resource{resource_path}", timeout=5).json()
        assert metadata["resource"] == f"{url}{resource_path}"
        async with authed_client(url, transport, OTHER_TOKEN) as client:
            result = await client.call_tool("generate_image", {"prompt": "a remote cat", "size": "64x64"})
            assert not result.is_error, result.content


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer_keys() -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    """A signing key and the URL of a JWKS that publishes its public half as kid `k1`."""
    key = rsa_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    with LoopbackServer(Starlette(routes=[Route("/jwks.json", jwks)])) as server:
        yield key, f"{server.url}/jwks.json"


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_oauth_access_tokens_are_verified_against_the_issuers_keys(
    transport: str, tmp_path: Any, issuer_keys: tuple[rsa.RSAPrivateKey, str]
) -> None:
    key, jwks_url = issuer_keys
    port = free_port()
    path = "/mcp" if transport == "http" else "/sse"
    resource = f"http://127.0.0.1:{port}{path}"
    env = base_env(
        tmp_path,
        IMAGEGEN_AUTH_ISSUER=ISSUER,
        IMAGEGEN_AUTH_JWKS_URL=jwks_url,
        IMAGEGEN_PUBLIC_URL=resource,
        IMAGEGEN_AUTH_REQUIRED_SCOPES="images:write",
    )
    now = int(time.time())
    good = {"iss": ISSUER, "aud": resource, "sub": "user-1", "client_id": "app-1", "scope": "images:write"}

    def token(claims: dict[str, Any], signer: rsa.RSAPrivateKey = key, kid: str = "k1") -> str:
        return jwt.encode(
            {"iat": now, "exp": now + 600, **claims}, signer, algorithm="RS256", headers={"kid": kid}
        )

    refused = {
        "expired": token({**good, "exp": now - 3600, "iat": now - 7200}),
        "wrong audience": token({**good, "aud": "https://other.example.test/mcp"}),
        "wrong issuer": token({**good, "iss": "https://evil.example.test"}),
        "unknown key": token(good, signer=rsa_key(), kid="k2"),
        "forged with a known kid": token(good, signer=rsa_key()),
        "unsigned": jwt.encode({**good, "exp": now + 600}, "", algorithm="none"),
        "garbage": "not-a-jwt",
    }
    with http_server(transport, env, port=port) as url:  # type: ignore[arg-type]
        for label, bad in refused.items():
            assert refused_status(url, transport, bad).status_code == 401, label
        no_scope = token({**good, "scope": "images:read"})
        assert refused_status(url, transport, no_scope).status_code == 403
        async with authed_client(url, transport, token(good)) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} >= {"generate_image", "get_job"}
        metadata = httpx2.get(f"{url}/.well-known/oauth-protected-resource{path}", timeout=5).json()
        assert metadata["authorization_servers"] == [ISSUER + "/"] or metadata["authorization_servers"] == [
            ISSUER
        ]
        assert metadata["scopes_supported"] == ["images:write"]


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_host_and_origin_checks(transport: str, tmp_path: Any) -> None:
    def status(url: str, **headers: str) -> int:
        if transport == "sse":  # the SSE stream never ends: look at the status line only
            with httpx2.stream("GET", url + "/sse", headers=headers, timeout=5) as response:
                return response.status_code
        return refused_status(url, transport, None, **headers).status_code

    with http_server(transport, base_env(tmp_path)) as url:  # type: ignore[arg-type]
        port = url.rsplit(":", 1)[1]
        assert status(url, host=f"evil.example.test:{port}") == 421
        assert status(url, origin="http://evil.example.test") == 403
        assert status(url, origin=f"http://localhost:{port}") == 200
    env = base_env(tmp_path, IMAGEGEN_ALLOWED_HOSTS="images.example.test:*")
    with http_server(transport, env) as url:  # type: ignore[arg-type]
        port = url.rsplit(":", 1)[1]
        assert status(url, host=f"images.example.test:{port}") == 200
        assert status(url, host=f"evil.example.test:{port}") == 421


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_over_limit_body_gets_413_with_a_clear_message(transport: str, tmp_path: Any) -> None:
    env = base_env(tmp_path, IMAGEGEN_HTTP_MAX_BODY_BYTES=str(1024 * 1024))
    with http_server(transport, env) as url:  # type: ignore[arg-type]
        path = "/mcp" if transport == "http" else "/messages/?session_id=0"
        big = json.dumps({**INITIALIZE, "padding": "x" * 2_000_000}).encode()
        response = httpx2.post(url + path, content=big, headers=JSON_HEADERS, timeout=10)
        assert response.status_code == 413
        message = response.json()["error"]["message"]
        assert (
            "over this server's limit of 1,048,576" in message and "IMAGEGEN_HTTP_MAX_BODY_BYTES" in message
        )
        assert httpx2.get(url + "/healthz", timeout=5).status_code == 200


def test_public_bind_without_auth_is_refused(tmp_path: Any) -> None:
    command = [sys.executable, "-m", "mcp_imagegen", "--transport", "http", "--host", "0.0.0.0"]
    result = subprocess.run(
        [*command, "--port", str(free_port())],
        env=child_env(base_env(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in result.stderr
    assert "--insecure-no-auth" in result.stderr


def refused_start(tmp_path: Any, host: str, tokens: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mcp_imagegen", "--transport", "http", "--host", host]
    return subprocess.run(
        [*command, "--port", str(free_port())],
        env=child_env(base_env(tmp_path, IMAGEGEN_AUTH_TOKENS=tokens)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_one_token_under_two_names_is_refused_naming_both(tmp_path: Any) -> None:
    """bob's calls would be counted as alice's: her images, her usage, her budget."""
    result = refused_start(tmp_path, "127.0.0.1", f"alice:{GOOD_TOKEN},bob:{GOOD_TOKEN}")
    assert result.returncode == 2, result.stderr
    assert "one auth token is given under two names, 'alice' and 'bob'" in result.stderr
    assert GOOD_TOKEN not in result.stderr + result.stdout


def test_a_short_token_is_refused_beyond_loopback(tmp_path: Any) -> None:
    result = refused_start(tmp_path, "0.0.0.0", f"alice:{GOOD_TOKEN},bob:abc")
    assert result.returncode == 2, result.stderr
    assert "refusing to serve on 0.0.0.0: the auth token(s) of 'bob' are shorter than 16" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr and "abc" not in result.stderr.replace("'bob'", "")


def test_a_short_token_is_warned_about_on_loopback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="mcp_imagegen.server.http"):
        auth = remote_auth(
            Settings(auth_tokens=[SecretStr("carol:abc")]), "http://127.0.0.1:1/mcp", "127.0.0.1"
        )
    assert auth is not None
    assert "the auth token(s) of 'carol' are shorter than 16 characters" in caplog.text
    assert "accepted on loopback only" in caplog.text and ":abc" not in caplog.text


def test_insecure_no_auth_is_an_explicit_choice_and_keeps_the_host_check(tmp_path: Any) -> None:
    unchecked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_imagegen",
            "--transport",
            "http",
            "--host",
            "0.0.0.0",
            "--insecure-no-auth",
        ],
        env=child_env(base_env(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unchecked.returncode == 2
    assert "without authentication and without Host checks: set IMAGEGEN_ALLOWED_HOSTS" in unchecked.stderr
    env = base_env(tmp_path, IMAGEGEN_ALLOWED_HOSTS="127.0.0.1:*")
    with http_server("http", env, ["--host", "0.0.0.0", "--insecure-no-auth"]) as url:
        assert httpx2.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
        rebound = httpx2.post(
            url + "/mcp",
            headers={"Host": "attacker.example.test", "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            timeout=5,
        )
        assert rebound.status_code in (400, 421), rebound.status_code


async def test_rate_limit_per_client(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env = base_env(tmp_path, IMAGEGEN_RATE_LIMIT_PER_MINUTE="2")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with connect("memory", env) as client:
        for _ in range(2):
            assert not (await client.call_tool("generate_image", {"prompt": "x", "size": "64x64"})).is_error
        third = await client.call_tool("generate_image", {"prompt": "x", "size": "64x64"})
        assert third.is_error
        assert "rate limit: at most 2 image calls per minute per client" in str(third.content)
        assert not (await client.call_tool("list_providers", {})).is_error, "other tools are not limited"


async def test_provider_calls_are_capped_and_queue(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_MAX_CONCURRENT_PROVIDER_CALLS", "2")
    fake_openai.delay_s = 0.4
    messages: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with connect("memory", server_env) as client:
        results = []

        async def one() -> None:
            results.append(
                await client.call_tool("generate_image", {"prompt": "x"}, progress_callback=progress)
            )

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)
    assert all(not result.is_error for result in results)
    assert fake_openai.max_in_flight == 2
    assert messages.count("queued: all 2 provider slots are busy") == 3, "each call that waited said so"


async def test_each_provider_has_its_own_in_flight_limit(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[provider_concurrency] caps one provider; the default for a cloud API lets a burst through."""
    monkeypatch.setenv("IMAGEGEN_PROVIDER_CONCURRENCY", '{"openai": 3}')
    fake_openai.delay_s = 0.3
    messages: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with connect("memory", server_env) as client, anyio.create_task_group() as group:
        for _ in range(7):
            group.start_soon(
                functools.partial(
                    client.call_tool, "generate_image", {"prompt": "x"}, progress_callback=progress
                )
            )
    assert fake_openai.max_in_flight == 3
    assert messages.count("queued: all 3 openai provider slots are busy") == 4, messages


async def test_a_burst_to_a_cloud_provider_is_not_queued_by_default(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages
) -> None:
    fake_openai.delay_s = 0.5
    async with connect("memory", server_env) as client, anyio.create_task_group() as group:
        for _ in range(40):
            group.start_soon(client.call_tool, "generate_image", {"prompt": "x"})
    assert fake_openai.max_in_flight == 40


async def test_large_replies_wait_for_room_and_small_ones_do_not(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large replies that arrive together are taken in hand a few at a time (twice the cores: two
    here), the rest waiting in their connections, and every call still succeeds; small replies are
    read at once. The first preview is held until a reply is seen waiting (or 10 s pass)."""
    monkeypatch.setattr(workers, "usable_cores", lambda: 1)
    queued = (
        "queued: the server is already processing 2 large replies; openai's reply waits in its connection"
    )
    seen_waiting = threading.Event()
    fit = preview.fit_one

    def held_fit(*args: Any, **kwargs: Any) -> Preview:
        seen_waiting.wait(10)
        return fit(*args, **kwargs)

    monkeypatch.setattr(job_images, "fit_one", held_fit)
    messages: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        if message == queued:
            seen_waiting.set()

    async def burst(size: str) -> list[CallToolResult]:
        results: list[CallToolResult] = []

        async def one() -> None:
            arguments = {"prompt": "x", "size": size}
            results.append(await client.call_tool("generate_image", arguments, progress_callback=progress))

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)
        return results

    async with connect("memory", server_env) as client:
        seen_waiting.set()
        small = await burst("1024x1024")
        assert all(not result.is_error for result in small), small[0].content
        assert not any(message.startswith("queued") for message in messages), messages
        seen_waiting.clear()
        large = await burst("3840x2160")
    assert all(not result.is_error for result in large)
    assert len(fake_openai.images_sent[-1]) > workers.LARGE_REPLY_BYTES
    assert queued in messages, "a reply waited while two were in hand"
