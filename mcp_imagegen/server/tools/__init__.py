"""The MCP tools, one module per family: each validates its call, reads its inputs, builds the
request, and starts the job. Arguments are declared in `arguments.py` and `providers/options.py`;
errors cross into MCP only in `boundary.py`."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from mcp_imagegen.server.studio import SHOWN_IN_STUDIO
from mcp_imagegen.server.tools.arguments import StrictTool
from mcp_imagegen.server.tools.catalogue import catalogue_tools
from mcp_imagegen.server.tools.describe import describe_tools
from mcp_imagegen.server.tools.images import image_tools
from mcp_imagegen.server.tools.jobs import job_tools
from mcp_imagegen.server.tools.studio import studio_tools
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.server.tools.transform import transform_tools
from mcp_imagegen.server.tools.usage import usage_tools


def all_tools(surface: Surface) -> list[Tool]:
    """The tools this surface offers, in the order `tools/list` shows them; with the studio app,
    the image tools name it in `_meta.ui` and its app-only tools come last."""
    tools = [
        *image_tools(surface),
        *catalogue_tools(surface),
        *job_tools(surface),
        *usage_tools(surface),
        *transform_tools(surface),
        *describe_tools(surface),
    ]
    return [*(_shown_in_studio(tool) for tool in tools), *studio_tools(surface)]


def _shown_in_studio(tool: Tool) -> Tool:
    """An image-making tool opens its results in the studio; describe_image makes none."""
    if isinstance(tool, StrictTool) and tool.operation not in (None, "describe"):
        return tool.model_copy(update={"meta": SHOWN_IN_STUDIO})
    return tool
