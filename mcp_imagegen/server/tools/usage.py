"""get_usage: the caller's provider calls and their estimated cost over a period (everyone's, or
one principal's, for the imagegen:admin scope), with today's budget where one applies."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from mcp_imagegen.errors import InputError
from mcp_imagegen.server.principals import ADMIN_SCOPE, current_principal
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.arguments import ToolArguments, strict_tool, tool_annotations
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.usage.report import as_text, period, usage_report


class UsageCall(ToolArguments):
    since: Annotated[str | None, Field(description="First day, YYYY-MM-DD (UTC).", max_length=40)] = None
    until: Annotated[str | None, Field(description="Last day.", max_length=40)] = None
    principal: Annotated[str | None, Field(description="Admin only: whose, or '*'.", max_length=128)] = None


async def get_usage(call: UsageCall, ctx: Context[AppState, Any]) -> CallToolResult:
    """Your provider calls and estimated cost by day, provider and model (default: last 30 days),
    and today's budget."""
    # The structured content is a `UsageReport`; its schema is left undeclared to keep tools/list small.
    with user_errors():
        app = app_state(ctx)
        caller = current_principal()
        whose: str | None = caller.name
        if call.principal not in (None, caller.name):
            if not caller.admin:
                raise InputError(f"only the {ADMIN_SCOPE} scope may see another principal's usage")
            whose = None if call.principal == "*" else call.principal
        today = datetime.datetime.now(datetime.timezone.utc).date()
        since, until = period(call.since, call.until, today)
        limit = app.settings.budget_for(whose) if whose is not None else None
        report = await usage_report(app.ledger, whose, since, until, limit)
        return CallToolResult(
            content=[
                TextContent(text=as_text(report)),
                TextContent(text=report.model_dump_json(exclude_none=True)),
            ],
            structured_content=report.model_dump(mode="json", exclude_none=True),
        )


def usage_tools(surface: Surface) -> list[Tool]:
    annotations = tool_annotations("Get usage and cost", read_only=True, idempotent=True, open_world=False)
    return [strict_tool(get_usage, UsageCall, annotations, surface)]
