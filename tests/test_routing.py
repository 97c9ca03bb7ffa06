"""Routing by capability, from the providers' own specs: which provider a call with no provider
named goes to, a model name that only one configured provider serves, the messages that say
what to set, and provider modules imported only when their spec is needed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import httpx2
import pytest

from mcp_imagegen.config import load_settings
from mcp_imagegen.errors import ConfigError, InputError, UnsupportedOptionError
from mcp_imagegen.operations import DESCRIBE, GENERATE, UPSCALE
from mcp_imagegen.providers.registry import BUILTIN, ProviderRegistry, no_provider_message, spec_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as http:
        yield http


async def test_no_provider_names_every_way_to_configure_one(client: httpx2.AsyncClient) -> None:
    registry = ProviderRegistry(load_settings(), client)
    with pytest.raises(ConfigError) as refused:
        registry.default_name("generate")
    message = str(refused.value)
    assert message == no_provider_message()
    for variable in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT"):
        assert variable in message
    assert "MISTRAL_API_KEY" in message and "SCW_SECRET_KEY" in message and "placeholder" in message
    # Without a key, the local provider still segments, upscales and describes.
    assert [registry.default_name(op) for op in ("segment", "upscale", "describe")] == ["local"] * 3
    with pytest.raises(ConfigError, match="the openai provider is not configured: set OPENAI_API_KEY"):
        registry.provider_for(GENERATE, "openai")
    with pytest.raises(InputError, match="unknown provider 'dall-e'; known providers: openai, azure"):
        registry.provider_for(GENERATE, "dall-e")


async def test_cloud_first_local_last_and_routing_by_model(
    client: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GEMINI_API_KEY", "g-test")
    registry = ProviderRegistry(load_settings(), client)
    assert registry.default_name("generate") == "openai"
    assert registry.default_name("describe") == "openai"
    assert registry.default_name("segment") == "local"
    # A model only Google serves goes to Google though OpenAI comes first.
    assert registry.provider_for(GENERATE, None, "gemini-nano-banana-2.1").name == "google"
    # A retired model goes to its own provider (to be refused there, naming its replacement).
    assert registry.provider_for(GENERATE, None, "gemini-3.1-flash-image").name == "google"
    assert registry.provider_for(GENERATE, None, "gpt-image-2").name == "openai"
    assert registry.provider_for(DESCRIBE, None, "gemini-2.5-pro").name == "google"
    with pytest.raises(UnsupportedOptionError, match="google cannot upscale images; providers that can: "):
        registry.provider_for(UPSCALE, "google")


async def test_default_provider_setting_wins_when_it_can(
    client: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("IMAGEGEN_DEFAULT_PROVIDER", "placeholder")
    registry = ProviderRegistry(load_settings(), client)
    assert registry.provider_for(GENERATE, None).name == "placeholder"
    # The placeholder cannot describe, so describe still goes to a real provider.
    assert registry.default_name("describe") == "openai"


def test_every_builtin_spec_is_found_by_its_name() -> None:
    assert [spec_for(name).name for name in BUILTIN] == list(BUILTIN)


def test_a_server_imports_only_the_provider_modules_it_uses() -> None:
    """Building the server reads the specs, but loads no unconfigured cloud provider's translation
    module (their specs live beside their endpoints)."""
    script = (
        "import sys\n"
        "from mcp_imagegen.config import load_settings\n"
        "from mcp_imagegen.server.app import build_server\n"
        "build_server(load_settings())\n"
        "print(sorted(m for m in sys.modules if m.startswith('mcp_imagegen.providers.')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    for module in ("openai.images", "openai.responses", "google.gemini", "google.imagen", "local.provider"):
        assert f"'mcp_imagegen.providers.{module}'" not in loaded, loaded


def test_the_drawn_error_tree_is_the_code() -> None:
    """errors.py's docstring draws the hierarchy; each drawn child subclasses the drawn parent."""
    import inspect

    from mcp_imagegen import errors

    doc = errors.__doc__ or ""
    lines = [line for line in doc.splitlines() if "Error" in line and line.startswith("    ")]
    parents: list[type[BaseException]] = []
    drawn = set()
    for line in lines:
        name = line.split("Error", 1)[0].split()[-1].lstrip("├└─│ ") + "Error"
        depth = (len(line) - len(line.lstrip(" │├└─"))) // 4 - 1
        cls = getattr(errors, name)
        del parents[depth:]
        if parents:
            assert cls.__bases__ == (parents[-1],), (name, cls.__bases__, parents[-1])
        parents.append(cls)
        drawn.add(cls)
    defined = {
        obj for _, obj in inspect.getmembers(errors, inspect.isclass) if obj.__module__ == errors.__name__
    }
    assert drawn == defined
