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
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult
from pydantic import Field

from mcp_imagegen.errors import InputError
from mcp_imagegen.images import codec
from mcp_imagegen.images.workers import run_decode
from mcp_imagegen.operations import RECONTEXT, SEGMENT, UPSCALE
from mcp_imagegen.providers.base import (
    CallEvents,
    GeneratedImage,
    ImageRecontexter,
    ImageSegmenter,
    ImageUpscaler,
    InputImage,
    ProviderResult,
    RecontextRequest,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.providers.options import (
    RecontextOptions,
    SegmentOptions,
    UpscaleOptions,
    given_options,
    options_from,
)
from mcp_imagegen.server.jobs.images import ImageWork
from mcp_imagegen.server.results import ImageResult
from mcp_imagegen.server.spending import Approval
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.arguments import (
    ImageArg,
    ModelArg,
    ProviderArg,
    ToolArguments,
    WaitArg,
    strict_tool,
    tool_annotations,
)
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.checks import checked, chosen_model
from mcp_imagegen.server.tools.inputs import input_image
from mcp_imagegen.server.tools.pipeline import ModelOptions, Plan, confirmation, planner, run_planned
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.usage.prices import Charge

SegmentMode = Literal["foreground", "background", "prompt", "semantic", "interactive"]


class UpscaleCall(ToolArguments):
    image: ImageArg
    factor: Annotated[
        Literal["x2", "x3", "x4"],
        Field(description="How much larger on each side: x2, x3 (local provider) or x4."),
    ] = "x2"
    provider: ProviderArg = None
    model: ModelArg = None
    wait_seconds: WaitArg = None


@planner(UPSCALE)
def plan_upscale(
    call: UpscaleCall, upscaler: ImageUpscaler
) -> Plan[ImageUpscaler, ModelOptions[UpscaleOptions]]:
    caps = upscaler.capabilities
    options = checked(upscaler.name, caps, UpscaleOptions(**options_from(UpscaleOptions, call)))
    model = chosen_model(caps, call.model, upscaler.name, "upscale")
    return Plan(UPSCALE, upscaler, ModelOptions(model, options), Charge(upscaler.name, model, "upscale"))


async def upscale_image(
    call: UpscaleCall,
    ctx: Context[AppState, Any],
    plan: Annotated[Plan[ImageUpscaler, ModelOptions[UpscaleOptions]], Resolve(plan_upscale)],
    approval: Annotated[Approval, Resolve(confirmation(plan_upscale))],
) -> Annotated[CallToolResult, ImageResult]:
    """Upscale an image 2x, 3x or 4x with a super-resolution model (locally: Real-ESRGAN);
    answers as generate_image."""
    with user_errors():
        app = app_state(ctx)
        upscaler, terms = plan.provider, plan.terms

        async def prepare() -> ImageWork:
            source = await input_image(app, call.image, upscaler.capabilities, "image")
            request = UpscaleRequest(
                image=source,
                model=terms.model,
                factor=call.factor,
                **options_from(UpscaleOptions, terms.options),
            )
            return ImageWork(
                app,
                upscaler.name,
                request.model,
                None,
                {"factor": call.factor, **given_options(request)},
                UPSCALE,
                functools.partial(upscaler.upscale, request),
                inputs=(source,),
            )

        first_step = f"asking {upscaler.name} ({terms.model}) to upscale {call.factor}"
        return await run_planned(ctx, plan, approval, prepare, first_step, call.wait_seconds)


class SegmentCall(ToolArguments):
    image: ImageArg
    mode: Annotated[
        SegmentMode,
        Field(description="Subject or rest; what `prompt` names; the `labels` classes; what `points` mark."),
    ] = "foreground"
    prompt: Annotated[str | None, Field(description="Mode prompt: what to find.", max_length=2000)] = None
    labels: Annotated[
        list[str] | None,
        Field(description="Mode semantic: class names, e.g. ['cat'].", max_length=20),
    ] = None
    points: Annotated[
        list[tuple[float, float]] | None,
        Field(description="Mode interactive: [[x, y], ...] pixels on the object.", max_length=50),
    ] = None
    cutout: Annotated[bool, Field(description="Also return each part on transparency.")] = False
    provider: ProviderArg = None
    model: ModelArg = None
    wait_seconds: WaitArg = None


@planner(SEGMENT)
def plan_segment(
    call: SegmentCall, segmenter: ImageSegmenter
) -> Plan[ImageSegmenter, ModelOptions[SegmentOptions]]:
    caps = segmenter.capabilities
    if call.labels and call.mode != "semantic":
        raise InputError("labels apply to mode semantic")
    if call.points and call.mode != "interactive":
        raise InputError("points apply to mode interactive")
    options = checked(segmenter.name, caps, SegmentOptions(**options_from(SegmentOptions, call)))
    model = chosen_model(caps, call.model, segmenter.name, "segment")
    return Plan(SEGMENT, segmenter, ModelOptions(model, options), Charge(segmenter.name, model, "segment"))


async def segment_image(
    call: SegmentCall,
    ctx: Context[AppState, Any],
    plan: Annotated[Plan[ImageSegmenter, ModelOptions[SegmentOptions]], Resolve(plan_segment)],
    approval: Annotated[Approval, Resolve(confirmation(plan_segment))],
) -> Annotated[CallToolResult, ImageResult]:
    """Masks (white where the part is, with label and score) of parts of an image, usable as
    edit_image's mask; cutout adds each part on transparency. Local: foreground/background only."""
    with user_errors():
        app = app_state(ctx)
        segmenter, terms = plan.provider, plan.terms

        async def prepare() -> ImageWork:
            source = await input_image(app, call.image, segmenter.capabilities, "image")
            scribble = None
            if call.points:
                data = await anyio.to_thread.run_sync(
                    codec.scribble, (source.width, source.height), list(call.points)
                )
                scribble = InputImage(data, "image/png", source.width, source.height, "scribble.png")
            request = SegmentRequest(
                image=source,
                model=terms.model,
                mode=call.mode,
                prompt=", ".join(call.labels) if call.labels else call.prompt,
                scribble=scribble,
                **options_from(SegmentOptions, terms.options),
            )
            cutout = call.cutout

            async def run(events: CallEvents) -> ProviderResult:
                result = await segmenter.segment(request, events)
                if not cutout:
                    return result
                max_pixels = app.settings.max_pixels
                cutouts = [
                    GeneratedImage(
                        await run_decode(
                            2 * source.width * source.height,
                            functools.partial(codec.cutout, source.data, mask.data, max_pixels=max_pixels),
                        ),
                        label=mask.label,
                        score=mask.score,
                        role="cutout",
                    )
                    for mask in result.images
                ]
                return replace(result, images=(*result.images, *cutouts))

            parameters = {
                "mode": call.mode,
                **({"prompt": call.prompt} if call.prompt is not None else {}),
                **({"labels": call.labels} if call.labels else {}),
                **({"points": [list(point) for point in call.points]} if call.points else {}),
                **given_options(request),
                **({"cutout": True} if cutout else {}),
            }
            return ImageWork(
                app,
                segmenter.name,
                request.model,
                request.prompt,
                parameters,
                SEGMENT,
                run,
                inputs=(source,),
            )

        first_step = f"asking {segmenter.name} ({terms.model}) for {call.mode} masks"
        return await run_planned(ctx, plan, approval, prepare, first_step, call.wait_seconds)


class RecontextCall(ToolArguments):
    images: Annotated[
        list[str],
        Field(
            description="1 to 3 photos of one product (several angles); any input form edit_image takes.",
            min_length=1,
            max_length=3,
        ),
    ]
    prompt: Annotated[
        str | None,
        Field(
            description="The scene to place the product in, e.g. 'on a kitchen counter'.", max_length=32000
        ),
    ] = None
    n: Annotated[int, Field(description="How many images to make.", ge=1, le=4)] = 1
    provider: ProviderArg = None
    model: ModelArg = None
    wait_seconds: WaitArg = None


@planner(RECONTEXT)
def plan_recontext(
    call: RecontextCall, recontexter: ImageRecontexter
) -> Plan[ImageRecontexter, RecontextRequest]:
    caps = recontexter.capabilities
    request = RecontextRequest(
        prompt=call.prompt or "",
        model=chosen_model(caps, call.model, recontexter.name, "recontext"),
        n=call.n,
        **options_from(RecontextOptions, call),
    )
    request = checked(recontexter.name, caps, request)
    charge = Charge(recontexter.name, request.model, "recontext", request.n)
    return Plan(RECONTEXT, recontexter, request, charge)


async def recontext_image(
    call: RecontextCall,
    ctx: Context[AppState, Any],
    plan: Annotated[Plan[ImageRecontexter, RecontextRequest], Resolve(plan_recontext)],
    approval: Annotated[Approval, Resolve(confirmation(plan_recontext))],
) -> Annotated[CallToolResult, ImageResult]:
    """Show a product in a new scene: the product stays as in the photos, the setting changes
    as the prompt says. Results are stored with the product photos as parents."""
    with user_errors():
        app = app_state(ctx)
        recontexter, request = plan.provider, plan.terms

        async def prepare() -> ImageWork:
            caps = recontexter.capabilities
            products = tuple(
                [
                    await input_image(app, ref, caps, f"product image {i + 1}")
                    for i, ref in enumerate(call.images)
                ]
            )
            ready = replace(request, images=products)
            return ImageWork(
                app,
                recontexter.name,
                ready.model,
                call.prompt,
                {"n": call.n, **given_options(ready)},
                RECONTEXT,
                functools.partial(recontexter.recontext, ready),
                inputs=products,
            )

        first_step = f"asking {recontexter.name} ({request.model}) to recontext"
        return await run_planned(ctx, plan, approval, prepare, first_step, call.wait_seconds)


def transform_tools(surface: Surface) -> list[Tool]:
    tools: list[Tool] = []
    if surface.offers_operation("upscale"):
        annotations = tool_annotations(UPSCALE.title)
        tools.append(strict_tool(upscale_image, UpscaleCall, annotations, surface, UPSCALE))
    if surface.offers_operation("segment"):
        annotations = tool_annotations(SEGMENT.title)
        tools.append(strict_tool(segment_image, SegmentCall, annotations, surface, SEGMENT))
    if surface.offers_operation("recontext"):
        annotations = tool_annotations(RECONTEXT.title)
        tools.append(strict_tool(recontext_image, RecontextCall, annotations, surface, RECONTEXT))
    return tools
