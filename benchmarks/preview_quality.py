"""Print the size, encode time and SSIM of preview encodings (issue "Performance at realistic
sizes", point 3): JPEG at several qualities and WebP, for a preview of 1024x1024 and one of
1568 px from a 3840x2160 image, against the image the encoder is given (resized as the server
resizes), and then what the server's own preview is for each.

The choice this led to (`preview.JPEG_LADDER`): JPEG quality 90 first, 85 and 70 only while over
the byte budget. High-entropy images, what providers return, need 90 to keep SSIM >= 0.97 at
1024x1024 (85 gives 0.96); smooth, photo-like ones keep 0.987 at every quality from 50 up, so any
fixed quality is a compromise and 90 costs them a few KiB. A 3840x2160 high-entropy image would need
95 at 1568 px, which is over the default 700 kB budget: 90 is the best that fits. WebP is smaller on
smooth images but takes 60-180 ms to encode, more than the rest of a call.

SSIM is computed on luminance with a 7x7 uniform window (scikit-image's defaults), in numpy.
Images: high-entropy noise (the worst case for a codec) and a photo-like scene (smooth gradients,
fractal texture, edges, mild sensor noise).

Run: `python benchmarks/preview_quality.py` (needs numpy, which the [local] extra installs)
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from mcp_imagegen.config import Settings
from mcp_imagegen.images.preview import REDUCING_GAP, PreviewSource, fit_one

TARGET_SSIM = 0.97
CANDIDATES: tuple[tuple[str, int], ...] = (
    ("JPEG", 95),
    ("JPEG", 90),
    ("JPEG", 85),
    ("JPEG", 80),
    ("JPEG", 75),
    ("JPEG", 70),
    ("JPEG", 60),
    ("JPEG", 50),
    ("WEBP", 90),
    ("WEBP", 80),
    ("WEBP", 70),
)


def photo_like(size: tuple[int, int]) -> Image.Image:
    width, height = size
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    texture = Image.effect_mandelbrot(size, (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")
    scene = Image.blend(gradient, texture, 0.45)
    draw = ImageDraw.Draw(scene)
    for index in range(12):
        x, y = (index * 397) % width, (index * 211) % height
        draw.ellipse((x, y, x + width // 6, y + height // 6), fill=(40 + index * 17, 120, 200 - index * 9))
    scene = scene.filter(ImageFilter.GaussianBlur(1.2))
    grain = Image.merge("RGB", [Image.effect_noise(size, 6).convert("L") for _ in range(3)])
    return Image.blend(scene, grain, 0.08)


def noisy(size: tuple[int, int]) -> Image.Image:
    return Image.merge("RGB", [Image.effect_noise(size, 30).convert("L") for _ in range(3)])


def ssim(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mean_x, mean_y = _box(x), _box(y)
    var_x = _box(x * x) - mean_x**2
    var_y = _box(y * y) - mean_y**2
    cov = _box(x * y) - mean_x * mean_y
    n = 49
    var_x, var_y, cov = var_x * n / (n - 1), var_y * n / (n - 1), cov * n / (n - 1)
    index = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(index[3:-3, 3:-3].mean())


def _box(values: NDArray[np.float64], side: int = 7) -> NDArray[np.float64]:
    """Mean over a side x side window at every pixel (edges padded by reflection)."""
    pad = side // 2
    padded = np.pad(values, pad, mode="reflect")
    summed = padded.cumsum(axis=0).cumsum(axis=1)
    summed = np.pad(summed, ((1, 0), (1, 0)))
    total = summed[side:, side:] - summed[:-side, side:] - summed[side:, :-side] + summed[:-side, :-side]
    mean: NDArray[np.float64] = total / (side * side)
    return mean


def main() -> None:
    cases = (
        ("noise 1024x1024", noisy((1024, 1024)), 1024),
        ("photo-like 1024x1024", photo_like((1024, 1024)), 1024),
        ("noise 3840x2160 -> 1568", noisy((3840, 2160)), 1568),
        ("photo-like 3840x2160 -> 1568", photo_like((3840, 2160)), 1568),
    )
    worst: dict[tuple[str, int], float] = {}
    for label, original, side in cases:
        scale = side / max(original.size)
        target = (round(original.width * scale), round(original.height * scale))
        shown = original.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        print(f"{label}:")
        for fmt, quality in CANDIDATES:
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                buffer = io.BytesIO()
                shown.save(buffer, format=fmt, quality=quality)
                timings.append(time.perf_counter() - start)
            data = buffer.getvalue()
            with Image.open(io.BytesIO(data)) as decoded:
                score = ssim(shown, decoded)
            worst[(fmt, quality)] = min(worst.get((fmt, quality), 1.0), score)
            print(
                f"    {fmt:4} q{quality}: {len(data) / 1024:7.0f} KiB  "
                f"encode {statistics.median(timings) * 1000:6.1f} ms  SSIM {score:.4f}"
            )
        png = io.BytesIO()
        original.save(png, format="PNG")
        source = PreviewSource(png.getvalue(), "image/png", original.width, original.height)
        chosen = fit_one(source, max_bytes=Settings().inline_max_bytes, max_side=side)
        with Image.open(io.BytesIO(chosen.data)) as decoded:
            score = ssim(shown, decoded) if decoded.size == shown.size else float("nan")
            print(
                f"    the server's preview: {decoded.format} {chosen.width}x{chosen.height}, "
                f"{len(chosen.data) / 1024:.0f} KiB, SSIM {score:.4f}"
            )
    passing = [candidate for candidate, score in worst.items() if score >= TARGET_SSIM]
    print(
        f"encodings with SSIM >= {TARGET_SSIM} on every image: {', '.join(f'{f} q{q}' for f, q in passing)}"
    )


if __name__ == "__main__":
    main()
