"""The operations the server offers, one row each: everything that needs to know them reads this table.

A row says what the operation is called, which tool runs it and under what title, the typed
options its tool takes, the request a provider receives, the Protocol a provider implements to
serve it, the icon hosts show next to its tool, and the store kind of what it makes. The tool
surface, the registry's `provider_for`, the store's kinds, the icons, pricing and the studio
all read it, so an operation is declared here once.

This module sits under everything of ours: it imports only the provider seam's own types
(`providers/base.py` and `providers/options.py`, which import nothing else of ours), and
`tests/test_layers.py` keeps it so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from mcp_imagegen.providers.base import (
    DescribeRequest,
    EditRequest,
    GenerateRequest,
    ImageDescriber,
    ImageEditor,
    ImageGenerator,
    ImageRecontexter,
    ImageSegmenter,
    ImageUpscaler,
    Provider,
    RecontextRequest,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.providers.options import (
    DescribeOptions,
    EditOptions,
    GenerateOptions,
    RecontextOptions,
    SegmentOptions,
    UpscaleOptions,
)

Operation = Literal["generate", "edit", "upscale", "segment", "recontext", "describe"]
"""An operation's name; `OPERATIONS` has a row for each (a test holds the two together)."""
MadeKind = Literal["generated", "edited", "upscaled", "segment_mask", "recontexted"]
"""The store kind of an operation's usual output (describe makes text, not images)."""

ProviderT = TypeVar("ProviderT", bound=Provider)


@dataclass(frozen=True)
class OperationSpec(Generic[ProviderT]):
    """One operation: its names, its typed options and request, the Protocol that serves it."""

    name: Operation
    tool: str
    """The MCP tool that runs it."""
    title: str
    """The tool's title, as hosts show it."""
    options: type[Any]
    """Its options class (`providers/options.py`): the tool's schema takes these fields."""
    request: type[Any]
    """The request a provider's method receives (it inherits `options`)."""
    protocol: type[ProviderT]
    """The runtime-checkable Protocol a provider implements to serve it."""
    icon: str
    """The SVG marks drawn on the icon's frame (`server/icons.py`)."""
    made: MadeKind | None
    """The store kind of what it makes; None for an operation that answers in text."""


GENERATE = OperationSpec(
    name="generate",
    tool="generate_image",
    title="Generate image",
    options=GenerateOptions,
    request=GenerateRequest,
    protocol=ImageGenerator,
    icon="<path d='M8 2l1.5 4.5L14 8l-4.5 1.5L8 14l-1.5-4.5L2 8l4.5-1.5z' fill='#fff'/>",
    made="generated",
)
EDIT = OperationSpec(
    name="edit",
    tool="edit_image",
    title="Edit image",
    options=EditOptions,
    request=EditRequest,
    protocol=ImageEditor,
    icon="<path d='M3 13l1-3 6-6 2 2-6 6z' fill='#fff'/>",
    made="edited",
)
UPSCALE = OperationSpec(
    name="upscale",
    tool="upscale_image",
    title="Upscale image",
    options=UpscaleOptions,
    request=UpscaleRequest,
    protocol=ImageUpscaler,
    icon="<path d='M3 13V9h2v2h2v2zM13 3v4h-2V5H9V3z' fill='#fff'/>",
    made="upscaled",
)
SEGMENT = OperationSpec(
    name="segment",
    tool="segment_image",
    title="Segment image",
    options=SegmentOptions,
    request=SegmentRequest,
    protocol=ImageSegmenter,
    icon="<circle cx='8' cy='8' r='4' fill='none' stroke='#fff' stroke-dasharray='2'/>",
    made="segment_mask",
)
RECONTEXT = OperationSpec(
    name="recontext",
    tool="recontext_image",
    title="Recontext product image",
    options=RecontextOptions,
    request=RecontextRequest,
    protocol=ImageRecontexter,
    icon="<rect x='5' y='5' width='6' height='6' fill='#fff'/><path d='M2 14h12' stroke='#fff'/>",
    made="recontexted",
)
DESCRIBE = OperationSpec(
    name="describe",
    tool="describe_image",
    title="Describe image",
    options=DescribeOptions,
    request=DescribeRequest,
    protocol=ImageDescriber,
    icon="<ellipse cx='8' cy='8' rx='6' ry='3' fill='#fff'/><circle cx='8' cy='8' r='2' fill='#54d'/>",
    made=None,
)

OPERATIONS: tuple[OperationSpec[Any], ...] = (GENERATE, EDIT, UPSCALE, SEGMENT, RECONTEXT, DESCRIBE)
"""Every operation, in the order tools are listed."""
BY_NAME: dict[Operation, OperationSpec[Any]] = {spec.name: spec for spec in OPERATIONS}
