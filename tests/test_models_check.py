"""`mcp-imagegen models check` (issue 27, point 3): every configured provider's live list, read as
the vendor publishes it (OpenAI's `shutdown_date`, Mistral's `deprecation`, Gemini's list, Vertex's
404s), compared with the model data; what changed is kept in the store's overlay, which a running
server honours without a restart, and `doctor` shows."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from mcp_imagegen.config import load_settings
from mcp_imagegen.server import model_check, model_knowledge
from mcp_imagegen.server.app import build_server
from mcp_imagegen.store.model_overlay import OVERLAY_FILE, FileOverlay
from tests.conftest import png_bytes
from tests.connect import child_env
from tests.fakes.google_genai import FakeGoogle
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
LONG_AGO = "2020-01-01"
FAR_OFF = "2099-01-01"
IMAGE = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()


@pytest.fixture
def every_provider(
    fake_openai: FakeOpenAIImages,
    fake_google: FakeGoogle,
    fake_mistral: FakeMistral,
    fake_chat: FakeChat,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    env = {
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "GEMINI_API_KEY": fake_google.api_key,
        "GOOGLE_GEMINI_BASE_URL": fake_google.url,
        "GOOGLE_CLOUD_PROJECT": fake_google.project,
        "GOOGLE_OAUTH_ACCESS_TOKEN": fake_google.access_token,
        "GOOGLE_VERTEX_BASE_URL": fake_google.url,
        "MISTRAL_API_KEY": fake_mistral.api_key,
        "MISTRAL_BASE_URL": fake_mistral.url,
        "SCW_SECRET_KEY": fake_chat.api_key,
        "SCALEWAY_BASE_URL": fake_chat.url,
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run_check(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mcp_imagegen", "models", "check", *arguments]
    return subprocess.run(
        command, env=child_env(env), capture_output=True, text=True, timeout=60, check=False
    )


def test_each_list_is_read_as_its_vendor_publishes_it(
    every_provider: dict[str, str],
    fake_openai: FakeOpenAIImages,
    fake_google: FakeGoogle,
    fake_mistral: FakeMistral,
    tmp_path: Path,
) -> None:
    fake_openai.listed["gpt-image-2.5-flare"] = FAR_OFF  # newly announced
    fake_openai.listed["gpt-image-3-preview"] = None  # a release the data does not know
    fake_google.listed.remove("gemini-3.1-flash-lite-image")  # Gemini's list is the same for everyone
    fake_google.vertex_gone.add("image-segmentation-001")
    fake_mistral.listed["mistral-medium-2508"] = (f"{LONG_AGO}T00:00:00Z", "mistral-medium-3.5")

    checked = run_check(every_provider, "--json")
    assert checked.returncode == 0, checked.stderr
    found = {entry["provider"]: entry for entry in json.loads(checked.stdout)["providers"]}
    assert set(found) == {"openai", "google", "vertex", "mistral", "scaleway"}
    assert found["openai"]["deprecated"] == [
        f"gpt-image-2.5-flare: shuts down on {FAR_OFF}",
    ]
    assert found["openai"]["new"] == ["gpt-image-3-preview"] and found["openai"]["shut_down"] == []
    assert "gpt-5" in found["openai"]["withheld"], "missing from OpenAI's list: reported, not judged"
    assert found["google"]["shut_down"] == ["gemini-3.1-flash-lite-image (no longer listed)"]
    assert found["vertex"]["shut_down"] == ["image-segmentation-001 (no longer listed)"]
    assert found["mistral"]["shut_down"] == [f"mistral-medium-2508 on {LONG_AGO}"]
    assert found["mistral"]["deprecated"] == [
        "mistral-medium-3.5: shuts down on 2026-12-14 (replacement: mistral-large-4)"
    ]
    assert found["scaleway"] == {
        "provider": "scaleway",
        "source": f"{fake_chat_models_url(every_provider)}",
        "shut_down": [],
        "deprecated": [],
        "new": [],
        "withheld": [],
        "error": None,
    }
    assert len([request for request in fake_google.requests if request.backend == "gemini"]) == 0
    overlay = json.loads((tmp_path / "store" / OVERLAY_FILE).read_text())
    learned = {(record["providers"][0], record["id"]): record for record in overlay["records"]}
    assert set(learned) == {
        ("openai", "gpt-image-2.5-flare"),
        ("google", "gemini-3.1-flash-lite-image"),
        ("vertex", "image-segmentation-001"),
        ("mistral", "mistral-medium-2508"),
        ("mistral", "mistral-medium-3.5"),
    }
    assert learned["mistral", "mistral-medium-2508"]["replacements"] == ["mistral-medium-3.5"]
    assert learned["openai", "gpt-image-2.5-flare"]["source"].endswith(
        "/v1/models (mcp-imagegen models check)"
    )

    # In words, and in doctor.
    text = run_check(every_provider)
    assert text.returncode == 0, text.stderr
    assert "mistral (" in text.stdout and f"  shut down: mistral-medium-2508 on {LONG_AGO}" in text.stdout
    assert "new, not in the model data (sent as named; no price): gpt-image-3-preview" in text.stdout
    doctor = subprocess.run(
        [sys.executable, "-m", "mcp_imagegen", "doctor"],
        env=child_env(every_provider),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "model check: " in doctor.stdout and "5 model(s) changed from the shipped data" in doctor.stdout


def fake_chat_models_url(env: dict[str, str]) -> str:
    from mcp_imagegen.providers.scaleway.provider import scaleway_endpoint

    return f"{scaleway_endpoint(load_settings().scaleway).base_url}/models"


def test_a_list_that_cannot_be_read_is_said_and_the_rest_still_count(every_provider: dict[str, str]) -> None:
    refused = run_check({**every_provider, "MISTRAL_API_KEY": "wrong-key-0123456789"})
    assert refused.returncode == 1
    assert "mistral: could not check: 127.0.0.1 answered HTTP 401 to /v1/models" in refused.stdout
    assert "wrong-key-0123456789" not in refused.stdout + refused.stderr
    assert "openai (" in refused.stdout


async def test_what_a_check_learns_is_honoured_without_a_restart(
    every_provider: dict[str, str], fake_mistral: FakeMistral, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_knowledge, "REREAD_S", 0.0)
    settings = load_settings()
    async with Client(build_server(settings)) as client:
        arguments: dict[str, Any] = {"images": [IMAGE], "provider": "mistral", "model": "mistral-medium-2508"}
        before = await client.call_tool("describe_image", arguments)
        assert not before.is_error, before.content
        fake_mistral.listed["mistral-medium-2508"] = (f"{LONG_AGO}T00:00:00Z", "mistral-medium-3.5")
        await model_check.run(settings, FileOverlay(settings.store_dir))
        sent = len(fake_mistral.of("/v1/chat"))
        after = await client.call_tool("describe_image", arguments)
    said = " ".join(block.text for block in after.content if isinstance(block, TextContent))
    assert after.is_error and (
        f"mistral-medium-2508 was shut down by Mistral on {LONG_AGO}; use mistral-medium-3.5. "
        "Nothing was sent." in said
    )
    assert len(fake_mistral.of("/v1/chat")) == sent, "nothing reached the provider"
