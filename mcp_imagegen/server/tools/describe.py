"""describe_image: ask a vision model about one or more images.

Inputs are read like any tool's (store URIs, allowed paths, URLs when allowed, data URIs,
base64), checked against the provider's limits before any request, and downscaled to what
the model uses. Nothing is stored: this tool only reads. The answer comes back as text, and
with a response_schema also as validated structured content.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, JsonValue

from mcp_imagegen.errors import InputError
from mcp_imagegen.images import codec
from mcp_imagegen.images.workers import run_decode
from mcp_imagegen.operations import DESCRIBE
from mcp_imagegen.providers.base import (
    Capabilities,
    DescribeRequest,
    DescribeResult,
    ImageDescriber,
    InputImage,
    Tokens,
)
from mcp_imagegen.providers.options import DescribeOptions, options_from
from mcp_imagegen.server.jobs.core import Job
from mcp_imagegen.server.results import CallCost, Notices
from mcp_imagegen.server.spending import Approval, MeteredWork
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.tools.arguments import (
    ModelArg,
    ProviderArg,
    ToolArguments,
    WaitArg,
    strict_tool,
    tool_annotations,
)
from mcp_imagegen.server.tools.boundary import app_state, user_errors
from mcp_imagegen.server.tools.checks import chosen_model
from mcp_imagegen.server.tools.inputs import input_image
from mcp_imagegen.server.tools.pipeline import ModelOptions, Plan, confirmation, planner, run_planned
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.usage.prices import (
    VISION_INPUT_TOKENS_PER_IMAGE,
    VISION_PROMPT_TOKENS,
    Charge,
    Metering,
    text_tokens,
)

DEFAULT_ANSWER_TOKENS = 8_192
"""The answer's cap when the caller gives no max_tokens: room for a long description and a
reasoning model's thinking, and the bound its cost is reserved at."""


class DescribeAnswer(BaseModel):
    """Structured content of describe_image (and of get_job for its jobs)."""

    status: Literal["succeeded", "running"] = "succeeded"
    job_id: str
    answer: str = Field("", description="The model's answer.")
    data: JsonValue = Field(
        None,
        description="With response_schema: the answer parsed and validated. From the local provider: "
        "its analysis (text lines with boxes and confidences, image facts).",
    )
    provider: str
    model: str
    usage: dict[str, JsonValue] | None = None
    finish_reason: str | None = None
    elapsed_s: float | None = Field(None, description="While running: seconds since the call started.")
    message: str | None = Field(None, description="While running: the latest step.")
    cost: CallCost | None = Field(None, description="The call's estimated cost in USD.")
    notices: Notices = None


@dataclass(frozen=True)
class DescribeOutcome:
    """A finished describe job: the answer, rendered the same way for every get_job."""

    job_id: str
    provider: str
    answer: DescribeResult

    def metering(self) -> tuple[Metering, dict[str, JsonValue] | None]:
        return Metering(tokens=Tokens.reported(self.answer.usage)), self.answer.usage or None

    async def result(self) -> CallToolResult:
        facts = DescribeAnswer(
            job_id=self.job_id,
            answer=self.answer.text,
            data=self.answer.structured,
            provider=self.provider,
            model=self.answer.model,
            usage=self.answer.usage or None,
            finish_reason=self.answer.finish_reason,
        )
        return CallToolResult(
            content=[
                TextContent(text=self.answer.text),
                TextContent(text=facts.model_dump_json(exclude_none=True)),
            ],
            structured_content=facts.model_dump(mode="json", exclude_none=True),
        )


class DescribeCall(ToolArguments):
    images: Annotated[
        list[str],
        Field(
            description="imagegen:// URIs, allowed paths, URLs (if allowed), data URIs or base64.",
            min_length=1,
            max_length=16,
        ),
    ]
    question: Annotated[
        str, Field(description="What to ask about the images.", min_length=1, max_length=32000)
    ] = "Describe this image in detail."
    provider: ProviderArg = None
    model: ModelArg = None
    wait_seconds: WaitArg = None


@planner(DESCRIBE)
def plan_describe(
    call: DescribeCall, describer: ImageDescriber
) -> Plan[ImageDescriber, ModelOptions[DescribeOptions]]:
    caps = describer.capabilities
    if len(call.images) > caps.max_describe_images:
        most = caps.max_describe_images
        raise InputError(f"{describer.name} takes at most {most} images per request, not {len(call.images)}")
    options = DescribeOptions(**options_from(DescribeOptions, call))
    if options.response_schema is not None:
        # Imported here: jsonschema costs ~40 ms, which a stdio start should not pay.
        from mcp_imagegen.providers.openai.chat import check_schema

        check_schema(options.response_schema)
    model = chosen_model(caps, call.model, describer.name, "describe")
    # Always capped, so the reservation bounds what the call can cost (the provider bills the
    # tokens written, and an uncapped answer can run to the model's limit).
    options = dataclasses.replace(options, max_tokens=options.max_tokens or DEFAULT_ANSWER_TOKENS)
    text = "".join([call.question, options.system or "", json.dumps(options.response_schema or "")])
    charge = Charge(
        describer.name,
        model,
        "describe",
        images=len(call.images),
        input_tokens=VISION_PROMPT_TOKENS
        + text_tokens(text)
        + VISION_INPUT_TOKENS_PER_IMAGE * len(call.images),
        output_tokens=options.max_tokens,
    )
    return Plan(DESCRIBE, describer, ModelOptions(model, options), charge)


async def describe_image(
    call: DescribeCall,
    ctx: Context[AppState, Any],
    plan: Annotated[Plan[ImageDescriber, ModelOptions[DescribeOptions]], Resolve(plan_describe)],
    approval: Annotated[Approval, Resolve(confirmation(plan_describe))],
) -> Annotated[CallToolResult, DescribeAnswer]:
    """Ask a vision model about images (nothing is stored). With response_schema the answer is
    validated JSON in `data`. The local provider only reads text (OCR) and image facts, and says so."""
    with user_errors():
        app = app_state(ctx)
        describer, terms = plan.provider, plan.terms
        images = call.images

        async def prepare() -> MeteredWork:
            caps = describer.capabilities
            prepared = tuple(
                [await _prepared(app, ref, caps, i, len(images)) for i, ref in enumerate(images)]
            )
            request = DescribeRequest(
                images=prepared,
                question=call.question,
                model=terms.model,
                **options_from(DescribeOptions, terms.options),
            )

            async def work(job: Job) -> DescribeOutcome:
                result = await describer.describe(request, _JobSteps(job))
                return DescribeOutcome(job.id, describer.name, result)

            return work

        first_step = f"asking {describer.name} ({terms.model}) about {len(images)} image(s)"
        return await run_planned(ctx, plan, approval, prepare, first_step, call.wait_seconds)


class _JobSteps:
    """`CallEvents` that only pass steps on (a describe call streams text, never images)."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def step(self, message: str) -> None:
        self._job.step(message)

    async def partial_image(self, data: bytes, index: int) -> None:
        """Vision answers carry no images."""

    async def reply_arriving(self, size: int | None) -> None:
        """A vision answer is text: read it at once."""


async def _prepared(
    app: AppState, reference: str, caps: Capabilities, index: int, count: int
) -> InputImage | str:
    """The image as the provider should get it: a URL it fetches itself, or bytes downscaled to
    its size and checked against its cap."""
    what = f"image {index + 1}" if count > 1 else "image"
    if caps.fetches_urls and reference.strip().lower().startswith(("http://", "https://")):
        return reference.strip()
    item = await input_image(app, reference, caps, what)
    data, mime, width, height = await run_decode(
        item.width * item.height,
        functools.partial(
            codec.fit_for_vision,
            item.data,
            item.mime_type,
            max_side=caps.vision_max_side,
            max_pixels=app.settings.max_pixels,
        ),
    )
    cap = caps.max_describe_image_bytes
    if cap is not None and len(data) > cap:
        raise InputError(
            f"{what} is {len(data):,} bytes even downscaled, over this provider's {cap:,}-byte limit"
        )
    return InputImage(data, mime, width, height, item.filename, item.store_id)


def describe_tools(surface: Surface) -> list[Tool]:
    if not surface.offers_operation("describe"):
        return []
    annotations = tool_annotations(DESCRIBE.title, read_only=True)
    return [strict_tool(describe_image, DescribeCall, annotations, surface, DESCRIBE)]
