"""Reading an image without a vision model: its text (OCR) and the facts its pixels and header hold.

This is what the local provider's describe_image returns. It cannot say what the image shows;
it says so, and reports only what it measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps
from pydantic import JsonValue

from mcp_imagegen.images import codec
from mcp_imagegen.local.catalogue import PP_OCR
from mcp_imagegen.local.model_files import require_runtime, verified_paths

DOMINANT_COLOURS = 5
COLOUR_SAMPLE_SIDE = 128
EXIF_FIELDS = (
    "Make",
    "Model",
    "Software",
    "DateTime",
    "DateTimeOriginal",
    "LensModel",
    "ExposureTime",
    "FNumber",
    "ISOSpeedRatings",
    "FocalLength",
    "Orientation",
    "Artist",
    "Copyright",
    "ImageDescription",
)


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float
    box: list[list[int]]
    """The line's four corners in image pixels, clockwise from top left."""


class TextReader:
    """RapidOCR with the PP-OCRv6 detector, recogniser and direction classifier from the models folder."""

    def __init__(self, models_dir: Path, threads: int) -> None:
        require_runtime(PP_OCR)
        from rapidocr import RapidOCR

        paths = verified_paths(PP_OCR, models_dir)
        self._engine = RapidOCR(
            params={
                "Det.model_path": str(paths["PP-OCRv6_det_small.onnx"]),
                "Rec.model_path": str(paths["PP-OCRv6_rec_small.onnx"]),
                "Cls.model_path": str(paths["ch_ppocr_mobile_v2.0_cls_mobile.onnx"]),
                "Global.log_level": "warning",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )

    def read(self, image: Image.Image) -> list[TextLine]:
        import numpy as np

        pixels = np.asarray(_flattened(image))
        output: Any = self._engine(pixels)
        if output.txts is None or output.boxes is None:
            return []
        return [
            TextLine(
                text=str(text),
                confidence=round(float(score), 4),
                box=[[round(float(x)), round(float(y))] for x, y in box],
            )
            for text, score, box in zip(output.txts, output.scores, output.boxes, strict=True)
        ]


def _flattened(image: Image.Image) -> Image.Image:
    """RGB on white: transparent pixels would otherwise read as black."""
    upright = ImageOps.exif_transpose(image)
    return codec.on_white(upright) if codec.has_alpha(upright) else upright.convert("RGB")


def image_facts(image: Image.Image, data: bytes) -> dict[str, JsonValue]:
    """Size, format, colour mode, transparency, dominant colours, frames and an EXIF summary."""
    facts: dict[str, JsonValue] = {
        "width": image.width,
        "height": image.height,
        "format": image.format or "unknown",
        "mode": image.mode,
        "bytes": len(data),
        "has_alpha": codec.has_alpha(image),
    }
    if facts["has_alpha"]:
        alpha = image.convert("RGBA").getchannel("A")
        histogram = alpha.histogram()
        facts["transparent_fraction"] = round(histogram[0] / (image.width * image.height), 4)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        facts["frames"] = frames
    dpi = image.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        facts["dpi"] = [round(float(dpi[0]), 1), round(float(dpi[1]), 1)]
    if image.info.get("icc_profile"):
        facts["icc_profile"] = True
    facts["dominant_colours"] = dominant_colours(image)
    exif = exif_summary(image)
    if exif:
        facts["exif"] = exif
    return facts


def dominant_colours(image: Image.Image) -> list[JsonValue]:
    """The main colours as hex with the share of the visible pixels each covers, largest first
    (fully transparent pixels are not counted)."""
    sample = ImageOps.exif_transpose(image).convert("RGBA")
    sample.thumbnail((COLOUR_SAMPLE_SIDE, COLOUR_SAMPLE_SIDE))
    visible = sample.getchannel("A").point(lambda alpha: 255 if alpha else 0)
    quantised = sample.convert("RGB").quantize(colors=DOMINANT_COLOURS, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    counts = quantised.histogram(mask=visible)
    total = sum(counts) or 1
    colours: list[JsonValue] = []
    for count, index in sorted(((count, index) for index, count in enumerate(counts) if count), reverse=True):
        red, green, blue = palette[index * 3 : index * 3 + 3]
        colours.append({"hex": f"#{red:02x}{green:02x}{blue:02x}", "share": round(count / total, 3)})
    return colours


def exif_summary(image: Image.Image) -> dict[str, JsonValue]:
    """Camera, time, exposure and rights fields; a GPS block is reported as present, not as coordinates."""
    exif = image.getexif()
    if not exif:
        return {}
    merged = {**dict(exif), **dict(exif.get_ifd(ExifTags.IFD.Exif))}
    by_name = {ExifTags.TAGS.get(tag): value for tag, value in merged.items()}
    summary: dict[str, JsonValue] = {
        name: _plain(by_name[name]) for name in EXIF_FIELDS if by_name.get(name) not in (None, "", b"")
    }
    if exif.get_ifd(ExifTags.IFD.GPSInfo):
        summary["gps"] = "present (coordinates not shown)"
    return summary


def _plain(value: object) -> JsonValue:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00 ")[:200]
    if isinstance(value, (int, str)):
        return value if not isinstance(value, str) else value.strip("\x00 ")[:200]
    try:
        return round(float(value), 6)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)[:200]
