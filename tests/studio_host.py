"""A test host for the studio app in real headless Chromium (Debian's `chromium`, driven by
Playwright through `executable_path`): a page that loads the app HTML exactly as the server serves
it from `resources/read` into an iframe sandboxed with `allow-scripts` alone, and plays the host
side of MCP Apps with the official host bridge (`@modelcontextprotocol/ext-apps/app-bridge` from
npm, bundled by esbuild), forwarding the app's `tools/call` and `resources/read` to a real
mcp-imagegen server through an MCP client.
As a host must, it refuses the app's calls to tools whose visibility leaves the app out. Every
request the page makes is recorded, so tests can prove none leaves for the network."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client import ClientExtension
from mcp.types import CallToolResult, TextResourceContents
from playwright.async_api import FrameLocator, Page, async_playwright

APP_MIME = "text/html;profile=mcp-app"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

NODE_MODULES_ROOT = Path(
    os.environ.get("IMAGEGEN_TEST_NODE_DIR") or Path(__file__).parent.parent / ".ci-node"
)
"""Where `.ci/run` installs the npm packages: the official `@modelcontextprotocol/ext-apps` and esbuild."""
BRIDGE_ENTRY = (
    'import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";'
    " window.ExtApps = { AppBridge, PostMessageTransport };"
)

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>body { margin: 0; background: #888; }
iframe { border: 0; width: 900px; height: 600px; display: block; background: white; }</style></head>
<body><iframe id="app" sandbox="allow-scripts" title="studio"></iframe></body></html>"""

HOST_SCRIPT = """
"use strict";
// The host side, with the official AppBridge: it answers ui/initialize with the host context,
// holds notifications until the app is initialized, and hands the app's requests to handlers.
const frame = document.getElementById("app");
window.openedLinks = [];
window.downloads = [];
window.displayModes = [];
window.modelContext = [];
window.startApp = async (html, theme, capabilities) => {
  const { AppBridge, PostMessageTransport } = window.ExtApps;
  const bridge = new AppBridge(
    null,
    { name: "imagegen-test-host", version: "1" },
    { serverTools: {}, serverResources: {}, openLinks: {}, ...capabilities },
    { hostContext: { theme, displayMode: "inline", availableDisplayModes: ["inline", "fullscreen"],
                     platform: "web", containerDimensions: { width: 900, maxHeight: 4000 } } },
  );
  const forward = async (method, params) =>
    JSON.parse(await window.mcpForward(method, JSON.stringify(params)));
  bridge.oncalltool = (params) => forward("tools/call", params);
  bridge.onreadresource = (params) => forward("resources/read", params);
  bridge.onopenlink = async ({ url }) => { window.openedLinks.push(url); return {}; };
  bridge.ondownloadfile = async (params) => { window.downloads.push(params); return {}; };
  bridge.onrequestdisplaymode = async ({ mode }) => { window.displayModes.push(mode); return { mode }; };
  bridge.onupdatemodelcontext = async (params) => { window.modelContext.push(params); return {}; };
  bridge.onsizechange = ({ height }) => { if (height) frame.style.height = `${height}px`; };
  window.appInitialized = new Promise((resolve) => { bridge.oninitialized = () => resolve(true); });
  window.bridge = bridge;
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  frame.srcdoc = html;
};
window.deliver = async (input, result) => {
  await window.appInitialized;
  await window.bridge.sendToolInput(input);
  await window.bridge.sendToolResult(result);
};
"""


@functools.cache
def bridge_bundle() -> str:
    """The official AppBridge as one browser script, bundled by esbuild from the npm packages."""
    esbuild = NODE_MODULES_ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise RuntimeError(
            f"{esbuild} is missing: .ci/run installs @modelcontextprotocol/ext-apps and esbuild"
        )
    built = subprocess.run(
        [str(esbuild), "--bundle", "--format=iife", "--log-level=warning"],
        input=BRIDGE_ENTRY,
        cwd=NODE_MODULES_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return built.stdout


class AppsHost(ClientExtension):
    """What a host that renders MCP Apps advertises."""

    identifier = "io.modelcontextprotocol/ui"

    def settings(self) -> dict[str, Any]:
        return {"mimeTypes": [APP_MIME]}


class StudioHost:
    """One page with the app loaded; `frame` is the app's document for locators."""

    def __init__(self, page: Page, client: Client) -> None:
        self.page = page
        self.client = client
        self.requests: list[str] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.visibility: dict[str, list[str]] = {}
        self.frame: FrameLocator = page.frame_locator("#app")

    async def start(
        self, tool: str = "generate_image", theme: str = "light", capabilities: dict[str, Any] | None = None
    ) -> None:
        """Load the app the way a host does: from the tool's `_meta.ui.resourceUri`."""
        listed = (await self.client.list_tools()).tools
        self.visibility = {
            item.name: list(((item.meta or {}).get("ui") or {}).get("visibility", ["model", "app"]))
            for item in listed
        }
        [meta] = [item.meta for item in listed if item.name == tool]
        uri = (meta or {})["ui"]["resourceUri"]
        contents = (await self.client.read_resource(uri)).contents
        assert isinstance(contents[0], TextResourceContents) and contents[0].mime_type == APP_MIME
        self.page.on("request", lambda request: self.requests.append(request.url))
        await self.page.expose_function("mcpForward", self._forward)
        await self.page.set_content(HOST_PAGE)
        await self.page.add_script_tag(content=bridge_bundle())
        await self.page.add_script_tag(content=HOST_SCRIPT)
        await self.page.evaluate(
            "([html, theme, capabilities]) => window.startApp(html, theme, capabilities)",
            [contents[0].text, theme, capabilities or {}],
        )

    async def show(self, arguments: dict[str, Any], result: CallToolResult) -> None:
        """What a host sends once the tool call it rendered the app for is done."""
        await self.page.evaluate(
            "([input, output]) => window.deliver(input, output)",
            [{"arguments": arguments}, result.model_dump(by_alias=True, exclude_none=True, mode="json")],
        )

    async def _forward(self, method: str, params_json: str) -> str:
        params = json.loads(params_json)
        if method == "tools/call":
            name = params["name"]
            if "app" not in self.visibility.get(name, []):
                raise ValueError(f"tool {name} is not available to apps")
            self.calls.append((name, params.get("arguments") or {}))
            result: Any = await self.client.call_tool(name, params.get("arguments") or {})
        else:
            result = await self.client.read_resource(params["uri"])
        return json.dumps(result.model_dump(by_alias=True, exclude_none=True, mode="json"))

    def network_requests(self) -> list[str]:
        """Requests the page made to any network origin (the host page itself is about:blank)."""
        return [url for url in self.requests if not url.startswith(("data:", "about:", "blob:"))]


@asynccontextmanager
async def studio_page(client: Client) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
            yield page
        finally:
            await browser.close()
