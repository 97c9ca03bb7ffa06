"""Icons hosts show next to the server and its tools: tiny inline SVGs as base64 data URIs (valid
URIs, no network, a couple of hundred bytes each, since every tools/list carries them)."""

from __future__ import annotations

import base64

from mcp.types import Icon

_FRAME = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' fill='#54d'/>"
    "{}</svg>"
)
SERVER = "<path d='M3 12l3-4 2 3 2-2 3 3z' fill='#fff'/><circle cx='11' cy='5' r='1.5' fill='#fff'/>"
"""The server's marks; each operation's are in its row of the operation table."""


def icon(marks: str) -> list[Icon]:
    """A one-element icon list: `marks` (SVG elements, `SERVER` or an operation's) on the frame."""
    svg = _FRAME.format(marks)
    return [Icon(src="data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode())]
