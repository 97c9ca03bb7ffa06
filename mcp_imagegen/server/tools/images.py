"""generate_image and edit_image: validate the call, read the inputs, build the request and
start the job. Their options are `GenerateOptions` and `EditOptions` (`providers/options.py`)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult
from pydantic import Field

from mcp_imagegen.errors import InputError
from mcp_imagegen.operations import EDIT, GENERATE, Operation
from mcp_imagegen.providers.base import (
    Continuation,
    EditRequest,
    GenerateRequest,
    ImageEditor,
    ImageGenerator,
    InputImage,
    MainlineDriven,
)
from mcp_imagegen.providers.options import EditOptions, GenerateOptions, given_options, options_from
from mcp_imagegen.server.jobs.images import ImageWork
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.results import ImageResult
from mcp_imagegen.server.spending import Approval
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.arguments import (
    ImageArg,
    KeepPartialsArg,
    ModelArg,
    NArg,
    PromptArg,
    ProviderArg,
    ToolArguments,
    WaitArg,
    strict_tool,
    tool_annotations,
)
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.checks import checked, chosen_model
from mcp_imagegen.server.tools.inputs import input_image, mask_image
from mcp_imagegen.server.tools.pipeline import Plan, confirmation, planner, run_planned
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.store.base import URI_PREFIX
from mcp_imagegen.usage.prices import VISION_INPUT_TOKENS_PER_IMAGE, Charge, text_tokens


class GenerateCall(ToolArguments):
    prompt: PromptArg
    provider: ProviderArg = None
    model: ModelArg = None
    n: NArg = 1
    keep_partials: KeepPartialsArg = False
    wait_seconds: WaitArg = None


@planner(GENERATE)
def plan_generate(call: GenerateCall, generator: ImageGenerator) -> Plan[ImageGenerator, GenerateRequest]:
    request = GenerateRequest(
        prompt=call.prompt,
        model=chosen_model(generator.capabilities, call.model, generator.name),
        n=call.n,
        **options_from(GenerateOptions, call),
    )
    request = checked(generator.name, generator.capabilities, request)
    _check_partials(request.partial_images, call.keep_partials)
    return Plan(GENERATE, generator, request, _charge(generator, "generate", request))


async def generate_image(
    call: GenerateCall,
    ctx: Context[AppState, Any],
    plan: Annotated[Plan[ImageGenerator, GenerateRequest], Resolve(plan_generate)],
    approval: Annotated[Approval, Resolve(confirmation(plan_generate))],
) -> Annotated[CallToolResult, ImageResult]:
    """Generate images from a text prompt. Each is stored and returned as a preview, an
    imagegen://images/{id} link to the full file, and JSON. Status 'running' means: collect
    it with get_job(job_id)."""
    with user_errors():
        app = app_state(ctx)
        generator, request = plan.provider, plan.terms

        async def prepare() -> ImageWork:
            return ImageWork(
                app,
                generator.name,
                request.model,
                request.prompt,
                {"n": request.n, **given_options(request)},
                GENERATE,
                functools.partial(generator.generate, request),
                keep_partials=call.keep_partials,
            )

        first_step = f"asking {generator.name} ({request.model}) for {call.n} image(s)"
        return await run_planned(ctx, plan, approval, prepare, first_step, call.wait_seconds)


class EditCall(ToolArguments):
    image: ImageArg
    prompt: PromptArg
    mask: Annotated[
        str | None,
        Field(
            description="Where to edit, same size as image: transparent (or white on black) marks the area."
        ),
    ] = None
    images: Annotated[
        list[str] | None,
        Field(description="More input images (references) after the first."),
    ] = None
    provider: ProviderArg = None
    model: ModelArg = None
    n: NArg = 1
    keep_partials: KeepPartialsArg = False
    wait_seconds: WaitArg = None


@planner(EDIT)
def plan_edit(call: EditCall, editor: ImageEditor) -> Plan[ImageEditor, EditRequest]:
    caps = editor.capabilities
    options = EditOptions(**options_from(EditOptions, call))
    if (options.reference_description or options.subject_type or options.control_type) and not (
        options.reference_type
    ):
        raise InputError("reference_description, subject_type and control_type go with reference_type")
    references = 1 + len(call.images or [])
    if references > caps.max_input_images:
        raise InputError(
            f"{editor.name} takes at most {caps.max_input_images} input image(s), got {references}"
        )
    masked = call.mask is not None or options.mode or options.mask_mode or options.reference_type
    request = EditRequest(
        prompt=call.prompt,
        model=chosen_model(caps, call.model, editor.name, "edit_masked" if masked else "edit"),
        n=call.n,
        **options_from(EditOptions, options),
    )
    request = checked(editor.name, caps, request)
    _check_partials(request.partial_images, call.keep_partials)
    # An edit of a stored image may continue the response that made it (read once its inputs are).
    stored = call.image.strip().startswith(URI_PREFIX)
    charge = _charge(editor, "edit", request, references + (call.mask is not None), may_continue=stored)
    return Plan(EDIT, editor, request, charge)


async def edit_image(
    call: EditCall,
    ctx: Context[AppState, Any],
    plan: Annotated[Plan[ImageEditor, EditRequest], Resolve(plan_edit)],
    approval: Annotated[Approval, Resolve(confirmation(plan_edit))],
) -> Annotated[CallToolResult, ImageResult]:
    """Edit an image by instruction, optionally inside a mask, optionally with more input
    images. Inputs are stored as the results' parents; answers as generate_image."""
    with user_errors():
        app = app_state(ctx)
        editor, request = plan.provider, plan.terms
        caps = editor.capabilities

        async def prepare() -> ImageWork:
            await ctx.report_progress(0, None, "reading the input images")
            references = [call.image, *(call.images or [])]
            inputs = tuple(
                [
                    await input_image(app, ref, caps, f"image {i + 1}" if i else "image")
                    for i, ref in enumerate(references)
                ]
            )
            mask = await mask_image(app, call.mask, inputs[0]) if call.mask is not None else None
            # Only a provider that takes `api` can continue a Responses API response: no lookup for the rest.
            continues = await _continuation(app, inputs[0]) if "api" in caps.options else None
            ready = dataclasses.replace(request, images=inputs, mask=mask, continues=continues)
            return ImageWork(
                app,
                editor.name,
                ready.model,
                ready.prompt,
                {"n": ready.n, **given_options(ready)},
                EDIT,
                functools.partial(editor.edit, ready),
                inputs=inputs,
                mask=mask,
                keep_partials=call.keep_partials,
            )

        first_step = f"asking {editor.name} ({request.model}) to edit"
        return await run_planned(ctx, plan, approval, prepare, first_step, call.wait_seconds)


async def _continuation(app: AppState, first: InputImage) -> Continuation | None:
    """The Responses API response that made `first`, when it is a stored image one made: the
    provider may continue it instead of sending the image again (refinement)."""
    if first.store_id is None:
        return None
    record = await app.store.get(first.store_id, owner=current_principal().sees)
    made = record.metadata.get("provider_response")
    if record.provider is None or not isinstance(made, dict) or made.get("api") != "responses":
        return None
    response_id = made.get("response_id")
    if not isinstance(response_id, str):
        return None
    return Continuation(record.provider, response_id, stored=made.get("store") is not False)


def _charge(
    provider: ImageGenerator | ImageEditor,
    operation: Operation,
    request: GenerateRequest,
    input_images: int = 0,
    *,
    may_continue: bool = False,
) -> Charge:
    """What a generate or edit request costs: its images, at its size and quality; for a model
    priced by tokens, its prompt and input images in; and the mainline model it runs, if any."""
    mainline = (
        provider.mainline_for(request, may_continue=may_continue)
        if isinstance(provider, MainlineDriven)
        else None
    )
    return Charge(
        provider.name,
        request.model,
        operation,
        request.n,
        request.size,
        request.quality,
        input_tokens=text_tokens(request.prompt) + VISION_INPUT_TOKENS_PER_IMAGE * input_images,
        mainline=mainline,
    )


def _check_partials(partial_images: int | None, keep_partials: bool) -> None:
    if keep_partials and not partial_images:
        raise InputError("keep_partials applies only with partial_images (1-3)")


def image_tools(surface: Surface) -> list[Tool]:
    tools: list[Tool] = []
    if surface.offers_operation("generate"):
        annotations = tool_annotations(GENERATE.title)
        tools.append(strict_tool(generate_image, GenerateCall, annotations, surface, GENERATE))
    if surface.offers_operation("edit"):
        tools.append(strict_tool(edit_image, EditCall, tool_annotations(EDIT.title), surface, EDIT))
    return tools
