"""Connect an MCP client to mcp-imagegen in memory, over stdio, over Streamable HTTP or over SSE.

The subprocess transports run the real `python -m mcp_imagegen` with an explicit
environment, exactly as a host would spawn it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client import ClientExtension
from mcp.client.client import ConnectMode
from mcp.client.sse import sse_client

from mcp_imagegen.config import Settings, load_settings
from mcp_imagegen.server.app import build_server
from tests.fakes.loopback import free_port
from tests.settings_file import write_settings

Transport = Literal["memory", "stdio", "http", "sse"]
BASE_ENV_NAMES = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "LANG")


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The minimal environment a host gives a server, plus the test's settings."""
    base = {name: os.environ[name] for name in BASE_ENV_NAMES if name in os.environ}
    return {**base, "PYTHONUNBUFFERED": "1", **env}


@asynccontextmanager
async def connect(
    transport: Transport,
    env: Mapping[str, str],
    *,
    extensions: Sequence[ClientExtension] = (),
    mode: ConnectMode = "auto",
) -> AsyncIterator[Client]:
    """A connected client (declaring `extensions`, connecting in `mode`); for `memory`, `env` must
    already be in os.environ (monkeypatch)."""
    options: dict[str, Any] = {"extensions": list(extensions) or None, "mode": mode}
    if transport == "memory":
        async with Client(build_server(load_settings()), **options) as client:
            yield client
        return
    if transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mcp_imagegen"], env=child_env(env)
        )
        async with Client(params, **options) as client:
            yield client
        return
    with http_server(transport, env) as url:
        target = url + "/mcp" if transport == "http" else sse_client(url + "/sse")
        async with Client(target, **options) as client:
            yield client


@asynccontextmanager
async def connect_with(
    transport: Transport,
    settings: Settings,
    folder: Path,
    *,
    extensions: Sequence[ClientExtension] = (),
) -> AsyncIterator[Client]:
    """A client of a server built from exactly `settings`: in memory, or spawned over stdio or
    Streamable HTTP with the settings written to a config file in `folder` (no environment)."""
    if transport == "memory":
        async with Client(build_server(settings), extensions=list(extensions) or None) as client:
            yield client
        return
    config = write_settings(settings, folder)
    if transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mcp_imagegen", "--config", str(config)], env=child_env({})
        )
        async with Client(params, extensions=list(extensions) or None) as client:
            yield client
        return
    with http_server(transport, {}, ["--config", str(config)]) as url:
        target = url + "/mcp" if transport == "http" else sse_client(url + "/sse")
        async with Client(target, extensions=list(extensions) or None) as client:
            yield client


@contextmanager
def http_server(
    transport: Literal["http", "sse"],
    env: Mapping[str, str],
    args: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[str]:
    """Run `mcp-imagegen --transport http|sse` on a loopback port (a free one unless given) until the
    block ends."""
    with http_server_process(transport, env, args, port) as (url, _):
        yield url


@contextmanager
def http_server_process(
    transport: Literal["http", "sse"],
    env: Mapping[str, str],
    args: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`http_server`, with the server's process too (for what only the process tells, its memory)."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_imagegen", "--transport", transport, "--port", str(port), *args],
        env=child_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"server exited with {process.returncode}: {errors[-2000:]}")
        try:
            if httpx2.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


LEGACY_HANDSHAKE: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def exchange_until(
    process: subprocess.Popen[str], messages: list[dict[str, Any]], reply_id: int
) -> list[dict[str, Any]]:
    """Write raw JSON-RPC lines to a stdio server; read stdout lines until the reply to `reply_id`.

    Every stdout line must parse as JSON: anything else on stdout would corrupt a host's stream.
    """
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("".join(json.dumps(message) + "\n" for message in messages))
    process.stdin.flush()
    lines: list[dict[str, Any]] = []
    while not any(line.get("id") == reply_id for line in lines):
        raw = process.stdout.readline()
        if not raw:
            raise RuntimeError("server closed stdout before answering")
        lines.append(json.loads(raw))
    return lines
