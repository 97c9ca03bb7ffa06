"""Decoding rules for inputs and masks, and preview fitting."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from benchmarks.preview_quality import ssim
from mcp_imagegen.config import Settings
from mcp_imagegen.errors import InputError
from mcp_imagegen.images import codec
from mcp_imagegen.images.preview import PreviewSource, fit_previews
from tests.conftest import png_bytes


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_png_passes_through_untouched() -> None:
    data = png_bytes((30, 20))
    result = codec.normalize_input(data, max_pixels=10**6, accepted=("image/png",))
    assert result.data is data and (result.width, result.height) == (30, 20)


def test_exif_rotation_is_applied() -> None:
    exif = Image.Exif()
    exif[codec.EXIF_ORIENTATION] = 6  # rotate 90 degrees clockwise to display
    data = encoded(Image.new("RGB", (40, 10), "red"), "JPEG", exif=exif)
    result = codec.normalize_input(data, max_pixels=10**6, accepted=("image/jpeg", "image/png"))
    assert result.mime_type == "image/png" and (result.width, result.height) == (10, 40)


def test_unaccepted_types_and_animations_become_png() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    result = codec.normalize_input(buffer.getvalue(), max_pixels=10**6, accepted=("image/png", "image/gif"))
    assert result.mime_type == "image/png"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    bmp = encoded(Image.new("RGB", (8, 8)), "BMP")
    assert codec.normalize_input(bmp, max_pixels=10**6, accepted=("image/png",)).mime_type == "image/png"


def test_pixel_limit_is_checked_from_the_header() -> None:
    with pytest.raises(InputError, match=r"over the limit of 1,000 \(IMAGEGEN_MAX_PIXELS\)"):
        codec.facts(png_bytes((100, 100)), max_pixels=1000)


def test_disallowed_format_is_refused() -> None:
    data = encoded(Image.new("RGB", (8, 8)), "ICO")
    with pytest.raises(InputError, match="ICO"):
        codec.facts(data, max_pixels=10**6)


def test_black_and_white_mask_becomes_alpha() -> None:
    mask = Image.new("L", (20, 10), 0)
    mask.paste(255, (10, 0, 20, 10))
    out = codec.edit_mask(encoded(mask, "PNG"), size=(20, 10), max_pixels=10**6)
    with Image.open(io.BytesIO(out)) as image:
        assert image.mode == "RGBA"
        assert image.getpixel((2, 2))[3] == 255 and image.getpixel((15, 2))[3] == 0


def test_an_opaque_rgba_mask_is_read_as_black_and_white() -> None:
    """What a browser canvas exports: white on black, with an alpha channel that is opaque throughout."""
    mask = Image.new("RGBA", (20, 10), (0, 0, 0, 255))
    mask.paste((255, 255, 255, 255), (10, 0, 20, 10))
    out = codec.edit_mask(encoded(mask, "PNG"), size=(20, 10), max_pixels=10**6)
    with Image.open(io.BytesIO(out)) as image:
        assert image.getpixel((2, 2))[3] == 255 and image.getpixel((15, 2))[3] == 0


def test_alpha_mask_is_kept_and_proportional_masks_are_resized() -> None:
    mask = Image.new("RGBA", (10, 5), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (5, 0, 10, 5))
    out = codec.edit_mask(encoded(mask, "PNG"), size=(40, 20), max_pixels=10**6)
    with Image.open(io.BytesIO(out)) as image:
        assert (
            image.size == (40, 20) and image.getpixel((35, 10))[3] == 0 and image.getpixel((5, 10))[3] == 255
        )
    with pytest.raises(InputError, match="must have the same size"):
        codec.edit_mask(encoded(mask, "PNG"), size=(40, 40), max_pixels=10**6)


def test_previews_share_the_byte_budget_and_keep_transparency() -> None:
    noisy = Image.effect_noise((2000, 1500), 60).convert("RGB")
    opaque = encoded(noisy, "PNG")
    clear = Image.new("RGBA", (3000, 1000), (0, 0, 0, 0))
    clear.paste(noisy.convert("RGBA").resize((1500, 500)), (0, 0))
    transparent = encoded(clear, "PNG")
    sources = [
        PreviewSource(opaque, "image/png", 2000, 1500),
        PreviewSource(transparent, "image/png", 3000, 1000),
        PreviewSource(opaque, "image/png", 2000, 1500),
    ]
    previews = fit_previews(sources, max_bytes=300_000, max_side=1000)
    assert sum(len(p.data) for p in previews) <= 300_000
    assert all(max(p.width, p.height) <= 1000 for p in previews)
    assert previews[0].mime_type == "image/jpeg"
    assert previews[1].mime_type in ("image/png", "image/webp")
    with Image.open(io.BytesIO(previews[1].data)) as image:
        assert image.convert("RGBA").getpixel((image.width - 1, image.height - 1))[3] == 0


def test_small_images_are_inlined_as_they_are() -> None:
    data = png_bytes((300, 200))
    [preview] = fit_previews([PreviewSource(data, "image/png", 300, 200)], max_bytes=700_000, max_side=1568)
    assert preview.data is data


@pytest.mark.parametrize("kind", ["16-bit PNG", "palette PNG with transparency", "CMYK JPEG", "rotated JPEG"])
def test_previews_of_unusual_encodings_fit_and_show_the_image(kind: str) -> None:
    """The forms providers and cameras do produce: each makes a preview within the budget that
    still looks like the image (its mean colour survives)."""
    size = (1200, 900)
    if kind == "16-bit PNG":
        data = encoded(Image.linear_gradient("I").resize(size).convert("I;16"), "PNG")
    elif kind == "palette PNG with transparency":
        image = Image.effect_mandelbrot(size, (-2, -1.5, 1, 1.5), 50).convert("P")
        data = encoded(image, "PNG", transparency=0)
    elif kind == "CMYK JPEG":
        data = encoded(Image.new("CMYK", size, (10, 200, 30, 0)), "JPEG", quality=95)
    else:
        exif = Image.Exif()
        exif[codec.EXIF_ORIENTATION] = 6
        data = encoded(Image.new("RGB", size, (200, 40, 40)), "JPEG", exif=exif.tobytes())
    facts = codec.facts(data, max_pixels=10_000_000)
    [preview] = fit_previews(
        [PreviewSource(data, facts.mime_type, facts.width, facts.height)], max_bytes=20_000, max_side=800
    )
    assert len(preview.data) <= 20_000 and max(preview.width, preview.height) <= 800
    if kind == "rotated JPEG":  # EXIF 6: shown turned upright, since the preview has no EXIF
        assert (preview.width, preview.height) == (600, 800)
    with Image.open(io.BytesIO(preview.data)) as shown, Image.open(io.BytesIO(data)) as original:
        assert shown.size == (preview.width, preview.height)
        expected = original.convert("RGB").resize((8, 8)).resize((1, 1)).getpixel((0, 0))
        seen = shown.convert("RGB").resize((8, 8)).resize((1, 1)).getpixel((0, 0))
        assert isinstance(expected, tuple) and isinstance(seen, tuple)
        assert all(abs(a - b) <= 24 for a, b in zip(expected, seen, strict=True)), (expected, seen)


def test_a_detailed_preview_keeps_ssim_097_within_the_default_budget() -> None:
    """What a provider returns at 1024x1024 is high-entropy (2-3 MB of PNG): its preview keeps
    SSIM >= 0.97 against the image (quality 90; 85 gives 0.96), inside the default budget."""
    detailed = Image.merge("RGB", [Image.effect_noise((1024, 1024), 30).convert("L") for _ in range(3)])
    budget = Settings().inline_max_bytes
    (preview,) = fit_previews(
        [PreviewSource(encoded(detailed, "PNG"), "image/png", 1024, 1024)], max_bytes=budget, max_side=1568
    )
    assert preview.mime_type == "image/jpeg" and (preview.width, preview.height) == (1024, 1024)
    assert len(preview.data) <= budget
    with Image.open(io.BytesIO(preview.data)) as shown:
        assert ssim(detailed, shown) >= 0.97
