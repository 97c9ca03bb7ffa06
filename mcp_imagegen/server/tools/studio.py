"""The studio app's own tools (`visibility: ["app"]`, hidden from the model; the app is
`server/studio.py`): `studio_history` pages through the caller's images with small thumbnails,
`studio_image` gives one image's record, its children and the actions this installation can run
on it."""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from mcp_imagegen.errors import ImageNotFoundError
from mcp_imagegen.images import b64
from mcp_imagegen.images.preview import PreviewSource, fit_one
from mcp_imagegen.images.workers import run_image_work
from mcp_imagegen.operations import Operation
from mcp_imagegen.providers.registry import ProviderRegistry
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.resources import iso_time, metadata_json
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.studio import APP_ONLY
from mcp_imagegen.server.tools.arguments import ToolArguments, strict_tool, tool_annotations
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.store.base import StoredImage

THUMBNAIL_SIDE = 192
THUMBNAIL_BYTES = 24_000
CHILDREN_SHOWN = 24
ACTIONS: dict[str, Operation] = {
    "edit": "edit",
    "select_subject": "segment",
    "cutout": "segment",
    "upscale": "upscale",
    "variations": "generate",
    "describe": "describe",
}
"""The studio's actions and the operation each needs a provider for."""


class HistoryCall(ToolArguments):
    cursor: Annotated[str | None, Field(description="From the previous page.", max_length=200)] = None
    limit: Annotated[int, Field(ge=1, le=60)] = 24


async def studio_history(call: HistoryCall, ctx: Context[AppState, Any]) -> CallToolResult:
    """The caller's images, newest first, with thumbnails (for the studio app)."""
    with user_errors():
        app = app_state(ctx)
        page = await app.store.page(call.cursor, call.limit, owner=current_principal().sees)
        items = await _cards(app, page.images)
        return CallToolResult(
            content=[TextContent(text=f"{len(items)} image(s)" + (" and more" if page.next_cursor else ""))],
            structured_content={"images": items, "next_cursor": page.next_cursor},
        )


class ImageCall(ToolArguments):
    image_id: Annotated[str, Field(min_length=1, max_length=64)]


async def studio_image(call: ImageCall, ctx: Context[AppState, Any]) -> CallToolResult:
    """One image's record, its parents and children, and what the studio can do with it here."""
    with user_errors():
        app = app_state(ctx)
        caller = current_principal()
        image = await app.store.get(call.image_id, owner=caller.sees)
        children = await app.store.children(image.id, CHILDREN_SHOWN, owner=caller.sees)
        parents = []
        for parent_id in image.parent_ids:
            try:
                parents.append(await app.store.get(parent_id, owner=caller.sees))
            except ImageNotFoundError:  # removed by retention since: the id stays in the record
                continue
        record = json.loads(metadata_json(image, show_path=False))
        shown = [name for name in studio_actions(app.providers) if name != "variations" or image.prompt]
        return CallToolResult(
            content=[TextContent(text=f"image {image.id}: {len(children)} child image(s)")],
            structured_content={
                "image": record,
                "parents": await _cards(app, parents),
                "children": await _cards(app, children),
                "actions": shown,
            },
        )


async def _cards(app: AppState, images: list[StoredImage]) -> list[dict[str, Any]]:
    """The images' cards, their thumbnails made side by side (in worker threads), in order."""
    cards: list[dict[str, Any]] = [{} for _ in images]

    async def make(index: int, image: StoredImage) -> None:
        cards[index] = await _card(app, image)

    async with anyio.create_task_group() as group:
        for index, image in enumerate(images):
            group.start_soon(make, index, image)
    return cards


async def _card(app: AppState, image: StoredImage) -> dict[str, Any]:
    """What a grid shows of an image: its facts and a small JPEG or PNG thumbnail as a data URL."""
    _, data = await app.store.read(image.id, owner=image.owner)
    source = PreviewSource(data, image.mime_type, image.width, image.height)
    fit = functools.partial(fit_one, source, max_bytes=THUMBNAIL_BYTES, max_side=THUMBNAIL_SIDE)
    try:
        thumbnail = await run_image_work(fit)
        picture: str | None = f"data:{thumbnail.mime_type};base64,{b64.encode(thumbnail.data)}"
    except Exception:  # noqa: BLE001 - an image that cannot be shown small is still listed
        picture = None
    return {
        "id": image.id,
        "uri": image.uri,
        "kind": image.kind,
        "width": image.width,
        "height": image.height,
        "prompt": image.prompt,
        "provider": image.provider,
        "model": image.model,
        "created_at": iso_time(image.created_at),
        "thumbnail": picture,
    }


def studio_actions(providers: ProviderRegistry) -> list[str]:
    """The one-click actions some configured provider can run."""
    return [action for action, operation in ACTIONS.items() if providers.serving(operation)]


def studio_tools(surface: Surface) -> list[Tool]:
    """The app-only tools (`visibility: ["app"]`): hosts keep them from the model."""
    annotations = tool_annotations("Studio", read_only=True, idempotent=True, open_world=False)
    tools: list[Tool] = [
        strict_tool(studio_history, HistoryCall, annotations, surface),
        strict_tool(studio_image, ImageCall, annotations, surface),
    ]
    return [tool.model_copy(update={"meta": APP_ONLY}) for tool in tools]
