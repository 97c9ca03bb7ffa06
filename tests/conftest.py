"""Shared fixtures: the anyio backend, an isolated environment, the loopback OpenAI fake."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from PIL import Image
from starlette.types import ASGIApp

from mcp_imagegen.config import default_models_dir
from mcp_imagegen.local.model_files import all_statuses
from tests.fakes.google_genai import FakeGoogle
from tests.fakes.loopback import LoopbackServer
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_images import FakeOpenAIImages

pytest_plugins = ["tests.services"]
"""The real PostgreSQL and SeaweedFS servers, for the tests that ask for them."""

PROVIDER_ENV_PREFIXES = (
    "OPENAI_",
    "AZURE_OPENAI_",
    "IMAGEGEN_",
    "GOOGLE_",
    "GEMINI_",
    "SCW_",
    "SCALEWAY_",
    "MISTRAL_",
    "AWS_",
)


LOCAL_MODELS_DIR = Path(os.environ.get("IMAGEGEN_MODELS_DIR") or default_models_dir()).expanduser()
"""Where `mcp-imagegen models fetch` put the local models (read before `clean_env` clears IMAGEGEN_*)."""


def pytest_report_header() -> str:
    """Which browser the studio's browser tests run on: engines differ (Chromium 156 draws no
    zero-length stroke), so a run says which one it proved the app on."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return "chromium: not installed (the studio browser tests will fail: apt-get install chromium)"
    said = subprocess.run([chromium, "--version"], check=False, capture_output=True, text=True, timeout=30)
    return f"chromium: {said.stdout.strip() or said.stderr.strip()}"


@pytest.fixture
def local_models(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fetched local models, set as the server's models folder; fails (never skips) without them."""
    absent = [s.model.name for s in all_statuses(LOCAL_MODELS_DIR, check_hashes=False) if s.state != "ready"]
    assert not absent, (
        f"local models {absent} are not in {LOCAL_MODELS_DIR}: run `mcp-imagegen models fetch` "
        "(bash .ci/run does, into .ci-models/)"
    )
    monkeypatch.setenv("IMAGEGEN_MODELS_DIR", str(LOCAL_MODELS_DIR))
    return LOCAL_MODELS_DIR


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real keys or settings leak into a test; the store lives in the test's tmp dir."""
    for name in list(os.environ):
        if name.startswith(PROVIDER_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("IMAGEGEN_MODELS_DIR", str(tmp_path / "models"))


class Fake(Protocol):
    """What every loopback fake has: its ASGI app, and the URL it is served at once running."""

    url: str

    @property
    def app(self) -> ASGIApp: ...


F = TypeVar("F", bound=Fake)


@contextmanager
def served(fake: F) -> Iterator[F]:
    """The fake on a loopback port for the length of the block, its `url` set."""
    with LoopbackServer(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIImages]:
    with served(FakeOpenAIImages()) as fake:
        yield fake


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    with served(FakeGoogle()) as fake:
        yield fake


@pytest.fixture
def fake_chat() -> Iterator[FakeChat]:
    with served(FakeChat()) as fake:
        yield fake


@pytest.fixture
def server_env(
    fake_openai: FakeOpenAIImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Settings for a server that uses the OpenAI fake: set in os.environ (for the in-memory
    transport) and returned (for the spawned ones)."""
    env = {
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def png_bytes(
    size: tuple[int, int] = (64, 48), colour: tuple[int, ...] = (200, 30, 30), mode: str = "RGB"
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        return width, height


@pytest.fixture
def fake_mistral() -> Iterator[FakeMistral]:
    with served(FakeMistral()) as fake:
        yield fake
