"""A test host for the studio app in real headless Chromium (Debian's `chromium`, driven by
Playwright through `executable_path`): a page that loads the app HTML exactly as the server serves
it from `resources/read` into an iframe sandboxed with `allow-scripts` alone, and plays the host
side of MCP Apps (`ui/initialize`, tool input and result notifications, size changes), forwarding
the app's `tools/call` and `resources/read` to a real mcp-imagegen server through an MCP client.
As a host must, it refuses the app's calls to tools whose visibility leaves the app out. Every
request the page makes is recorded, so tests can prove none leaves for the network."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client
from mcp.client import ClientExtension
from mcp.types import CallToolResult, TextResourceContents
from playwright.async_api import FrameLocator, Page, async_playwright

APP_MIME = "text/html;profile=mcp-app"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>body { margin: 0; background: #888; }
iframe { border: 0; width: 900px; height: 600px; display: block; background: white; }</style></head>
<body><iframe id="app" sandbox="allow-scripts" title="studio"></iframe>
<script>
"use strict";
const frame = document.getElementById("app");
let initialized = false;
let queued = [];
window.hostLog = [];
window.openedLinks = [];
window.hostTheme = "light";
function post(message) { frame.contentWindow.postMessage(message, "*"); }
function reply(id, result) { post({ jsonrpc: "2.0", id, result }); }
function fail(id, message) { post({ jsonrpc: "2.0", id, error: { code: -32000, message } }); }
window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow) return;
  const message = event.data;
  window.hostLog.push(message.method || `response ${message.id}`);
  switch (message.method) {
    case "ui/initialize":
      return reply(message.id, {
        protocolVersion: "2026-01-26",
        hostInfo: { name: "imagegen-test-host", version: "1" },
        hostCapabilities: { serverTools: {}, serverResources: {}, openLinks: {} },
        hostContext: { theme: window.hostTheme, displayMode: "inline", platform: "web",
                       containerDimensions: { width: 900, maxHeight: 4000 } },
      });
    case "ui/notifications/initialized":
      initialized = true;
      queued.forEach(post);
      queued = [];
      return;
    case "ui/open-link":
      window.openedLinks.push(message.params.url);
      return reply(message.id, {});
    case "ui/notifications/size-changed":
      frame.style.height = `${message.params.height}px`;
      return;
    case "tools/call":
    case "resources/read":
      try {
        const answer = await window.mcpForward(message.method, JSON.stringify(message.params));
        reply(message.id, JSON.parse(answer));
      } catch (error) {
        fail(message.id, String(error.message || error));
      }
      return;
    default:
      if ("id" in message && message.method) reply(message.id, {});
  }
});
window.deliver = (method, params) => {
  const message = { jsonrpc: "2.0", method, params };
  if (initialized) post(message); else queued.push(message);
};
window.startApp = (html) => { frame.srcdoc = html; };
</script></body></html>"""


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

    async def start(self, tool: str = "generate_image", theme: str = "light") -> None:
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
        await self.page.evaluate("theme => { window.hostTheme = theme; }", theme)
        await self.page.evaluate("html => window.startApp(html)", contents[0].text)

    async def show(self, arguments: dict[str, Any], result: CallToolResult) -> None:
        """What a host sends once the tool call it rendered the app for is done."""
        await self.page.evaluate(
            "([input, output]) => { window.deliver('ui/notifications/tool-input', input);"
            " window.deliver('ui/notifications/tool-result', output); }",
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
