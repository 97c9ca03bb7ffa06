"""list_providers: every provider, configured or not, with what it can do and how to enable it."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel, Field

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.arguments import ToolArguments, strict_tool, tool_annotations
from mcp_imagegen.server.tools.boundary import app_state
from mcp_imagegen.server.tools.surface import Surface


class ProviderInfo(BaseModel):
    name: str
    title: str
    configured: bool
    is_default: bool
    operations: list[str]
    models: list[str]
    default_model: str
    options: list[str] = Field(description="Optional tool parameters this provider honours.")
    family_options: dict[str, list[str]] = Field(
        default_factory=dict, description="Where its model families differ: the options each family takes."
    )
    deployments: dict[str, str] | None = Field(None, description="Azure: the deployment each model goes to.")
    output_formats: list[str]
    max_images: int
    max_input_images: int
    vision_models: list[str] = Field(description="Models describe_image can use (empty: it cannot describe).")
    max_describe_images: int
    enable_with: list[str] = Field(description="Environment variables that configure it.")
    notes: str


class ProvidersList(BaseModel):
    providers: list[ProviderInfo]
    default_provider: str | None = Field(description="Used when a tool call names no provider.")


class NoArguments(ToolArguments):
    """A tool that takes no parameters (and refuses any)."""


async def list_providers(call: NoArguments, ctx: Context[AppState, Any]) -> ProvidersList:
    """Every provider: configured or not, its operations, models and options, and how to enable it."""
    registry = app_state(ctx).providers
    try:
        default: str | None = registry.default_name("generate")
    except ConfigError:
        default = None
    infos = []
    for spec in registry.specs:
        caps = registry.capabilities(spec.name)
        infos.append(
            ProviderInfo(
                name=spec.name,
                title=spec.title,
                configured=registry.is_configured(spec.name),
                is_default=spec.name == default,
                operations=sorted(caps.operations),
                models=list(caps.models),
                default_model=caps.default_model,
                options=sorted(caps.options),
                family_options={family.name: sorted(family.options) for family in caps.families},
                deployments=dict(caps.deployments) or None,
                output_formats=list(caps.output_formats),
                max_images=caps.max_images,
                max_input_images=caps.max_input_images,
                vision_models=list(caps.vision_models),
                max_describe_images=caps.max_describe_images,
                enable_with=list(spec.env_vars),
                notes=registry.notes(spec.name),
            )
        )
    return ProvidersList(providers=infos, default_provider=default)


def catalogue_tools(surface: Surface) -> list[Tool]:
    annotations = tool_annotations("List image providers", read_only=True, idempotent=True, open_world=False)
    return [strict_tool(list_providers, NoArguments, annotations, surface)]
