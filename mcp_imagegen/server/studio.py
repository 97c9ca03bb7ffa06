"""The studio: an MCP App (`ui://imagegen/studio`, the `io.modelcontextprotocol/ui` extension) that
hosts which render MCP Apps open beside every image result: the result's images full size with their
metadata and lineage, the caller's history, painting a mask to edit a region, and one-click
upscale, cut-out, variations and describe.

The app talks only through the host (`tools/call`, `resources/read`), so it works under the
default CSP in an iframe sandboxed with `allow-scripts` alone; the tools it alone uses are in
`server/tools/studio.py`. Hosts without Apps see the image tools exactly as before.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from mcp.server.apps import Apps
from mcp.types import Tool

STUDIO_URI = "ui://imagegen/studio"
SHOWN_IN_STUDIO: dict[str, Any] = {"ui": {"resourceUri": STUDIO_URI}}
"""The `_meta` of the tools whose results the studio opens."""
APP_ONLY: dict[str, Any] = {"ui": {"resourceUri": STUDIO_URI, "visibility": ["app"]}}
"""The `_meta` of tools for the studio alone: hosts keep them from the model."""


def studio_html() -> str:
    """The app: one self-contained HTML document shipped in the package (no CDN, no fonts, no network)."""
    return resources.files("mcp_imagegen.server").joinpath("studio.html").read_text(encoding="utf-8")


def studio_extension() -> Apps:
    """The Apps extension with the studio's resource (default CSP: no network, `data:` images)."""
    apps = Apps()
    apps.add_html_resource(
        STUDIO_URI,
        studio_html(),
        name="studio",
        title="Image studio",
        description="See results full size, browse your images, paint a mask and edit, upscale, cut out.",
        prefers_border=True,
    )
    return apps


def for_client(tools: list[Tool], *, renders_apps: bool) -> list[Tool]:
    """The tool list as a client sees it: whole for a host that renders MCP Apps (it keeps the
    app-only tools from its model itself); for any other, without the studio's tools and without
    `_meta.ui`, so that such a host's model reads exactly the list it read before the studio."""
    if renders_apps:
        return tools
    shown = []
    for tool in tools:
        ui = (tool.meta or {}).get("ui")
        if not isinstance(ui, dict):
            shown.append(tool)
        elif "model" in ui.get("visibility", ("model",)):
            rest = {key: value for key, value in (tool.meta or {}).items() if key != "ui"}
            shown.append(tool.model_copy(update={"meta": rest or None}))
    return shown
