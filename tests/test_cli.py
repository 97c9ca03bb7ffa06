"""The command line, stdout hygiene on stdio, the SSE transport, and the placeholder provider."""

from __future__ import annotations

import base64
import io
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx2
import pytest
from mcp.types import BlobResourceContents
from PIL import Image

from mcp_imagegen import __version__
from tests.connect import LEGACY_HANDSHAKE, child_env, connect, exchange_until
from tests.fakes.google_genai import FakeGoogle
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio


def run_cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_imagegen", *args],
        input=stdin,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_and_help(tmp_path: Path) -> None:
    env = {"IMAGEGEN_STORE_DIR": str(tmp_path)}
    assert run_cli("--version", env=env).stdout.strip() == f"mcp-imagegen {__version__}"
    assert "--transport {stdio,http,sse}" in run_cli("--help", env=env).stdout


def test_bad_config_exits_with_a_message(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "missing.toml"), env={"IMAGEGEN_STORE_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "mcp-imagegen: cannot read config file" in result.stderr


def test_stdio_stdout_carries_only_protocol_messages(tmp_path: Path) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "generate_image", "arguments": {"prompt": "hello", "size": "64x64"}},
    }
    env = {"IMAGEGEN_STORE_DIR": str(tmp_path), "IMAGEGEN_DEFAULT_PROVIDER": "placeholder"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_imagegen"],
        env=child_env(env),
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines = exchange_until(process, [*LEGACY_HANDSHAKE, call], reply_id=2)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdin.close()
    process.wait(timeout=30)
    stderr = process.stderr.read()
    assert process.stdout.read() == ""
    assert all(line["jsonrpc"] == "2.0" for line in lines)
    reply = next(line for line in lines if line.get("id") == 2)
    assert reply["result"]["structuredContent"]["images"][0]["width"] == 64
    assert "mcp-imagegen" in stderr and "on stdio" in stderr


async def test_sse_transport(tmp_path: Path) -> None:
    env = {"IMAGEGEN_STORE_DIR": str(tmp_path), "IMAGEGEN_DEFAULT_PROVIDER": "placeholder"}
    async with connect("sse", env) as client:
        made = await client.call_tool("generate_image", {"prompt": "over sse", "size": "96x64", "seed": 1})
        assert not made.is_error and made.structured_content is not None
        contents = (await client.read_resource(made.structured_content["images"][0]["uri"])).contents
        assert isinstance(contents[0], BlobResourceContents)
        with Image.open(io.BytesIO(base64.b64decode(contents[0].blob))) as image:
            assert image.size == (96, 64)


async def test_placeholder_is_labelled_and_varies_unless_seeded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMAGEGEN_DEFAULT_PROVIDER", "placeholder")
    async with connect("memory", {}) as client:

        async def pixels(arguments: dict[str, object]) -> bytes:
            result = await client.call_tool(
                "generate_image", {"prompt": "a cat", "size": "64x64", **arguments}
            )
            assert result.structured_content is not None
            return Path(result.structured_content["images"][0]["path"]).read_bytes()

        assert await pixels({"seed": 7}) == await pixels({"seed": 7})
        assert await pixels({}) != await pixels({})
        transparent = await pixels({"background": "transparent", "output_format": "webp"})
        with Image.open(io.BytesIO(transparent)) as image:
            assert image.format == "WEBP" and image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0
        providers = (await client.call_tool("list_providers", {})).structured_content
        assert providers is not None and providers["default_provider"] == "placeholder"


def test_doctor_lists_providers_store_and_extras(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "images" / "2026-01-01").mkdir(parents=True)
    (store / "images" / "2026-01-01" / "a.png").write_bytes(b"x" * 2_000_000)
    result = run_cli("doctor", env={"IMAGEGEN_STORE_DIR": str(store)})
    assert result.returncode == 0, result.stderr
    assert f"store: {store}" in result.stdout and "1 image(s), 2.0 MB" in result.stdout
    assert "openai: not configured (set OPENAI_API_KEY)" in result.stdout
    assert "placeholder: configured" in result.stdout
    assert "[vertex] Application Default Credentials for Vertex AI:" in result.stdout


def test_doctor_check_makes_one_cheap_request_per_provider(
    tmp_path: Path, fake_openai: FakeOpenAIImages, fake_google: FakeGoogle
) -> None:
    env = {
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "GEMINI_API_KEY": "AIza-wrong-key-for-doctor",
        "GOOGLE_GEMINI_BASE_URL": fake_google.url,
    }
    result = run_cli("doctor", "--check", env=env)
    assert result.returncode == 1, "a failed check fails the command"
    lines = result.stdout.splitlines()
    openai_check = lines[lines.index("  openai: configured") + 3]
    assert openai_check == "      check: ok (127.0.0.1 answered)"
    assert "check: FAILED: HTTP 400 from 127.0.0.1" in result.stdout and "API key not valid" in result.stdout
    assert "AIza-wrong-key-for-doctor" not in result.stdout + result.stderr
    assert fake_openai.requests == [], "no generation was requested"
    assert fake_google.requests == []


def read_until(stream: IO[bytes], marker: bytes, timeout_s: float = 30) -> bytes:
    """What `stream` says until it has said `marker` (or the time is up), read as it comes."""
    import os
    import select

    said = b""
    deadline = time.monotonic() + timeout_s
    while marker not in said and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1)
        if ready:
            said += os.read(stream.fileno(), 4096)
    return said


def test_a_person_at_a_terminal_is_told_what_is_happening(tmp_path: Path) -> None:
    """stdin a TTY: stderr says it waits for an MCP host and how to try it; stdout stays clean."""
    import os
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_imagegen"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "IMAGEGEN_STORE_DIR": str(tmp_path / "store")},
    )
    os.close(terminal)
    try:
        assert process.stderr is not None
        said = read_until(process.stderr, b"Ctrl+C")
        text = said.decode()
        assert "waiting for an MCP host" in text
        assert "npx @modelcontextprotocol/inspector mcp-imagegen" in text and "mcp-imagegen doctor" in text
        assert process.poll() is None, "it still serves"
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.close(controller)
    assert process.stdout is not None and process.stdout.read() == b""


def test_the_first_ctrl_c_at_a_terminal_stops_the_server_cleanly(tmp_path: Path) -> None:
    """Ctrl+C typed at the terminal (the pty's interrupt character, so the kernel signals the
    process as a person's keyboard would): the server stops at once, exit status 0, no traceback;
    before, it waited for Enter, and a second Ctrl+C printed a traceback."""
    import os
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_imagegen"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "IMAGEGEN_STORE_DIR": str(tmp_path / "store")},
        start_new_session=True,  # the pty becomes its controlling terminal, as in a shell
    )
    os.close(terminal)
    try:
        assert process.stderr is not None
        said = read_until(process.stderr, b"on stdio; images in")
        os.killpg(process.pid, signal.SIGINT)
        started = time.monotonic()
        status = process.wait(timeout=10)
        stopped_in = time.monotonic() - started
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    text = (said + rest).decode()
    assert status == 0 and "mcp-imagegen: stopping (Ctrl+C)" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert stopped_in < 2.5, f"took {stopped_in:.1f} s"


def test_ctrl_c_stops_the_http_server_cleanly(tmp_path: Path) -> None:
    from tests.connect import http_server_process

    with http_server_process("http", {"IMAGEGEN_STORE_DIR": str(tmp_path / "store")}) as (url, process):
        assert httpx2.get(url + "/healthz", timeout=5).status_code == 200
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=10)
        assert process.stderr is not None
        said = process.stderr.read().decode()
    assert status == 0 and "Traceback" not in said and "KeyboardInterrupt" not in said
