"""Input images for tools: resolved from any accepted form, decoded and normalised for the
provider off the event loop, masks brought to the first image's size."""

from __future__ import annotations

from mcp_imagegen.images import codec
from mcp_imagegen.images.inputs import RawInput
from mcp_imagegen.images.workers import run_decode
from mcp_imagegen.providers.base import Capabilities, InputImage
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.state import AppState


async def input_image(app: AppState, reference: str, caps: Capabilities, what: str) -> InputImage:
    raw = await app.inputs.resolve(reference, what, current_principal())
    max_pixels = app.settings.max_pixels
    pixels = declared_pixels(raw.data, max_pixels, what)
    normalized = await run_decode(
        pixels,
        lambda: codec.normalize_input(
            raw.data, max_pixels=max_pixels, accepted=caps.input_mime_types, what=what
        ),
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
    max_pixels = app.settings.max_pixels
    pixels = declared_pixels(raw.data, max_pixels, "the mask")
    data = await run_decode(pixels, lambda: codec.edit_mask(raw.data, size=size, max_pixels=max_pixels))
    return InputImage(data, "image/png", first.width, first.height, "mask.png")


def declared_pixels(data: bytes, max_pixels: int, what: str) -> int:
    """The pixels an image's header declares (InputError for an unknown type or one over the
    limit): read before decoding, so a decode waits for its room instead of taking it."""
    facts = codec.facts(data, max_pixels=max_pixels, what=what)
    return facts.width * facts.height


def _filename(raw: RawInput, mime_type: str, what: str) -> str:
    """The multipart filename: the source's name with the right extension."""
    stem = raw.filename.rsplit(".", 1)[0] if "." in raw.filename else raw.filename
    if stem == "image":
        stem = what.replace(" ", "-")
    return f"{stem}.{codec.EXTENSION_BY_MIME.get(mime_type, 'png')}"
