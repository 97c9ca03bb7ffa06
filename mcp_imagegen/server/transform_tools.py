"""The tools that transform a stored or given image: upscale_image, segment_image, recontext_image.

They go to a configured provider that has the capability (Vertex AI's Imagen models, or the
local provider on this machine's CPU for upscale and segment),
run as jobs like generate_image (progress, wait_seconds, get_job), and store every output
with the input images as its parents.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from mcp_imagegen.errors import InputError
from mcp_imagegen.images import codec
from mcp_imagegen.providers.base import (
    CallEvents,
    GeneratedImage,
    InputImage,
    ProviderResult,
    RecontextRequest,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.server.image_jobs import ImageWork, run_image_tool
from mcp_imagegen.server.results import ImageResult
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools import (
    CompressionArg,
    EnhanceArg,
    FormatArg,
    ImageArg,
    ModelArg,
    PersonArg,
    ProviderArg,
    SafetyArg,
    SeedArg,
    WaitArg,
    WatermarkArg,
    app_state,
    check_options,
    chosen_model,
    given,
    input_image,
    tool_annotations,
    user_errors,
)

SegmentMode = Literal["foreground", "background", "prompt", "semantic", "interactive"]


async def upscale_image(
    image: ImageArg,
    ctx: Context[AppState, Any],
    factor: Annotated[
        Literal["x2", "x3", "x4"],
        Field(description="How much larger on each side: x2, x3 (local provider) or x4."),
    ] = "x2",
    provider: ProviderArg = None,
    model: ModelArg = None,
    output_format: FormatArg = None,
    output_compression: CompressionArg = None,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, ImageResult]:
    """Upscale an image 2x, 3x or 4x with a super-resolution model, and keep the result in the store
    with the input as its parent. Returns previews, links and JSON like generate_image. With no
    cloud provider that upscales, the local provider does it on this machine (Real-ESRGAN)."""
    with user_errors():
        app = app_state(ctx)
        upscaler = app.providers.upscaler(provider, model)
        caps = upscaler.capabilities
        options = given(output_format=output_format, output_compression=output_compression)
        check_options(upscaler.name, caps, 1, options)
        source = await input_image(app, image, caps, "image")
        request = UpscaleRequest(
            image=source, model=chosen_model(caps, model, upscaler.name, "upscale"), factor=factor, **options
        )
        work = ImageWork(
            app,
            upscaler.name,
            request.model,
            None,
            {"factor": factor, **options},
            "upscaled",
            functools.partial(upscaler.upscale, request),
            inputs=(source,),
        )
        return await run_image_tool(
            ctx,
            "upscale_image",
            work,
            f"asking {upscaler.name} ({request.model}) to upscale {factor}",
            wait_seconds,
        )


async def segment_image(
    image: ImageArg,
    ctx: Context[AppState, Any],
    mode: Annotated[
        SegmentMode,
        Field(
            description="foreground / background: the main subject or the rest; prompt: what `prompt` "
            "describes; semantic: the classes in `labels` (e.g. cat, sky); interactive: what `points` mark."
        ),
    ] = "foreground",
    prompt: Annotated[str | None, Field(description="Mode prompt: what to find.", max_length=2000)] = None,
    labels: Annotated[
        list[str] | None,
        Field(description="Mode semantic: class names to mask, e.g. ['cat', 'sofa'].", max_length=20),
    ] = None,
    points: Annotated[
        list[tuple[float, float]] | None,
        Field(description="Mode interactive: [[x, y], ...] pixel positions on the object.", max_length=50),
    ] = None,
    max_predictions: Annotated[int | None, Field(description="Most masks to return.", ge=1, le=100)] = None,
    confidence_threshold: Annotated[
        float | None, Field(description="Drop masks the model is less sure of (0-1).", ge=0, le=1)
    ] = None,
    mask_dilation: Annotated[
        float | None, Field(description="Grow each mask by this fraction of the image (0-1).", ge=0, le=1)
    ] = None,
    binary_color_threshold: Annotated[
        float | None,
        Field(
            description="Make masks pure black and white at this level (0-255; -1 keeps grey).", ge=-1, le=255
        ),
    ] = None,
    cutout: Annotated[
        bool, Field(description="Also return each masked part of the image on a transparent background.")
    ] = False,
    provider: ProviderArg = None,
    model: ModelArg = None,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, ImageResult]:
    """Find parts of an image and return each as a mask (a black-and-white PNG, white where the
    part is) with its label and score, stored like any image; with cutout, also the part itself
    on transparency. A mask can be passed straight to edit_image as its `mask`. With no cloud
    provider that segments, the local provider finds the main subject on this machine
    (modes foreground and background; model mediapipe-selfie for people only)."""
    with user_errors():
        app = app_state(ctx)
        segmenter = app.providers.segmenter(provider, model)
        caps = segmenter.capabilities
        if labels and mode != "semantic":
            raise InputError("labels apply to mode semantic")
        if points and mode != "interactive":
            raise InputError("points apply to mode interactive")
        source = await input_image(app, image, caps, "image")
        scribble = None
        if points:
            data = await anyio.to_thread.run_sync(codec.scribble, (source.width, source.height), list(points))
            scribble = InputImage(data, "image/png", source.width, source.height, "scribble.png")
        request = SegmentRequest(
            image=source,
            model=chosen_model(caps, model, segmenter.name, "segment"),
            mode=mode,
            prompt=", ".join(labels) if labels else prompt,
            scribble=scribble,
            max_predictions=max_predictions,
            confidence_threshold=confidence_threshold,
            mask_dilation=mask_dilation,
            binary_color_threshold=binary_color_threshold,
        )

        async def call(events: CallEvents) -> ProviderResult:
            result = await segmenter.segment(request, events)
            if not cutout:
                return result
            max_pixels = app.settings.max_pixels
            cutouts = [
                GeneratedImage(
                    await anyio.to_thread.run_sync(
                        functools.partial(codec.cutout, source.data, mask.data, max_pixels=max_pixels)
                    ),
                    label=mask.label,
                    score=mask.score,
                    role="cutout",
                )
                for mask in result.images
            ]
            return replace(result, images=(*result.images, *cutouts))

        parameters = given(
            mode=mode,
            prompt=prompt,
            labels=labels,
            points=[list(point) for point in points] if points else None,
            max_predictions=max_predictions,
            confidence_threshold=confidence_threshold,
            mask_dilation=mask_dilation,
            binary_color_threshold=binary_color_threshold,
            cutout=cutout or None,
        )
        work = ImageWork(
            app,
            segmenter.name,
            request.model,
            request.prompt,
            parameters,
            "segment_mask",
            call,
            inputs=(source,),
        )
        return await run_image_tool(
            ctx,
            "segment_image",
            work,
            f"asking {segmenter.name} ({request.model}) for {mode} masks",
            wait_seconds,
        )


async def recontext_image(
    images: Annotated[
        list[str],
        Field(
            description="1 to 3 photos of one product (several angles); any input form edit_image takes.",
            min_length=1,
            max_length=3,
        ),
    ],
    ctx: Context[AppState, Any],
    prompt: Annotated[
        str | None,
        Field(
            description="The scene to place the product in, e.g. 'on a kitchen counter'.", max_length=32000
        ),
    ] = None,
    n: Annotated[int, Field(description="How many images to make.", ge=1, le=4)] = 1,
    seed: SeedArg = None,
    output_format: FormatArg = None,
    output_compression: CompressionArg = None,
    person_generation: PersonArg = None,
    safety_filter: SafetyArg = None,
    add_watermark: WatermarkArg = None,
    enhance_prompt: EnhanceArg = None,
    provider: ProviderArg = None,
    model: ModelArg = None,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, ImageResult]:
    """Show a product in a new scene: the product stays as in the photos, the setting changes
    as the prompt says. Results are stored with the product photos as parents."""
    with user_errors():
        app = app_state(ctx)
        recontexter = app.providers.recontexter(provider, model)
        caps = recontexter.capabilities
        options = given(
            seed=seed,
            output_format=output_format,
            output_compression=output_compression,
            person_generation=person_generation,
            safety_filter=safety_filter,
            add_watermark=add_watermark,
            enhance_prompt=enhance_prompt,
        )
        check_options(recontexter.name, caps, n, options)
        products = tuple(
            [await input_image(app, ref, caps, f"product image {i + 1}") for i, ref in enumerate(images)]
        )
        request = RecontextRequest(
            prompt=prompt or "",
            model=chosen_model(caps, model, recontexter.name, "recontext"),
            n=n,
            images=products,
            **options,
        )
        work = ImageWork(
            app,
            recontexter.name,
            request.model,
            prompt,
            {"n": n, **options},
            "recontexted",
            functools.partial(recontexter.recontext, request),
            inputs=products,
        )
        return await run_image_tool(
            ctx,
            "recontext_image",
            work,
            f"asking {recontexter.name} ({request.model}) to recontext",
            wait_seconds,
        )


def register_transform_tools(server: MCPServer[AppState]) -> None:
    for tool, title, read_only in (
        (upscale_image, "Upscale image", False),
        (segment_image, "Segment image", False),
        (recontext_image, "Recontext product image", False),
    ):
        server.add_tool(tool, annotations=tool_annotations(title, read_only=read_only), title=title)
