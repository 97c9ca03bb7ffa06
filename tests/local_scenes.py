"""Pictures drawn with Pillow for the local models, each with its exact ground truth."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFont

TEXT_LINES = ("Invoice 4471 paid in full", "Ship to: 12 Harbour Road", "Total due EUR 318.40")


def textured_background(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """Muted tiles with noise: texture the model must ignore, no edge as strong as the subject's."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 16):
        for y in range(0, size[1], 16):
            grey = rng.randrange(90, 170)
            draw.rectangle((x, y, x + 15, y + 15), fill=(grey, grey + rng.randrange(0, 25), grey - 20))
    return image


def subject_scene(size: int = 512, shape: str = "ellipse") -> tuple[Image.Image, Image.Image]:
    """A saturated shape on the textured background, and its mask (255 inside the shape)."""
    image = textured_background((size, size))
    mask = Image.new("L", (size, size), 0)
    box = (int(size * 0.27), int(size * 0.22), int(size * 0.74), int(size * 0.8))
    for target, fill in ((ImageDraw.Draw(image), (205, 35, 45)), (ImageDraw.Draw(mask), 255)):
        if shape == "ellipse":
            target.ellipse(box, fill=fill)
        else:
            cx, cy, r = size // 2, size // 2, size * 0.3
            points = [
                (
                    cx + r * (1 if i % 2 == 0 else 0.45) * _cos(i),
                    cy + r * (1 if i % 2 == 0 else 0.45) * _sin(i),
                )
                for i in range(10)
            ]
            target.polygon(points, fill=fill)
    return image, mask


def _cos(i: int) -> float:
    import math

    return math.cos(math.pi / 2 + i * math.pi / 5)


def _sin(i: int) -> float:
    import math

    return -math.sin(math.pi / 2 + i * math.pi / 5)


def person_scene(size: int = 512) -> tuple[Image.Image, Image.Image]:
    """A cartoon head and shoulders (hair, face, neck, shirt) on a plain wall, and its mask."""
    image = Image.new("RGB", (size, size), (186, 196, 210))
    mask = Image.new("L", (size, size), 0)
    s = size / 512
    parts = [
        ("pieslice", (40, 380, 472, 800), (40, 70, 140)),  # shoulders and shirt, cut by the frame
        ("rectangle", (216, 280, 296, 400), (226, 180, 150)),  # neck
        ("ellipse", (160, 80, 352, 330), (232, 188, 160)),  # face
        ("chord", (152, 60, 360, 240), (70, 45, 30)),  # hair
    ]
    for kind, box, colour in parts:
        scaled = tuple(round(v * s) for v in box)
        for target, fill in ((ImageDraw.Draw(image), colour), (ImageDraw.Draw(mask), 255)):
            if kind == "pieslice":
                target.pieslice(scaled, 180, 360, fill=fill)
            elif kind == "chord":
                target.chord(scaled, 180, 360, fill=fill)
            else:
                getattr(target, kind)(scaled, fill=fill)
    draw = ImageDraw.Draw(image)
    for eye_x in (216, 296):
        draw.ellipse(tuple(round(v * s) for v in (eye_x - 10, 190, eye_x + 10, 206)), fill=(30, 30, 30))
    draw.arc(
        tuple(round(v * s) for v in (226, 240, 286, 290)), 20, 160, fill=(150, 60, 60), width=round(4 * s)
    )
    return image, mask


def detail_image(size: int = 512) -> Image.Image:
    """Lines, circles, a hexagon and lettering: edges that show how well an upscaler restores detail."""
    image = Image.new("RGB", (size, size), (236, 232, 220))
    draw = ImageDraw.Draw(image)
    for i in range(0, size, 24):
        draw.line((i, 0, size - i, size), fill=(40, 60, 120), width=2)
    draw.ellipse((60, 60, 240, 240), outline=(180, 30, 30), width=6)
    draw.regular_polygon((380, 150, 90), 6, fill=(30, 140, 70))
    draw.text((40, 330), "SHARP 4x", fill=(10, 10, 10), font=font(64))
    draw.rectangle((300, 420, 480, 470), fill=(250, 200, 40))
    return image


def text_page(lines: tuple[str, ...] = TEXT_LINES, size: tuple[int, int] = (900, 300)) -> Image.Image:
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((30, 30 + index * 80), line, fill=(20, 20, 20), font=font(40))
    return image


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def iou(mask: Image.Image, truth: Image.Image, level: int = 127) -> float:
    """Intersection over union of the two masks' white areas."""
    import numpy as np

    a = np.asarray(mask.convert("L")) > level
    b = np.asarray(truth.convert("L")) > level
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


def white_pixels(mask: Image.Image, level: int = 127) -> int:
    import numpy as np

    return int((np.asarray(mask.convert("L")) > level).sum())
