"""The local provider: segmentation, upscaling and image reading on this machine's CPU.

No key, no network: models come from `mcp-imagegen models fetch` and run in worker threads,
one loaded copy per model (see `local/runner.py`). It cannot generate or edit images, and its
describe_image is an honest local analysis (text read by OCR, measured facts), never a
vision model's answer.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio.to_thread
from PIL import Image, ImageChops, ImageFilter, ImageOps
from pydantic import JsonValue

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import InputError, UnsupportedOptionError
from mcp_imagegen.images import codec
from mcp_imagegen.local import catalogue, reading, segmentation, upscaling
from mcp_imagegen.local.model_files import RuntimeUnavailableError
from mcp_imagegen.local.runner import ModelRunner
from mcp_imagegen.providers.base import (
    SILENT,
    CallEvents,
    Capabilities,
    DescribeRequest,
    DescribeResult,
    GeneratedImage,
    InputImage,
    ProviderResult,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.providers.local.spec import (
    ANALYSIS_MODEL,
    CAPABILITIES,
    NAME,
    SEGMENT_MODELS,
    UPSCALE_MODELS,
)

MAX_UPSCALED_PIXELS = 8192 * 8192
"""Largest local upscale output (~200 MB of RGB): beyond it the call is refused before any work."""
LOCAL_NOTE = (
    "Local analysis on this machine (no vision model): the text read by OCR and measured image facts. "
    "It cannot say what the image shows"
)


class LocalProvider:
    def __init__(self, settings: Settings) -> None:
        models_dir, threads = settings.models_dir, settings.local_threads
        self._max_pixels = settings.max_pixels
        self._u2netp: ModelRunner[segmentation.Segmenter] = ModelRunner(
            "U²-Netp", lambda: segmentation.U2NetP(models_dir, threads)
        )
        self._selfie: ModelRunner[segmentation.Segmenter] = ModelRunner(
            "MediaPipe selfie", lambda: segmentation.SelfieSegmenter(models_dir, threads)
        )
        self._esrgan = ModelRunner("Real-ESRGAN", lambda: upscaling.RealEsrgan(models_dir))
        self._reader = ModelRunner("PP-OCRv6", lambda: reading.TextReader(models_dir, threads))

    @property
    def name(self) -> str:
        return NAME

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    async def segment(self, request: SegmentRequest, events: CallEvents = SILENT) -> ProviderResult:
        if request.model not in SEGMENT_MODELS:
            raise UnsupportedOptionError(
                f"the local provider segments with {' or '.join(SEGMENT_MODELS)}, not {request.model}"
            )
        if request.mode not in ("foreground", "background"):
            raise UnsupportedOptionError(
                f"the local provider finds the main subject only (modes foreground and background), not mode "
                f"{request.mode}; for {request.mode} masks use a provider that has them (list_providers)"
            )
        if request.prompt:
            raise UnsupportedOptionError(
                "the local provider's foreground and background modes take no prompt"
            )
        person = request.model == catalogue.SELFIE.name
        model = catalogue.SELFIE if person else catalogue.U2NETP
        runner = self._selfie if person else self._u2netp
        events.step(f"finding the {'person' if person else 'main subject'} with {model.name} on this machine")
        max_pixels = self._max_pixels

        def work(segmenter: segmentation.Segmenter) -> tuple[bytes, float]:
            matte = segmenter.matte(_upright(request.image, max_pixels))
            threshold = request.confidence_threshold
            if threshold is not None and matte.score < threshold:
                raise InputError(
                    f"{model.name} found no {'person' if person else 'subject'} with confidence "
                    f"{threshold} or more (its best was {matte.score:.2f}); lower confidence_threshold "
                    "or try another model"
                )
            return codec.encode(_shaped(matte.mask, request), "png"), matte.score

        mask, score = await runner.run(work, events.step)
        label = request.mode if not person or request.mode == "background" else "person"
        return ProviderResult(
            images=(GeneratedImage(mask, label=label, score=round(score, 4)),),
            model=model.name,
            metadata={"method": model.name, "runs_on": "local CPU"},
        )

    async def upscale(self, request: UpscaleRequest, events: CallEvents = SILENT) -> ProviderResult:
        if request.model not in UPSCALE_MODELS:
            raise UnsupportedOptionError(
                f"the local provider upscales with {' or '.join(UPSCALE_MODELS)}, not {request.model}"
            )
        scale = _scale(request.factor)
        source = request.image
        out_pixels = source.width * source.height * scale * scale
        if out_pixels > MAX_UPSCALED_PIXELS:
            raise InputError(
                f"{request.factor} of {source.width}x{source.height} would be {source.width * scale}x"
                f"{source.height * scale} ({out_pixels / 1e6:.0f} MP); the local upscaler makes at most "
                f"{MAX_UPSCALED_PIXELS / 1e6:.0f} MP. Use a smaller factor or a smaller image"
            )
        max_pixels = self._max_pixels

        def finish(result: Image.Image) -> tuple[bytes, str]:
            data = codec.encode(result, request.output_format or "png", request.output_compression)
            return data, f"{result.width}x{result.height}"

        metadata: dict[str, JsonValue] = {"factor": request.factor, "runs_on": "local CPU"}
        if request.model == catalogue.REALESRGAN.name:
            events.step(
                f"upscaling {request.factor} with Real-ESRGAN on this machine, {upscaling.TILE}px tiles"
            )
            try:
                data, size = await self._esrgan.run(
                    lambda model: finish(model.upscale(_upright(source, max_pixels), scale)), events.step
                )
            except RuntimeUnavailableError as exc:
                metadata["note"] = (
                    f"Real-ESRGAN is unavailable ({exc}), so this was upscaled with Lanczos resampling and "
                    "sharpening: no detail was added"
                )
            else:
                metadata |= {"method": "real-esrgan", "tile": upscaling.TILE, "size": size}
                return ProviderResult(
                    images=(GeneratedImage(data),), model=catalogue.REALESRGAN.name, metadata=metadata
                )
        events.step(f"upscaling {request.factor} with Lanczos + sharpen (no AI)")
        data, size = await anyio.to_thread.run_sync(
            lambda: finish(upscaling.lanczos(_upright(source, max_pixels), scale))
        )
        metadata |= {"method": "lanczos", "size": size}
        return ProviderResult(images=(GeneratedImage(data),), model="lanczos", metadata=metadata)

    async def describe(self, request: DescribeRequest, events: CallEvents = SILENT) -> DescribeResult:
        if request.model != ANALYSIS_MODEL:
            raise UnsupportedOptionError(
                f"the local provider's describe model is {ANALYSIS_MODEL}, not {request.model}"
            )
        if request.response_schema is not None:
            raise UnsupportedOptionError(
                "the local provider cannot answer in a response_schema: it reads text and measures the "
                "image, it does not understand it. Leave response_schema out, or use a vision provider"
            )
        analyses: list[dict[str, JsonValue]] = []
        for index, item in enumerate(request.images):
            if not isinstance(item, InputImage):  # pragma: no cover - URLs are fetched by the tool layer
                raise InputError("the local provider needs image bytes, not a URL")
            events.step(f"reading text in image {index + 1} of {len(request.images)} on this machine")
            facts, lines = await self._reader.run(
                functools.partial(_read, item=item, max_pixels=self._max_pixels), events.step
            )
            analyses.append(
                {
                    "facts": facts,
                    "text": "\n".join(line.text for line in lines),
                    "lines": [
                        {"text": line.text, "confidence": line.confidence, "box": line.box}  # type: ignore[dict-item]
                        for line in lines
                    ],
                }
            )
        text = _report(analyses, request.question)
        structured: JsonValue = {"analysis": "local", "note": LOCAL_NOTE + ".", "images": analyses}  # type: ignore[dict-item]
        return DescribeResult(text=text, model=ANALYSIS_MODEL, structured=structured)


def _upright(item: InputImage, max_pixels: int) -> Image.Image:
    image, _ = codec.decode(item.data, max_pixels=max_pixels, what="the image")
    upright = ImageOps.exif_transpose(image)
    upright.load()
    return upright


def _read(
    reader: reading.TextReader, item: InputImage, max_pixels: int
) -> tuple[dict[str, JsonValue], list[reading.TextLine]]:
    image, _ = codec.decode(item.data, max_pixels=max_pixels, what="the image")
    facts = reading.image_facts(image, item.data)
    return facts, reader.read(image)


def _scale(factor: str) -> int:
    scales = {f"x{scale}": scale for scale in upscaling.SCALES}
    if factor not in scales:
        raise InputError(f"the local provider upscales by {', '.join(scales)}, not {factor}")
    return scales[factor]


def _shaped(mask: Image.Image, request: SegmentRequest) -> Image.Image:
    """Background mode inverts; dilation grows the white area; a threshold makes it pure black and white."""
    if request.mode == "background":
        mask = ImageOps.invert(mask)
    if request.mask_dilation:
        mask = _dilate(mask, round(request.mask_dilation * max(mask.size)))
    threshold = request.binary_color_threshold
    if threshold is not None and threshold >= 0:
        mask = mask.point(lambda value: 255 if value > threshold else 0)
    return mask


def _dilate(mask: Image.Image, radius: int) -> Image.Image:
    """Grow the white area by `radius` pixels (a square), in O(pixels) whatever the radius.

    A one-dimensional box blur is non-zero wherever a white pixel lies within the radius; doing x,
    then y, gives the square dilation of the binary mask. The soft edge of the original is kept.
    """
    grown = mask.point(lambda value: 255 if value > 127 else 0)
    remaining = radius
    while remaining > 0:
        step = min(remaining, 100)
        for box in ((step, 0), (0, step)):
            grown = grown.filter(ImageFilter.BoxBlur(box)).point(lambda value: 255 if value > 0 else 0)
        remaining -= step
    return ImageChops.lighter(mask, grown)


def _report(analyses: list[dict[str, Any]], question: str) -> str:
    """The text a host shows: says first what this is, then per image its facts and the text read."""
    lines = [f"{LOCAL_NOTE}, so it does not answer the question asked ({question[:200]!r})."]
    for index, analysis in enumerate(analyses):
        facts = analysis["facts"]
        alpha = (
            f"transparency ({facts.get('transparent_fraction', 0):.0%} fully transparent)"
            if facts["has_alpha"]
            else "no transparency"
        )
        colours = ", ".join(f"{c['hex']} {c['share']:.0%}" for c in facts["dominant_colours"])
        heading = f"Image {index + 1}" if len(analyses) > 1 else "Image"
        lines.append("")
        lines.append(
            f"{heading}: {facts['width']}x{facts['height']} {facts['format']}, {facts['mode']}, {alpha}; "
            f"main colours {colours}."
        )
        if facts.get("exif"):
            exif = "; ".join(f"{key} {value}" for key, value in facts["exif"].items())
            lines.append(f"EXIF: {exif}.")
        found = analysis["lines"]
        if not found:
            lines.append("Text read: none found.")
            continue
        lines.append(f"Text read ({len(found)} line(s), confidence in brackets):")
        lines += [f"  {line['text']}  [{line['confidence']:.2f}]" for line in found]
    return "\n".join(lines)
