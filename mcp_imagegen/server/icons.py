"""Icons hosts show next to the server and its tools: tiny inline SVGs as base64 data URIs (valid
URIs, no network, a couple of hundred bytes each, since every tools/list carries them)."""

from __future__ import annotations

import base64

from mcp.types import Icon

_FRAME = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' fill='#54d'/>"
    "{}</svg>"
)
_MARKS = {
    "server": "<path d='M3 12l3-4 2 3 2-2 3 3z' fill='#fff'/><circle cx='11' cy='5' r='1.5' fill='#fff'/>",
    "generate": "<path d='M8 2l1.5 4.5L14 8l-4.5 1.5L8 14l-1.5-4.5L2 8l4.5-1.5z' fill='#fff'/>",
    "edit": "<path d='M3 13l1-3 6-6 2 2-6 6z' fill='#fff'/>",
    "upscale": "<path d='M3 13V9h2v2h2v2zM13 3v4h-2V5H9V3z' fill='#fff'/>",
    "segment": "<circle cx='8' cy='8' r='4' fill='none' stroke='#fff' stroke-dasharray='2'/>",
    "recontext": "<rect x='5' y='5' width='6' height='6' fill='#fff'/><path d='M2 14h12' stroke='#fff'/>",
    "describe": "<ellipse cx='8' cy='8' rx='6' ry='3' fill='#fff'/><circle cx='8' cy='8' r='2' fill='#54d'/>",
}


def icon(name: str) -> list[Icon]:
    """The icon for the server (`server`) or an operation's tool, as a one-element icon list."""
    svg = _FRAME.format(_MARKS[name])
    return [Icon(src="data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode())]
