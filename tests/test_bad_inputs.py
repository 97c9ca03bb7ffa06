"""Bad calls give a clear isError result, leave the store exactly as it was, and the server keeps serving."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from mcp_imagegen.config import load_settings
from mcp_imagegen.server.app import build_server
from tests.conftest import png_bytes
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.content
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def store_files(store: Path) -> list[Path]:
    return sorted(path for path in (store / "images").rglob("*") if path.is_file())


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def openai_env(fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAIImages:
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake_openai.url}/v1")
    return fake_openai


async def test_missing_key_names_the_variable(store_dir: Path) -> None:
    async with Client(build_server(load_settings())) as client:
        text = error_text(await client.call_tool("generate_image", {"prompt": "x"}))
        assert "OPENAI_API_KEY" in text and "placeholder" in text
        text = error_text(await client.call_tool("generate_image", {"prompt": "x", "provider": "openai"}))
        assert "the openai provider is not configured: set OPENAI_API_KEY" in text
        text = error_text(await client.call_tool("generate_image", {"prompt": "x", "provider": "azure"}))
        assert "AZURE_OPENAI_API_KEY" in text
        providers = (await client.call_tool("list_providers", {})).structured_content
        assert providers is not None and providers["default_provider"] is None
        openai_info = next(p for p in providers["providers"] if p["name"] == "openai")
        assert not openai_info["configured"] and openai_info["enable_with"] == ["OPENAI_API_KEY"]
    assert store_files(store_dir) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"size": "1000x1000"}, "size 1000x1000 is not valid for gpt-image-2.6-sunburst"),
        ({"size": "big"}, "size must be 'auto' or WIDTHxHEIGHT"),
        ({"model": "gpt-image-2", "size": "1000x1000"}, "both edges must be multiples of 16"),
        ({"model": "gpt-image-2", "size": "3840x3840"}, "total pixels must be 655,360 to 8,294,400"),
        ({"model": "gpt-image-2", "size": "3200x640"}, "aspect ratio must be between 1:3 and 3:1"),
        ({"aspect_ratio": "5:1"}, "aspect_ratio 5:1 is outside 1:3..3:1 for gpt-image-2.6-sunburst"),
        ({"size": "1024x1024", "aspect_ratio": "1:1"}, "give size or aspect_ratio, not both"),
        (
            {"negative_prompt": "no dogs"},
            "unknown parameter 'negative_prompt': none of the providers configured here (openai)",
        ),
        ({"seed": 4}, "unknown parameter 'seed': none of the providers configured here (openai) takes it"),
        (
            {"background": "transparent", "output_format": "jpeg"},
            "transparent' needs output_format png or webp",
        ),
        ({"output_compression": 50}, "output_compression applies to jpeg or webp"),
        # The schema offers the qualities some OpenAI model takes; the model's own rules refuse the rest.
        ({"quality": "ultra"}, "quality: Input should be 'low', 'medium', 'high', 'auto', 'xhigh' or 'max'"),
        ({"model": "gpt-image-2", "quality": "max"}, "gpt-image-2 accepts quality low, medium, high, auto"),
        (
            {"model": "gpt-image-2", "background": "transparent"},
            "gpt-image-2 does not make transparent backgrounds; use gpt-image-2.6-sunburst, "
            "gpt-image-2.6-flare, gpt-image-2.5-sunburst, gpt-image-2.5-flare, or leave background out",
        ),
        # A shut-down model is never sent, and the error names what replaced it.
        (
            {"model": "gpt-image-1.5"},
            "gpt-image-1.5 was shut down by OpenAI on 2026-12-01; use gpt-image-2.6-flare or "
            "gpt-image-2.6-sunburst. Nothing was sent.",
        ),
        ({"provider": "nope"}, "unknown provider 'nope'"),
        ({"n": 11}, "less than or equal to 10"),
    ],
)
async def test_bad_generate_options_are_refused_before_any_request(
    openai_env: FakeOpenAIImages, store_dir: Path, arguments: dict[str, object], expected: str
) -> None:
    async with Client(build_server(load_settings())) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "x", "model": "gpt-image-2.6-sunburst", **arguments}
        )
        assert expected in error_text(result)
    assert openai_env.requests == []
    assert store_files(store_dir) == []


async def test_bad_edit_inputs_leave_the_store_unchanged(
    openai_env: FakeOpenAIImages, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes())
    (allowed / "notes.txt").write_text("not an image")
    (allowed / "escape.png").symlink_to(outside / "secret.png")
    (allowed / "truncated.png").write_bytes(png_bytes((200, 200))[:120])
    monkeypatch.setenv("IMAGEGEN_ALLOWED_DIRS", str(allowed))
    async with Client(build_server(load_settings())) as client:
        made = await client.call_tool("generate_image", {"prompt": "keep me"})
        assert not made.is_error
        before = store_files(store_dir)
        assert len(before) == 1
        cases = {
            str(outside / "secret.png"): "outside the folders this server may read",
            str(allowed / "escape.png"): "outside the folders this server may read",
            str(allowed / ".." / "outside" / "secret.png"): "outside the folders this server may read",
            str(allowed / "notes.txt"): "not a readable image",
            str(allowed / "truncated.png"): "image is damaged or truncated: image file is truncated",
            str(allowed / "missing.png"): "does not exist",
            "relative/path.png": "not an imagegen:// URI",
            "./relative.png": "is relative; give an absolute path",
            "data:image/png;base64,!!!!": "not valid base64",
            base64.b64encode(b"GIF89a-but-not-really" * 10).decode(): "not a readable image",
            "imagegen://images/0000000000000000": "no image '0000000000000000' in the store",
            "https://example.com/cat.png": "URL inputs are disabled",
        }
        for reference, expected in cases.items():
            text = error_text(await client.call_tool("edit_image", {"image": reference, "prompt": "x"}))
            assert expected in text, (reference, text)
            assert str(allowed) in text or expected != "outside the folders this server may read"
        assert made.structured_content is not None
        uri = made.structured_content["images"][0]["uri"]
        text = error_text(
            await client.call_tool(
                "edit_image",
                {
                    "image": uri,
                    "prompt": "x",
                    "mask": "data:image/png;base64," + base64.b64encode(png_bytes((10, 30))).decode(),
                },
            )
        )
        assert "the mask is 10x30 but the image is 1024x1024" in text
        # Still serving, and the store is exactly as before.
        assert not (await client.call_tool("generate_image", {"prompt": "after"})).is_error
    after = store_files(store_dir)
    assert set(before) <= set(after) and len(after) == 2
    assert not list((store_dir / "tmp").iterdir())


async def test_provider_failure_stores_nothing_and_server_keeps_serving(
    openai_env: FakeOpenAIImages, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_RETRY_BASE_SECONDS", "0.01")
    openai_env.fail_next.append(
        (
            400,
            {
                "error": {
                    "message": "Your request was rejected by the safety system.",
                    "type": "image_generation_user_error",
                    "code": "moderation_blocked",
                }
            },
        )
    )
    openai_env.fail_next.extend([(500, b"<html>upstream exploded</html>")] * 4)  # the first try and 3 retries
    async with Client(build_server(load_settings())) as client:
        text = error_text(await client.call_tool("generate_image", {"prompt": "x"}))
        assert "openai refused the request under its content policy" in text
        assert "Your request was rejected by the safety system" in text
        text = error_text(await client.call_tool("generate_image", {"prompt": "x"}))
        assert "HTTP 500" in text and "Nothing was stored" in text
        assert len(openai_env.requests) == 5
        assert store_files(store_dir) == []
        assert not (await client.call_tool("generate_image", {"prompt": "x"})).is_error
    assert len(store_files(store_dir)) == 1


async def test_unreachable_provider(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.loopback import free_port

    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    async with Client(build_server(load_settings())) as client:
        text = error_text(await client.call_tool("generate_image", {"prompt": "x"}))
    assert "could not reach openai" in text and "Nothing was stored" in text and "sk-x" not in text
    assert store_files(store_dir) == []
