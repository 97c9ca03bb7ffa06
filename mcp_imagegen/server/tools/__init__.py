"""The MCP tools, one module per family: each validates its call, reads its inputs, builds the
request, and starts the job. Arguments are declared in `arguments.py` and `providers/options.py`;
errors cross into MCP only in `boundary.py`."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from mcp_imagegen.server.tools.catalogue import catalogue_tools
from mcp_imagegen.server.tools.describe import describe_tools
from mcp_imagegen.server.tools.images import image_tools
from mcp_imagegen.server.tools.jobs import job_tools
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.server.tools.transform import transform_tools
from mcp_imagegen.server.tools.usage import usage_tools


def all_tools(surface: Surface) -> list[Tool]:
    """The tools this surface offers, in the order `tools/list` shows them."""
    return [
        *image_tools(surface),
        *catalogue_tools(surface),
        *job_tools(surface),
        *usage_tools(surface),
        *transform_tools(surface),
        *describe_tools(surface),
    ]
