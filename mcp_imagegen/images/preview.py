"""Fit the inline copies of a result's images into the host's budget.

Hosts reject large tool results (Claude Desktop: 1 MB including base64 overhead; the
Claude API: 8000 px, 2000 px when many images). So every image in a result gets a
preview whose long side is at most `max_side` and whose bytes, summed over the
result, are at most `max_bytes`. A stored file is never touched: previews are new bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from mcp_imagegen.images import codec

INLINE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
"""Types every image-capable host displays and passes to the model."""
SHRINK_STEP = 0.75
JPEG_LADDER: tuple[tuple[str, int | None], ...] = (("jpeg", 90), ("jpeg", 85), ("jpeg", 70))
"""Quality 90 first: on a high-entropy 1024x1024 image (what providers return, 2-3 MB of PNG) it
keeps SSIM 0.982 against the image where 85 drops to 0.960, for 625 KiB within the 700 kB budget;
on smooth, photo-like images every quality from 50 up keeps 0.987 or more, and 90 costs them 12 KiB
more than 85 (benchmarks/preview_quality.py). WebP is smaller there but takes 60-180 ms to encode."""
REDUCING_GAP = 1.0
"""Shrink by the largest whole factor that leaves at least this scale for Lanczos: a 3840x2160
image becomes 1920x1080 by averaging 2x2 blocks (9 ms here), then 1568x882 by Lanczos; 50 ms in
all instead of 107 ms for Lanczos over the whole image, at SSIM 0.997 against it on a photo-like
scene (benchmarks/preview_quality.py)."""
MIN_SIDE = 32
OPAQUE = (255, 255)
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""The turn that brings an image with this EXIF orientation upright."""


@dataclass(frozen=True)
class Preview:
    data: bytes
    mime_type: str
    width: int
    height: int


@dataclass(frozen=True)
class PreviewSource:
    data: bytes
    mime_type: str
    width: int
    height: int


def fit_previews(sources: list[PreviewSource], *, max_bytes: int, max_side: int) -> list[Preview]:
    """One preview per source, together within `max_bytes` (raw, before base64)."""
    if not sources:
        return []
    per_image = max_bytes // len(sources)
    return [fit_one(source, max_bytes=per_image, max_side=max_side) for source in sources]


def fit_one(source: PreviewSource, *, max_bytes: int, max_side: int) -> Preview:
    """The original when it already fits; otherwise downscaled and re-encoded until it does.

    Opaque images become JPEG (`JPEG_LADDER`: quality 90, then 85 and 70 while over budget);
    images that use transparency try PNG and then WebP, which keeps it. Each round that still does
    not fit shrinks by a quarter.
    """
    long_side = max(source.width, source.height)
    if source.mime_type in INLINE_MIME_TYPES and long_side <= max_side and len(source.data) <= max_bytes:
        return Preview(source.data, source.mime_type, source.width, source.height)
    target = _scaled(source.width, source.height, min(1.0, max_side / long_side))
    with Image.open(io.BytesIO(source.data)) as opened:
        if opened.format == "JPEG":
            opened.draft("RGB", target)
        turn = UPRIGHT.get(opened.getexif().get(codec.EXIF_ORIENTATION, 1))
        may_be_transparent = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        mode = "RGBA" if may_be_transparent else "RGB"
        opened.load()
        image = _resized(opened if opened.mode == mode else opened.convert(mode), target)
    if turn is not None:  # the preview carries no EXIF: its pixels are turned upright instead
        image = image.transpose(turn)
        target = image.size
    transparent = may_be_transparent and image.getchannel("A").getextrema() != OPAQUE
    if image.mode == "RGBA" and not transparent:
        image = image.convert("RGB")
    while True:
        for fmt, quality in _encodings(transparent):
            data = codec.encode(image, fmt, quality)
            if len(data) <= max_bytes or max(target) <= MIN_SIDE:
                return Preview(data, codec.MIME_BY_OUTPUT_FORMAT[fmt], target[0], target[1])
        target = _scaled(target[0], target[1], SHRINK_STEP)
        image = _resized(image, target)


def _resized(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    if image.size == target:
        return image
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def _encodings(transparent: bool) -> tuple[tuple[str, int | None], ...]:
    if transparent:
        return (("png", None), ("webp", 80))
    return JPEG_LADDER


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))
