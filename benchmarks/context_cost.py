"""Print what `tools/list` costs a host's context for each configuration, next to its budget.

Every host sends every tool's name, description and schemas to the model on every turn. For
each configuration this builds the server in a fresh process with only those variables set,
lists its tools through an in-memory MCP client, and prints two sizes in characters of JSON:
names + descriptions + input schemas (what the model reads to choose a call), and the whole
`tools/list` result (output schemas and annotations too). "Without the local extra" hides the
local provider's optional runtimes in that process, as on an install without `[local]`.

Run: `python benchmarks/context_cost.py`
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

OPENAI = {"OPENAI_API_KEY": "sk-context-cost"}
GEMINI = {"GEMINI_API_KEY": "g-context-cost"}
VERTEX = {"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.context-cost"}
EVERYTHING = {
    **OPENAI,
    **GEMINI,
    **VERTEX,
    "AZURE_OPENAI_API_KEY": "a",
    "AZURE_OPENAI_ENDPOINT": "https://example.invalid",
    "AZURE_OPENAI_DEPLOYMENT": "img",
    "MISTRAL_API_KEY": "m",
    "SCW_SECRET_KEY": "s",
}


@dataclass(frozen=True)
class Configuration:
    name: str
    env: dict[str, str]
    local_extra: bool
    budget: tuple[int, int] | None
    """(names + descriptions + input schemas, whole tools/list) in characters, where the issue sets one."""
    apps_host: bool = False
    """The client renders MCP Apps: it gets the studio's tools and `_meta.ui`, and keeps the app-only
    tools from its model (so they count in the whole list, not in what the model reads)."""


CONFIGURATIONS = (
    Configuration("no provider, no local extra", {}, False, None),
    Configuration("OpenAI alone, no local extra", OPENAI, False, (10_000, 14_000)),
    Configuration("OpenAI + local provider", OPENAI, True, (12_000, 17_000)),
    Configuration("Google (Gemini API) + local", GEMINI, True, None),
    Configuration("Vertex + local", VERTEX, True, None),
    Configuration("every provider + local", EVERYTHING, True, (22_000, 28_000)),
    Configuration("OpenAI + local, MCP Apps host", OPENAI, True, None, apps_host=True),
)

_PROBE = """
import anyio, json, sys
from mcp import Client
from mcp.client import ClientExtension
from mcp_imagegen.config import load_settings
from mcp_imagegen.server.app import build_server
if sys.argv[1] == "0":
    import mcp_imagegen.local.model_files as files
    files.runtime_installed = lambda model: False
class AppsHost(ClientExtension):
    identifier = "io.modelcontextprotocol/ui"
    def settings(self):
        return {"mimeTypes": ["text/html;profile=mcp-app"]}
async def main():
    extensions = [AppsHost()] if sys.argv[2] == "1" else None
    async with Client(build_server(load_settings()), extensions=extensions) as client:
        listed = await client.list_tools()
    tools = [tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in listed.tools]
    print(json.dumps(tools))
anyio.run(main)
"""


@dataclass(frozen=True)
class Cost:
    tools: list[dict[str, object]]

    @property
    def model_facing(self) -> int:
        """Names, descriptions and input schemas of the tools a host gives its model (not the
        app-only ones, `_meta.ui.visibility: ["app"]`, which hosts keep from it)."""
        return sum(
            len(str(tool["name"]))
            + len(str(tool.get("description", "")))
            + len(json.dumps(tool["inputSchema"]))
            for tool in self.tools
            if "model" in _visibility(tool)
        )

    @property
    def whole(self) -> int:
        return len(json.dumps({"tools": self.tools}))


def _visibility(tool: dict[str, object]) -> list[str]:
    meta = tool.get("_meta")
    ui = meta.get("ui") if isinstance(meta, dict) else None
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return list(visibility) if isinstance(visibility, list) else ["model", "app"]


def measure(configuration: Configuration, store_dir: str) -> Cost:
    """The tool list of a server with exactly this configuration, from a fresh process."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env = {**keep, "IMAGEGEN_STORE_DIR": store_dir, "PYTHONPATH": ROOT, **configuration.env}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            "1" if configuration.local_extra else "0",
            "1" if configuration.apps_host else "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Cost(json.loads(out))


def main() -> None:
    import tempfile

    print(f"{'configuration':34} {'tools':>5} {'model-facing':>13} {'budget':>7} {'whole':>7} {'budget':>7}")
    with tempfile.TemporaryDirectory() as store:
        for configuration in CONFIGURATIONS:
            cost = measure(configuration, store)
            core_budget, whole_budget = configuration.budget or (None, None)
            print(
                f"{configuration.name:34} {len(cost.tools):5} {cost.model_facing:13,} "
                f"{core_budget or '-':>7} {cost.whole:7,} {whole_budget or '-':>7}"
            )


if __name__ == "__main__":
    main()
