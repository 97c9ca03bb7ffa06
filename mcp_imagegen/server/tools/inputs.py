"""Input images for tools: resolved from any accepted form, decoded and normalised for the
provider off the event loop, masks brought to the first image's size."""

from __future__ import annotations

import anyio.to_thread

from mcp_imagegen.images import codec
from mcp_imagegen.images.inputs import RawInput
from mcp_imagegen.providers.base import Capabilities, InputImage
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.state import AppState


async def input_image(app: AppState, reference: str, caps: Capabilities, what: str) -> InputImage:
    raw = await app.inputs.resolve(reference, what, current_principal())
    normalized = await anyio.to_thread.run_sync(
        lambda: codec.normalize_input(
            raw.data, max_pixels=app.settings.max_pixels, accepted=caps.input_mime_types, what=what
        )
    )
    return InputImage(
        data=normalized.data,
        mime_type=normalized.mime_type,
        width=normalized.width,
        height=normalized.height,
        filename=_filename(raw, normalized.mime_type, what),
        # A stored input keeps its id only if it is sent unchanged (normalize_input returns the same
        # bytes object); a rotated or converted copy is new and gets stored as an input of its own.
        store_id=raw.store_id if normalized.data is raw.data else None,
    )


async def mask_image(app: AppState, reference: str, first: InputImage) -> InputImage:
    raw = await app.inputs.resolve(reference, "mask", current_principal())
    size = (first.width, first.height)
    data = await anyio.to_thread.run_sync(
        lambda: codec.edit_mask(raw.data, size=size, max_pixels=app.settings.max_pixels)
    )
    return InputImage(data, "image/png", first.width, first.height, "mask.png")


def _filename(raw: RawInput, mime_type: str, what: str) -> str:
    """The multipart filename: the source's name with the right extension."""
    stem = raw.filename.rsplit(".", 1)[0] if "." in raw.filename else raw.filename
    if stem == "image":
        stem = what.replace(" ", "-")
    return f"{stem}.{codec.EXTENSION_BY_MIME.get(mime_type, 'png')}"
