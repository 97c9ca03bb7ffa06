"""The tool list each configuration shows (a snapshot of tools and the options that matter), and
each within the context budget of benchmarks/context_cost.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.context_cost import CONFIGURATIONS, Configuration, measure

ALWAYS = {
    "generate_image",
    "edit_image",
    "upscale_image",
    "list_providers",
    "get_job",
    "cancel_job",
    "get_usage",
}
EXPECTED: dict[str, tuple[set[str], set[str], set[str]]] = {
    # configuration: (tools, generate_image options present, generate_image options absent)
    "no provider, no local extra": (
        ALWAYS,
        {"seed", "negative_prompt", "size"},
        {"moderation", "image_size"},
    ),
    "OpenAI alone, no local extra": (
        ALWAYS | {"describe_image"},
        {"size", "quality", "moderation", "partial_images"},
        {"seed", "negative_prompt", "image_size", "safety_filter"},
    ),
    "OpenAI + local provider": (
        ALWAYS | {"describe_image", "segment_image"},
        {"size", "moderation"},
        {"seed", "image_size"},
    ),
    "Google (Gemini API) + local": (
        ALWAYS | {"describe_image", "segment_image"},
        {"aspect_ratio", "image_size", "seed"},
        {"size", "quality", "moderation", "output_format", "safety_filter"},
    ),
    "Vertex + local": (
        ALWAYS | {"describe_image", "segment_image", "recontext_image"},
        {"aspect_ratio", "safety_filter", "negative_prompt", "output_format"},
        {"size", "quality", "moderation", "partial_images"},
    ),
    "every provider + local": (
        ALWAYS | {"describe_image", "segment_image", "recontext_image"},
        {"size", "quality", "moderation", "safety_filter", "image_size"},
        set(),
    ),
    # A host that renders MCP Apps also gets the studio's app-only tools (kept from its model).
    "OpenAI + local, MCP Apps host": (
        ALWAYS | {"describe_image", "segment_image", "studio_history", "studio_image"},
        {"size", "moderation", "api"},
        {"seed", "image_size"},
    ),
}


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=lambda c: c.name)
def test_tool_list_snapshot_and_budget(configuration: Configuration, tmp_path: Path) -> None:
    cost = measure(configuration, str(tmp_path / "store"))
    tools = {str(tool["name"]): tool for tool in cost.tools}
    names, present, absent = EXPECTED[configuration.name]
    assert set(tools) == names
    schema = tools["generate_image"]["inputSchema"]
    assert isinstance(schema, dict) and schema["additionalProperties"] is False
    properties = set(schema["properties"])
    assert present <= properties, present - properties
    assert not absent & properties, absent & properties
    enums = {name: prop.get("enum") for name, prop in schema["properties"].items()}
    if configuration.name.startswith("OpenAI"):
        # Enums offer only values a configured provider takes: OpenAI's models' qualities (xhigh and
        # max from the 2.5 and 2.6 families) and formats.
        assert enums["quality"] == ["auto", "low", "medium", "high", "xhigh", "max", None]
        assert enums["output_format"] == ["png", "jpeg", "webp", None]
    if configuration.name.startswith("Vertex"):
        assert enums["output_format"] == ["png", "jpeg", None]
    if configuration.name.startswith("every provider"):
        # An Azure deployment name says nothing of its model's qualities: the full enum stays.
        assert enums["quality"] == ["auto", "low", "medium", "high", "xhigh", "max", None]
    if configuration.budget:
        model_facing, whole = configuration.budget
        assert cost.model_facing <= model_facing and cost.whole <= whole, (cost.model_facing, cost.whole)
