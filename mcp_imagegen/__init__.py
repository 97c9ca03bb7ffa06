"""mcp-imagegen: one MCP server for image generation, editing and vision across providers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcp-imagegen")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
