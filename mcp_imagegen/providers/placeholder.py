"""Labelled, no-AI images: the whole tool path (store, resources, previews) for free.

Every image says "PLACEHOLDER" and "not AI-generated" on it, with the prompt and the
options it was given, so a placeholder can never pass for a real result. It is used only
when asked for by name or by `IMAGEGEN_DEFAULT_PROVIDER=placeholder`.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import textwrap

import anyio.to_thread
from PIL import Image, ImageDraw, ImageFont

from mcp_imagegen.errors import InputError
from mcp_imagegen.images import codec
from mcp_imagegen.providers.base import (
    SILENT,
    CallEvents,
    Capabilities,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ProviderResult,
)
from mcp_imagegen.providers.options import OptionName
from mcp_imagegen.providers.spec import ProviderSpec

MODEL = "placeholder"
DEFAULT_SIDE = 1024
MAX_SIDE = 4096
MIN_SIDE = 16
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

PLACEHOLDER_OPTIONS: frozenset[OptionName] = frozenset(
    {
        "size",
        "aspect_ratio",
        "quality",
        "background",
        "output_format",
        "output_compression",
        "negative_prompt",
        "seed",
    }
)
"""The options it draws onto the image; it refuses the rest like any provider."""

CAPABILITIES = Capabilities(
    operations=frozenset({"generate", "edit"}),
    models=(MODEL,),
    default_model=MODEL,
    options=PLACEHOLDER_OPTIONS,
    output_formats=("png", "jpeg", "webp"),
    max_images=10,
    max_input_images=16,
    input_mime_types=("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff"),
    notes="No AI and no network: draws a labelled image showing the prompt and options. For dry runs, tests.",
)


class PlaceholderProvider:
    @property
    def name(self) -> str:
        return "placeholder"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    async def generate(self, request: GenerateRequest, events: CallEvents = SILENT) -> ProviderResult:
        size = _size(request)
        events.step(f"drawing {request.n} placeholder image(s)")
        images = await anyio.to_thread.run_sync(_render_all, request, size)
        return ProviderResult(images=images, model=MODEL, metadata={"size": f"{size[0]}x{size[1]}"})

    async def edit(self, request: EditRequest, events: CallEvents = SILENT) -> ProviderResult:
        events.step(f"drawing {request.n} placeholder edit(s)")
        images = await anyio.to_thread.run_sync(_edit_all, request)
        return ProviderResult(images=images, model=MODEL)


def _size(request: GenerateRequest) -> tuple[int, int]:
    if request.size and request.size != "auto":
        width_text, _, height_text = request.size.partition("x")
        width, height = int(width_text), int(height_text)
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise InputError(
                f"placeholder sizes go from {MIN_SIDE} to {MAX_SIDE} pixels a side, not {request.size}"
            )
        return width, height
    if request.aspect_ratio:
        ratio_w, _, ratio_h = request.aspect_ratio.partition(":")
        ratio = int(ratio_w) / int(ratio_h)
        width = round(DEFAULT_SIDE * math.sqrt(ratio))
        height = round(DEFAULT_SIDE / math.sqrt(ratio))
        return min(max(width, MIN_SIDE), MAX_SIDE), min(max(height, MIN_SIDE), MAX_SIDE)
    return DEFAULT_SIDE, DEFAULT_SIDE


def _rng(request: GenerateRequest, index: int) -> random.Random:
    """Seeded calls repeat exactly; unseeded calls differ every time, like a real model."""
    if request.seed is None:
        return random.Random()  # noqa: S311 - colours, not secrets
    digest = hashlib.sha256(f"{request.seed}:{request.prompt}:{index}".encode()).digest()
    return random.Random(digest)  # noqa: S311


def _render_all(request: GenerateRequest, size: tuple[int, int]) -> tuple[GeneratedImage, ...]:
    return tuple(_encode(_render(request, size, index), request) for index in range(request.n))


def _render(request: GenerateRequest, size: tuple[int, int], index: int) -> Image.Image:
    rng = _rng(request, index)
    colour = (rng.randrange(40, 200), rng.randrange(40, 200), rng.randrange(40, 200))
    transparent = request.background == "transparent"
    image = Image.new("RGBA", size, (0, 0, 0, 0) if transparent else (*colour, 255))
    draw = ImageDraw.Draw(image)
    width, height = size
    margin = max(2, min(width, height) // 16)
    if transparent:
        draw.rounded_rectangle(
            (margin, margin, width - margin, height - margin), radius=margin, fill=(*colour, 255)
        )
    lines = [
        "PLACEHOLDER - not AI-generated",
        *textwrap.wrap(request.prompt, width=max(12, width // 24))[:8],
        f"{width}x{height}  image {index + 1} of {request.n}",
        *_option_lines(request),
    ]
    _draw_lines(draw, lines, size, margin * 2)
    return image


def _option_lines(request: GenerateRequest) -> list[str]:
    shown = {
        "quality": request.quality,
        "seed": request.seed,
        "negative": request.negative_prompt,
        "format": request.output_format,
        "background": request.background,
    }
    return [f"{key}: {value}" for key, value in shown.items() if value is not None]


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str], size: tuple[int, int], inset: int) -> None:
    font = _font(max(8, min(size) // 24))
    line_height = int(font.size * 1.4) if isinstance(font, ImageFont.FreeTypeFont) else 12
    top = inset
    for line in lines:
        if top + line_height > size[1]:
            break
        draw.text((inset + 1, top + 1), line, fill=(0, 0, 0, 255), font=font)
        draw.text((inset, top), line, fill=(255, 255, 255, 255), font=font)
        top += line_height


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # pragma: no cover - Pillow built without FreeType
        return ImageFont.load_default()


def _edit_all(request: EditRequest) -> tuple[GeneratedImage, ...]:
    first = request.images[0]
    with Image.open(io.BytesIO(first.data)) as opened:
        base = opened.convert("RGBA")
    mask = None
    if request.mask is not None:
        with Image.open(io.BytesIO(request.mask.data)) as opened_mask:
            mask = opened_mask.convert("RGBA").getchannel("A")
    target = (
        _size(request) if (request.size and request.size != "auto") or request.aspect_ratio else base.size
    )
    results = []
    for index in range(request.n):
        image = base.copy()
        tint = Image.new("RGBA", image.size, (255, 0, 255, 110))
        if mask is not None:
            edit_area = mask.point(lambda alpha: 255 if alpha == 0 else 0)
            image.paste(Image.alpha_composite(image, tint), mask=edit_area)
        if image.size != target:
            image = image.resize(target, Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(image)
        banner = max(24, target[1] // 6)
        draw.rectangle((0, 0, target[0], banner), fill=(20, 20, 20, 220))
        lines = [
            f"PLACEHOLDER EDIT - not AI  ({index + 1} of {request.n}, {len(request.images)} input(s))",
            *textwrap.wrap(request.prompt, width=max(12, target[0] // 20))[:2],
        ]
        _draw_lines(draw, lines, (target[0], banner), 4)
        results.append(_encode(image, request))
    return tuple(results)


def _encode(image: Image.Image, request: GenerateRequest) -> GeneratedImage:
    output_format = request.output_format or "png"
    if request.background != "transparent" and output_format != "png":
        image = image.convert("RGB")
    return GeneratedImage(data=codec.encode(image, output_format, request.output_compression))


SPEC = ProviderSpec(
    max_in_flight=1024,
    name="placeholder",
    title="Placeholder: labelled images, no AI, no network",
    env_vars=(),
    is_configured=lambda settings: True,
    build=lambda settings, client: PlaceholderProvider(),
    capabilities=lambda settings: CAPABILITIES,
)
