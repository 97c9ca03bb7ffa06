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
from mcp_imagegen.operations import EDIT, GENERATE
from mcp_imagegen.providers.base import Continuation, EditRequest, GenerateRequest, InputImage
from mcp_imagegen.providers.options import EditOptions, GenerateOptions, given_options, options_from
from mcp_imagegen.server.jobs.images import ImageWork, run_image_tool
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.results import ImageResult
from mcp_imagegen.server.spending import Approval, confirmation
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
from mcp_imagegen.server.tools.surface import Surface


class GenerateCall(ToolArguments):
    prompt: PromptArg
    provider: ProviderArg = None
    model: ModelArg = None
    n: NArg = 1
    keep_partials: KeepPartialsArg = False
    wait_seconds: WaitArg = None


async def generate_image(
    call: GenerateCall,
    ctx: Context[AppState, Any],
    approval: Annotated[Approval, Resolve(confirmation("generate"))],
) -> Annotated[CallToolResult, ImageResult]:
    """Generate images from a text prompt. Each is stored and returned as a preview, an
    imagegen://images/{id} link to the full file, and JSON. Status 'running' means: collect
    it with get_job(job_id)."""
    with user_errors():
        app = app_state(ctx)
        generator = app.providers.provider_for(GENERATE, call.provider, call.model)
        caps = generator.capabilities
        request = GenerateRequest(
            prompt=call.prompt,
            model=chosen_model(caps, call.model, generator.name),
            n=call.n,
            **options_from(GenerateOptions, call),
        )
        request = checked(generator.name, caps, request)
        _check_partials(request.partial_images, call.keep_partials)
        work = ImageWork(
            app,
            generator.name,
            request.model,
            request.prompt,
            {"n": request.n, **given_options(request)},
            GENERATE,
            functools.partial(generator.generate, request),
            keep_partials=call.keep_partials,
        )
        return await run_image_tool(
            ctx,
            work,
            f"asking {generator.name} ({request.model}) for {call.n} image(s)",
            call.wait_seconds,
            approval,
        )


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


async def edit_image(
    call: EditCall, ctx: Context[AppState, Any], approval: Annotated[Approval, Resolve(confirmation("edit"))]
) -> Annotated[CallToolResult, ImageResult]:
    """Edit an image by instruction, optionally inside a mask, optionally with more input
    images. Inputs are stored as the results' parents; answers as generate_image."""
    with user_errors():
        app = app_state(ctx)
        editor = app.providers.provider_for(EDIT, call.provider, call.model)
        caps = editor.capabilities
        options = EditOptions(**options_from(EditOptions, call))
        if (options.reference_description or options.subject_type or options.control_type) and not (
            options.reference_type
        ):
            raise InputError("reference_description, subject_type and control_type go with reference_type")
        references = [call.image, *(call.images or [])]
        if len(references) > caps.max_input_images:
            raise InputError(
                f"{editor.name} takes at most {caps.max_input_images} input image(s), got {len(references)}"
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
        await ctx.report_progress(0, None, "reading the input images")
        inputs = tuple(
            [
                await input_image(app, ref, caps, f"image {i + 1}" if i else "image")
                for i, ref in enumerate(references)
            ]
        )
        mask = await mask_image(app, call.mask, inputs[0]) if call.mask is not None else None
        # Only a provider that takes `api` can continue a Responses API response: no lookup for the rest.
        continues = await _continuation(app, inputs[0]) if "api" in caps.options else None
        request = dataclasses.replace(request, images=inputs, mask=mask, continues=continues)
        work = ImageWork(
            app,
            editor.name,
            request.model,
            request.prompt,
            {"n": request.n, **given_options(request)},
            EDIT,
            functools.partial(editor.edit, request),
            inputs=inputs,
            mask=mask,
            keep_partials=call.keep_partials,
        )
        return await run_image_tool(
            ctx,
            work,
            f"asking {editor.name} ({request.model}) to edit",
            call.wait_seconds,
            approval,
        )


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
