"""The one place where the error tree meets MCP: an anticipated failure becomes an `isError`
tool result whose text is our message; anything else stays the SDK's bare "Error executing
tool X" (its text may hold what a user must not see)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_imagegen.errors import ImagegenError
from mcp_imagegen.server.state import AppState


@contextmanager
def user_errors() -> Iterator[None]:
    """Map the error tree to the tool result the model reads (`isError` with our message)."""
    try:
        yield
    except ImagegenError as exc:
        raise ToolError(str(exc)) from None


def app_state(ctx: Context[AppState, Any]) -> AppState:
    return ctx.request_context.lifespan_context
