"""Decode, validate and encode images with Pillow. CPU-bound: call from a worker thread.

Only the formats in `MIME_BY_FORMAT` are accepted. Dimensions are checked against the
pixel limit from the header, before any pixel data is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from mcp_imagegen.errors import InputError

MIME_BY_FORMAT = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
FORMAT_BY_MIME = {mime: fmt for fmt, mime in MIME_BY_FORMAT.items()}
EXTENSION_BY_MIME = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
MIME_BY_OUTPUT_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageFacts:
    """What the header says: type and size, without decoding pixels."""

    mime_type: str
    width: int
    height: int
    has_alpha: bool


@dataclass(frozen=True)
class NormalizedImage:
    """An input image that decoded fully, upright, in a type providers accept."""

    data: bytes
    mime_type: str
    width: int
    height: int


def _open(data: bytes, what: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(f"{what} is not a readable image (PNG, JPEG, WebP, GIF, BMP or TIFF)") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{what} is over the pixel limit (IMAGEGEN_MAX_PIXELS): {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{what} could not be decoded: {exc}") from None


def set_pixel_limit(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb guard agree with ours, for every decode in the process.

    Pillow refuses images over twice its limit inside `Image.open` (turned into InputError
    by `_open`) and only warns between one and two times it; the header check in
    `_facts_of` refuses those with a clearer message, so the warning is silenced.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def facts(data: bytes, *, max_pixels: int, what: str = "the image") -> ImageFacts:
    """Identify an image from its header; InputError when the type or size is not allowed."""
    with _open(data, what) as image:
        return _facts_of(image, max_pixels, what)


def _facts_of(image: Image.Image, max_pixels: int, what: str) -> ImageFacts:
    mime = MIME_BY_FORMAT.get(image.format or "")
    if mime is None:
        raise InputError(
            f"{what} is {image.format or 'an unknown format'}; use PNG, JPEG, WebP, GIF, BMP or TIFF"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            f"{what} is {width}x{height} ({width * height:,} pixels), over the limit of {max_pixels:,} "
            "(IMAGEGEN_MAX_PIXELS)"
        )
    return ImageFacts(mime, width, height, has_alpha(image))


def has_alpha(image: Image.Image) -> bool:
    """Whether the image can have transparent pixels (an alpha band, or a palette transparency)."""
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def decode(data: bytes, *, max_pixels: int, what: str = "the image") -> tuple[Image.Image, ImageFacts]:
    """Fully decode (first frame of animations) so truncated files fail here, not later."""
    image = _open(data, what)
    image_facts = _facts_of(image, max_pixels, what)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{what} is damaged or truncated: {exc}") from None
    return image, image_facts


def normalize_input(
    data: bytes, *, max_pixels: int, accepted: tuple[str, ...], what: str = "the image"
) -> NormalizedImage:
    """Validate an input image; re-encode as PNG only when it must change.

    It must change when EXIF says it is rotated (the pixels are turned upright), when it is
    animated (the first frame is kept), or when its type is not in `accepted`.
    """
    image, image_facts = decode(data, max_pixels=max_pixels, what=what)
    rotated = image.getexif().get(EXIF_ORIENTATION, 1) not in (1, None)
    animated = getattr(image, "n_frames", 1) > 1
    if not rotated and not animated and image_facts.mime_type in accepted:
        return NormalizedImage(data, image_facts.mime_type, image_facts.width, image_facts.height)
    upright = ImageOps.exif_transpose(image) if rotated else image
    png = encode(_png_safe(upright), "png")
    return NormalizedImage(png, "image/png", upright.width, upright.height)


def _png_safe(image: Image.Image) -> Image.Image:
    """Convert modes PNG cannot store (CMYK, YCbCr, I;16 variants...) to RGB(A)."""
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I"):
        return image
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")


def encode(image: Image.Image, output_format: str, quality: int | None = None) -> bytes:
    """Encode to png, jpeg or webp; JPEG drops alpha onto white."""
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, format="PNG", compress_level=6)
    elif output_format == "jpeg":
        if image.mode not in ("RGB", "L"):
            image = on_white(image)
        image.save(buffer, format="JPEG", quality=quality or 90, optimize=False)
    elif output_format == "webp":
        image.save(buffer, format="WEBP", quality=quality or 90, method=4)
    else:  # pragma: no cover - callers pass only the three formats
        raise ValueError(f"unknown output format {output_format!r}")
    return buffer.getvalue()


def on_white(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def edit_mask(data: bytes, *, size: tuple[int, int], max_pixels: int) -> bytes:
    """A mask in the OpenAI form: PNG of the image's size, transparent where the edit goes.

    A mask with an alpha channel that is transparent anywhere is used as it is. A mask without
    one, or opaque throughout (a black-and-white mask saved as RGBA, as a browser canvas does), is
    read as black and white: white marks the area to change, black the area to keep.
    A mask of the same proportions but another size is resized; other sizes are refused.
    """
    image, mask_facts = decode(data, max_pixels=max_pixels, what="the mask")
    width, height = size
    if (mask_facts.width, mask_facts.height) != size:
        if abs(mask_facts.width * height - mask_facts.height * width) > max(width, height):
            raise InputError(
                f"the mask is {mask_facts.width}x{mask_facts.height} but the image is {width}x{height}; "
                "they must have the same size"
            )
        image = image.resize(size, Image.Resampling.NEAREST)
    rgba = image.convert("RGBA") if mask_facts.has_alpha else None
    if rgba is None or rgba.getchannel("A").getextrema()[0] == 255:
        keep = image.convert("L").point(lambda value: 0 if value >= 128 else 255)
        rgba = Image.new("RGBA", size, (0, 0, 0, 255))
        rgba.putalpha(keep)
    return encode(rgba, "png")


def scribble(size: tuple[int, int], points: list[tuple[float, float]]) -> bytes:
    """A PNG the size of an image: black, with a white dot at each point (pixel coordinates,
    origin top left), the scribble interactive segmentation takes."""
    width, height = size
    radius = max(3, min(width, height) // 80)
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def cutout(image_data: bytes, mask_data: bytes, *, max_pixels: int) -> bytes:
    """The image with the mask as its alpha channel: what the mask covers, on transparency (PNG).

    A mask of another size is stretched to the image's (providers may return them smaller).
    """
    image, _ = decode(image_data, max_pixels=max_pixels, what="the image")
    mask, _ = decode(mask_data, max_pixels=max_pixels, what="the mask")
    alpha = mask.convert("L")
    if alpha.size != image.size:
        alpha = alpha.resize(image.size, Image.Resampling.BILINEAR)
    result = ImageOps.exif_transpose(image).convert("RGBA")
    result.putalpha(alpha)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def white_where_transparent(mask_png: bytes) -> bytes:
    """Our edit mask (transparent = change) as the white-on-black mask Imagen takes (white = change)."""
    with Image.open(io.BytesIO(mask_png)) as mask:
        alpha = mask.convert("RGBA").getchannel("A")
    inverted = alpha.point(lambda value: 255 if value == 0 else 0)
    buffer = io.BytesIO()
    inverted.save(buffer, format="PNG")
    return buffer.getvalue()


def fit_for_vision(
    data: bytes, mime_type: str, *, max_side: int, max_pixels: int
) -> tuple[bytes, str, int, int]:
    """The image as a vision model should receive it: no larger than `max_side` on its long edge
    (models resize to about that anyway, so more only costs upload and tokens).

    An image that already fits is sent as it is; a larger one is downscaled and re-encoded,
    as PNG when it has transparency and as JPEG (quality 90) otherwise.
    """
    image, image_facts = decode(data, max_pixels=max_pixels, what="the image")
    width, height = image_facts.width, image_facts.height
    if max(width, height) <= max_side:
        return data, mime_type, width, height
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = ImageOps.exif_transpose(image).resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if image_facts.has_alpha:
        resized.convert("RGBA").save(buffer, format="PNG")
        return buffer.getvalue(), "image/png", size[0], size[1]
    resized.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), "image/jpeg", size[0], size[1]
