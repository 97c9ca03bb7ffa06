"""Write manifest/manifest.json (MCPB) and manifest/server.json (MCP registry) from the server itself.

The tool list and descriptions come from the running server's `tools/list`, the version from
the installed package (pyproject.toml), and the settings from the provider specs, so the
manifests cannot drift from the code: `tests/test_manifests.py` runs this in check mode and
fails on any difference.

Run: `python manifest/sync_manifests.py` (write) or `python manifest/sync_manifests.py --check`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp_imagegen import __version__  # noqa: E402

REGISTRY_NAME = "io.github.mcp-imagegen/mcp-imagegen"
DESCRIPTION = "Generate, edit, upscale, segment and describe images across OpenAI, Google, Mistral and more."
REPOSITORY = "https://github.com/mcp-imagegen/mcp-imagegen"
SECRETS = {
    "openai_api_key": (
        "OPENAI_API_KEY",
        "OpenAI API key",
        "Enables the openai provider (images and vision).",
    ),
    "gemini_api_key": (
        "GEMINI_API_KEY",
        "Gemini API key",
        "Enables the google provider (Gemini image models).",
    ),
    "mistral_api_key": (
        "MISTRAL_API_KEY",
        "Mistral API key",
        "Enables the mistral provider (image agent, vision).",
    ),
    "azure_openai_api_key": ("AZURE_OPENAI_API_KEY", "Azure OpenAI API key", "Enables the azure provider."),
    "scw_secret_key": (
        "SCW_SECRET_KEY",
        "Scaleway secret key",
        "Enables the scaleway provider (describe_image).",
    ),
}
SETTINGS = {
    "azure_openai_endpoint": (
        "AZURE_OPENAI_ENDPOINT",
        "Azure OpenAI endpoint",
        "https://<resource>.openai.azure.com (with the Azure key).",
    ),
    "default_provider": (
        "IMAGEGEN_DEFAULT_PROVIDER",
        "Default provider",
        "Used when a call names none, e.g. openai, google, placeholder.",
    ),
}
STORE_DIR = ("IMAGEGEN_STORE_DIR", "Image folder", "Where generated and edited images are kept.")


async def server_tools() -> list[dict[str, str]]:
    """Name and description of every tool, as a host would see them."""
    from mcp import Client

    from mcp_imagegen.config import load_settings
    from mcp_imagegen.server.app import build_server
    from mcp_imagegen.server.tools.surface import Surface

    with tempfile.TemporaryDirectory() as store:
        os.environ["IMAGEGEN_STORE_DIR"] = store
        async with Client(build_server(load_settings(), surface=Surface.everything())) as client:
            tools = (await client.list_tools()).tools
    return [{"name": tool.name, "description": (tool.description or "").strip()} for tool in tools]


def mcpb_manifest(tools: list[dict[str, str]]) -> dict[str, Any]:
    env = {name: f"${{user_config.{key}}}" for key, (name, _, _) in {**SECRETS, **SETTINGS}.items()}
    env[STORE_DIR[0]] = "${user_config.store_dir}"
    user_config: dict[str, Any] = {
        key: {
            "type": "string",
            "title": title,
            "description": description,
            "sensitive": True,
            "required": False,
        }
        for key, (_, title, description) in SECRETS.items()
    }
    user_config.update(
        {
            key: {"type": "string", "title": title, "description": description, "required": False}
            for key, (_, title, description) in SETTINGS.items()
        }
    )
    user_config["store_dir"] = {
        "type": "directory",
        "title": STORE_DIR[1],
        "description": STORE_DIR[2],
        "default": "${HOME}/Pictures/mcp-imagegen",
        "required": False,
    }
    return {
        "manifest_version": "0.3",
        "name": "mcp-imagegen",
        "display_name": "Image generation (mcp-imagegen)",
        "version": __version__,
        "description": DESCRIPTION,
        "long_description": (
            "One set of image tools across providers: generate, edit, upscale, recontext, segment and "
            "describe, with every image kept in a local store and returned inline. Set the key of at least "
            "one provider; the placeholder provider works without any."
        ),
        "author": {"name": "mcp-imagegen developers", "url": REPOSITORY},
        "repository": {"type": "git", "url": REPOSITORY},
        "homepage": REPOSITORY,
        "license": "MIT",
        "keywords": ["image", "generation", "editing", "vision", "openai", "gemini", "mistral"],
        "server": {
            "type": "python",
            "entry_point": "server/main.py",
            "mcp_config": {
                "command": "python3",
                "args": ["${__dirname}/server/main.py"],
                "env": {"PYTHONPATH": "${__dirname}/server/lib", **env},
                "platform_overrides": {"win32": {"command": "python"}},
            },
        },
        "tools": tools,
        "tools_generated": False,
        "user_config": user_config,
        "compatibility": {
            "claude_desktop": ">=0.10.0",
            "platforms": ["darwin", "win32", "linux"],
            "runtimes": {"python": ">=3.10 <4"},
        },
    }


def registry_entry() -> dict[str, Any]:
    variables = [
        {"name": name, "description": description, "isRequired": False, "isSecret": True, "format": "string"}
        for name, _, description in SECRETS.values()
    ]
    variables += [
        {"name": name, "description": description, "isRequired": False, "isSecret": False, "format": "string"}
        for name, _, description in (*SETTINGS.values(), STORE_DIR)
    ]
    return {
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": REGISTRY_NAME,
        "title": "Image generation",
        "description": DESCRIPTION,
        "version": __version__,
        "repository": {"url": REPOSITORY, "source": "github"},
        "websiteUrl": REPOSITORY,
        "packages": [
            {
                "registryType": "pypi",
                "identifier": "mcp-imagegen",
                "version": __version__,
                "runtimeHint": "uvx",
                "transport": {"type": "stdio"},
                "environmentVariables": variables,
            }
        ],
        "remotes": [
            {
                "type": "streamable-http",
                "url": "https://images.example.com/mcp",
                "headers": [
                    {
                        "name": "Authorization",
                        "description": "Bearer token set in IMAGEGEN_AUTH_TOKENS on the server",
                        "isRequired": True,
                        "isSecret": True,
                    }
                ],
            }
        ],
    }


def rendered() -> dict[Path, str]:
    tools = anyio.run(server_tools)
    return {
        ROOT / "manifest" / "manifest.json": json.dumps(mcpb_manifest(tools), indent=2) + "\n",
        ROOT / "manifest" / "server.json": json.dumps(registry_entry(), indent=2) + "\n",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed manifest differs")
    args = parser.parse_args()
    stale = []
    for path, text in rendered().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.exit(f"out of date: {', '.join(stale)}; run python manifest/sync_manifests.py")


if __name__ == "__main__":
    main()
