"""The MCP tools: thin functions that validate, resolve inputs, route, call, store and answer.

Names and parameters here are the public interface. Every anticipated failure is an
`ImagegenError`, turned into an `isError` result the model can read by `user_errors()`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_imagegen.errors import (
    ConfigError,
    ImagegenError,
    InputError,
    UnsupportedOptionError,
)
from mcp_imagegen.images import codec
from mcp_imagegen.images.inputs import RawInput
from mcp_imagegen.providers.base import Capabilities, EditRequest, GenerateRequest, InputImage
from mcp_imagegen.server.delivery import deliver
from mcp_imagegen.server.image_jobs import ImageWork, run_image_tool
from mcp_imagegen.server.jobs import CANCEL_GRACE_S, JobState
from mcp_imagegen.server.results import ImageResult
from mcp_imagegen.server.state import AppState

ASPECT_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")

Quality = Literal["auto", "low", "medium", "high", "xhigh", "max"]
Background = Literal["auto", "transparent", "opaque"]
OutputFormat = Literal["png", "jpeg", "webp"]

ImageArg = Annotated[
    str,
    Field(
        description="The image: an imagegen://images/{id} URI, an absolute file path in an allowed folder, "
        "an http(s) URL if the server allows them, a data URI, or base64."
    ),
]
PromptArg = Annotated[
    str, Field(description="What to draw (or, for edits, what to change).", min_length=1, max_length=32000)
]
ProviderArg = Annotated[
    str | None,
    Field(
        description="Provider name, e.g. 'openai', 'azure', 'placeholder'. Default: the server's default. "
        "See list_providers."
    ),
]
ModelArg = Annotated[
    str | None, Field(description="Model (on Azure: deployment) name. Default: the provider's.")
]
NArg = Annotated[int, Field(description="How many images to make.", ge=1, le=10)]
SizeArg = Annotated[
    str | None,
    Field(
        description="'auto' or WIDTHxHEIGHT. gpt-image-1.x: 1024x1024, 1536x1024, 1024x1536. gpt-image-2: "
        "any size with edges divisible by 16, long edge <= 3840, ratio up to 3:1."
    ),
]
AspectArg = Annotated[
    str | None,
    Field(description="Instead of size: a ratio such as '16:9'; the provider maps it to a size it supports."),
]
QualityArg = Annotated[
    Quality | None, Field(description="Rendering quality; higher is slower and costs more.")
]
BackgroundArg = Annotated[
    Background | None, Field(description="'transparent' needs output_format png or webp.")
]
FormatArg = Annotated[OutputFormat | None, Field(description="File type of the result. Default png.")]
CompressionArg = Annotated[
    int | None, Field(description="0-100 compression for jpeg/webp output.", ge=0, le=100)
]
NegativeArg = Annotated[
    str | None, Field(description="What to keep out of the image (providers that support it).")
]
SeedArg = Annotated[int | None, Field(description="Seed for repeatable results (providers that support it).")]
PartialArg = Annotated[
    int | None,
    Field(
        description="Stream this many intermediate images (1-3) while the final one renders (OpenAI "
        "gpt-image models). Each is stored and announced with its imagegen:// URI in a progress message.",
        ge=0,
        le=3,
    ),
]
KeepPartialsArg = Annotated[
    bool, Field(description="Keep the intermediate images in the store after the final image lands.")
]
ImageSizeArg = Annotated[
    Literal["1K", "2K", "4K"] | None,
    Field(description="Resolution class for providers that take one (Google): 1K (default), 2K, 4K."),
]
PersonArg = Annotated[
    Literal["allow_all", "allow_adult", "dont_allow"] | None,
    Field(description="Whether people may appear (Google Vertex)."),
]
SafetyArg = Annotated[
    Literal["block_low_and_above", "block_medium_and_above", "block_only_high", "block_none"] | None,
    Field(description="How strict the provider's safety filter is (Imagen)."),
]
LanguageArg = Annotated[
    Literal["auto", "en", "ja", "ko", "hi", "zh", "pt", "es"] | None,
    Field(description="The prompt's language (Imagen)."),
]
WatermarkArg = Annotated[
    bool | None,
    Field(description="Imagen's invisible SynthID watermark (on unless false; seed needs it off)."),
]
EnhanceArg = Annotated[
    bool | None,
    Field(description="Let the provider rewrite the prompt (Imagen); the result shows the rewrite."),
]
GuidanceArg = Annotated[
    float | None, Field(description="How strictly to follow the prompt (Imagen).", ge=0, le=500)
]
WaitArg = Annotated[
    float | None,
    Field(
        description="Seconds to wait for the result before answering with a job_id to collect it later "
        "with get_job (default 45, IMAGEGEN_WAIT_SECONDS; 0 answers with the job_id at once). Keep it "
        "under the host's tool-call timeout (often 60 s).",
        ge=0,
        le=3600,
    ),
]


def tool_annotations(
    title: str,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = True,
) -> ToolAnnotations:
    """Tool hints for hosts; by default a tool that makes something new by calling a provider."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


GENERATE_ANNOTATIONS = tool_annotations("Generate image")
EDIT_ANNOTATIONS = tool_annotations("Edit image")
GET_JOB_ANNOTATIONS = tool_annotations("Get image job", read_only=True, idempotent=True, open_world=False)
CANCEL_JOB_ANNOTATIONS = tool_annotations(
    "Cancel image job", destructive=True, idempotent=True, open_world=False
)
LIST_ANNOTATIONS = tool_annotations("List image providers", read_only=True, idempotent=True, open_world=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Map the error tree to the tool result the model reads (`isError` with our message)."""
    try:
        yield
    except ImagegenError as exc:
        raise ToolError(str(exc)) from None


def app_state(ctx: Context[AppState, Any]) -> AppState:
    return ctx.request_context.lifespan_context


async def generate_image(
    prompt: PromptArg,
    ctx: Context[AppState, Any],
    provider: ProviderArg = None,
    model: ModelArg = None,
    n: NArg = 1,
    size: SizeArg = None,
    aspect_ratio: AspectArg = None,
    quality: QualityArg = None,
    background: BackgroundArg = None,
    output_format: FormatArg = None,
    output_compression: CompressionArg = None,
    negative_prompt: NegativeArg = None,
    seed: SeedArg = None,
    moderation: Annotated[
        Literal["auto", "low"] | None, Field(description="OpenAI content moderation strictness.")
    ] = None,
    partial_images: PartialArg = None,
    keep_partials: KeepPartialsArg = False,
    image_size: ImageSizeArg = None,
    person_generation: PersonArg = None,
    safety_filter: SafetyArg = None,
    language: LanguageArg = None,
    add_watermark: WatermarkArg = None,
    enhance_prompt: EnhanceArg = None,
    guidance_scale: GuidanceArg = None,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, ImageResult]:
    """Generate images from a text prompt and keep them in the image store.

    Returns each image as an inline preview (downscaled to fit the host's limits), a link
    to the full-size file (imagegen://images/{id}) and JSON with its id, path and size.
    Options a provider cannot honour are refused with an error, never silently dropped.
    If the provider takes longer than wait_seconds, the answer has status 'running' and a
    job_id instead: call get_job with it to collect the images.
    """
    with user_errors():
        app = app_state(ctx)
        generator = app.providers.generator(provider, model)
        options = given(
            size=size,
            aspect_ratio=aspect_ratio,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            negative_prompt=negative_prompt,
            seed=seed,
            moderation=moderation,
            partial_images=partial_images or None,
            image_size=image_size,
            person_generation=person_generation,
            safety_filter=safety_filter,
            language=language,
            add_watermark=add_watermark,
            enhance_prompt=enhance_prompt,
            guidance_scale=guidance_scale,
        )
        check_options(generator.name, generator.capabilities, n, options)
        _check_partials(options, keep_partials)
        request = GenerateRequest(
            prompt=prompt, model=chosen_model(generator.capabilities, model, generator.name), n=n, **options
        )
        work = ImageWork(
            app,
            generator.name,
            request.model,
            prompt,
            {"n": n, **options},
            "generated",
            functools.partial(generator.generate, request),
            keep_partials=keep_partials,
        )
        return await run_image_tool(
            ctx,
            "generate_image",
            work,
            f"asking {generator.name} ({request.model}) for {n} image(s)",
            wait_seconds,
        )


async def edit_image(
    image: ImageArg,
    prompt: PromptArg,
    ctx: Context[AppState, Any],
    mask: Annotated[
        str | None,
        Field(
            description="Where to edit, same size as image: a PNG whose transparent pixels mark the area to "
            "change, or a black-and-white image whose white pixels do. Same input forms as image."
        ),
    ] = None,
    images: Annotated[
        list[str] | None,
        Field(description="More input images (references, products, styles) after the first; same forms."),
    ] = None,
    provider: ProviderArg = None,
    model: ModelArg = None,
    n: NArg = 1,
    size: SizeArg = None,
    aspect_ratio: AspectArg = None,
    quality: QualityArg = None,
    background: BackgroundArg = None,
    output_format: FormatArg = None,
    output_compression: CompressionArg = None,
    negative_prompt: NegativeArg = None,
    seed: SeedArg = None,
    input_fidelity: Annotated[
        Literal["low", "high"] | None,
        Field(
            description="How closely to keep the input's details, faces especially (OpenAI gpt-image-1.x)."
        ),
    ] = None,
    partial_images: PartialArg = None,
    keep_partials: KeepPartialsArg = False,
    image_size: ImageSizeArg = None,
    person_generation: PersonArg = None,
    mode: Annotated[
        Literal["insert", "remove", "outpaint", "background_swap", "product"] | None,
        Field(
            description="What kind of edit (Imagen on vertex): insert or remove something in the masked "
            "area, outpaint into it (the image padded, the mask marking the new area), background_swap "
            "(keeps the subject), product (a product shot)."
        ),
    ] = None,
    mask_mode: Annotated[
        Literal["user_provided", "background", "foreground", "semantic"] | None,
        Field(
            description="Where to edit when no mask is given (Imagen): background, foreground, or semantic "
            "with mask_classes; user_provided means the mask parameter."
        ),
    ] = None,
    mask_classes: Annotated[
        list[int] | None, Field(description="mask_mode semantic: 1-5 segmentation class ids.", max_length=5)
    ] = None,
    mask_dilation: Annotated[
        float | None, Field(description="Grow the edit area by this fraction of the image (0-1).", ge=0, le=1)
    ] = None,
    reference_type: Annotated[
        Literal["style", "subject", "control"] | None,
        Field(
            description="Imagen customisation: every input image is a style, subject or control reference, "
            "referred to in the prompt as [1], [2]... No mask."
        ),
    ] = None,
    reference_description: Annotated[
        str | None,
        Field(description="With reference_type style or subject: what the references show.", max_length=500),
    ] = None,
    subject_type: Annotated[
        Literal["default", "person", "animal", "product"] | None,
        Field(description="With reference_type subject."),
    ] = None,
    control_type: Annotated[
        Literal["canny", "scribble", "face_mesh"] | None, Field(description="With reference_type control.")
    ] = None,
    guidance_scale: GuidanceArg = None,
    safety_filter: SafetyArg = None,
    add_watermark: WatermarkArg = None,
    wait_seconds: WaitArg = None,
) -> Annotated[CallToolResult, ImageResult]:
    """Edit an image by instruction, optionally only inside a mask, optionally using more input images.

    The input images are kept in the store too, and each result records them as its
    parents. Returns previews, links and JSON exactly like generate_image, including the
    job handle (status 'running', job_id) when the provider takes longer than wait_seconds.
    """
    with user_errors():
        app = app_state(ctx)
        editor = app.providers.editor(provider, model)
        caps = editor.capabilities
        options = given(
            size=size,
            aspect_ratio=aspect_ratio,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            negative_prompt=negative_prompt,
            seed=seed,
            input_fidelity=input_fidelity,
            partial_images=partial_images or None,
            image_size=image_size,
            person_generation=person_generation,
            mode=mode,
            mask_mode=mask_mode,
            mask_classes=tuple(mask_classes) if mask_classes else None,
            mask_dilation=mask_dilation,
            reference_type=reference_type,
            guidance_scale=guidance_scale,
            safety_filter=safety_filter,
            add_watermark=add_watermark,
        )
        if (reference_description or subject_type or control_type) and not reference_type:
            raise InputError("reference_description, subject_type and control_type go with reference_type")
        references = [image, *(images or [])]
        if len(references) > caps.max_input_images:
            raise InputError(
                f"{editor.name} takes at most {caps.max_input_images} input image(s), got {len(references)}"
            )
        check_options(editor.name, caps, n, options)
        _check_partials(options, keep_partials)
        masked = mask is not None or mode or mask_mode or reference_type
        edit_model = chosen_model(caps, model, editor.name, "edit_masked" if masked else "edit")
        await ctx.report_progress(0, None, "reading the input images")
        inputs = tuple(
            [
                await input_image(app, ref, caps, f"image {i + 1}" if i else "image")
                for i, ref in enumerate(references)
            ]
        )
        mask_image = await _mask_image(app, mask, inputs[0]) if mask is not None else None
        request = EditRequest(
            prompt=prompt,
            model=edit_model,
            n=n,
            images=inputs,
            mask=mask_image,
            reference_description=reference_description,
            subject_type=subject_type,
            control_type=control_type,
            **options,
        )
        work = ImageWork(
            app,
            editor.name,
            request.model,
            prompt,
            {
                "n": n,
                **options,
                **given(
                    reference_description=reference_description,
                    subject_type=subject_type,
                    control_type=control_type,
                ),
            },
            "edited",
            functools.partial(editor.edit, request),
            inputs=inputs,
            mask=mask_image,
            keep_partials=keep_partials,
        )
        return await run_image_tool(
            ctx, "edit_image", work, f"asking {editor.name} ({request.model}) to edit", wait_seconds
        )


class ProviderInfo(BaseModel):
    name: str
    title: str
    configured: bool
    is_default: bool
    operations: list[str]
    models: list[str]
    default_model: str
    options: list[str] = Field(description="Optional tool parameters this provider honours.")
    output_formats: list[str]
    max_images: int
    max_input_images: int
    vision_models: list[str] = Field(description="Models describe_image can use (empty: it cannot describe).")
    max_describe_images: int
    enable_with: list[str] = Field(description="Environment variables that configure it.")
    notes: str


class ProvidersList(BaseModel):
    providers: list[ProviderInfo]
    default_provider: str | None = Field(description="Used when a tool call names no provider.")


async def list_providers(ctx: Context[AppState, Any]) -> ProvidersList:
    """List every image provider: whether it is configured, what it can do, its models and options,
    and which environment variables enable the ones that are not configured."""
    registry = app_state(ctx).providers
    try:
        default: str | None = registry.default_name("generate")
    except ConfigError:
        default = None
    infos = []
    for spec in registry.specs:
        caps = registry.capabilities(spec.name)
        infos.append(
            ProviderInfo(
                name=spec.name,
                title=spec.title,
                configured=registry.is_configured(spec.name),
                is_default=spec.name == default,
                operations=sorted(caps.operations),
                models=list(caps.models),
                default_model=caps.default_model,
                options=sorted(caps.options),
                output_formats=list(caps.output_formats),
                max_images=caps.max_images,
                max_input_images=caps.max_input_images,
                vision_models=list(caps.vision_models),
                max_describe_images=caps.max_describe_images,
                enable_with=list(spec.env_vars),
                notes=registry.notes(spec.name),
            )
        )
    return ProvidersList(providers=infos, default_provider=default)


JobIdArg = Annotated[
    str,
    Field(description="The job_id from a result whose status was 'running'.", min_length=1, max_length=100),
]


async def get_job(
    job_id: JobIdArg,
    ctx: Context[AppState, Any],
    wait_seconds: WaitArg = None,
) -> CallToolResult:
    """Wait for a job started by an image tool whose answer had status 'running', and return
    the result that tool would have returned (previews, links, JSON), or its error.

    If the job is still not done after wait_seconds, the answer has status 'running' again:
    call get_job once more. Cancelling a get_job call does not cancel the job.
    """
    with user_errors():
        job = app_state(ctx).jobs.get(job_id)
        return await deliver(ctx, job, wait_seconds, owner=False)


class JobStatus(BaseModel):
    job_id: str
    status: JobState
    tool: str
    provider: str
    model: str
    elapsed_s: float
    message: str


async def cancel_job(job_id: JobIdArg, ctx: Context[AppState, Any]) -> JobStatus:
    """Stop a running job: the provider request is aborted and its partial images removed.

    Images the provider had already returned before the cancel stay in the store. A job
    that has already finished is left as it is, and its status says so.
    """
    with user_errors():
        job = app_state(ctx).jobs.get(job_id)
        if not job.done:
            job.cancel()
            await job.wait(CANCEL_GRACE_S)
        if job.state == "succeeded":
            message = "it had already finished; get_job returns its result"
        else:
            message = job.error or job.latest
        return JobStatus(
            job_id=job.id,
            status=job.state,
            tool=job.tool,
            provider=job.provider,
            model=job.model,
            elapsed_s=round(job.elapsed_s, 1),
            message=message,
        )


def register_tools(server: MCPServer[AppState]) -> None:
    server.add_tool(generate_image, annotations=GENERATE_ANNOTATIONS, title=GENERATE_ANNOTATIONS.title)
    server.add_tool(edit_image, annotations=EDIT_ANNOTATIONS, title=EDIT_ANNOTATIONS.title)
    server.add_tool(list_providers, annotations=LIST_ANNOTATIONS, title=LIST_ANNOTATIONS.title)
    server.add_tool(get_job, annotations=GET_JOB_ANNOTATIONS, title=GET_JOB_ANNOTATIONS.title)
    server.add_tool(cancel_job, annotations=CANCEL_JOB_ANNOTATIONS, title=CANCEL_JOB_ANNOTATIONS.title)


def given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def chosen_model(caps: Capabilities, model: str | None, provider: str, operation: str = "generate") -> str:
    chosen = model or caps.default_model_for(operation)
    if not chosen:
        raise ConfigError(
            f"{provider} has no default model: pass model, or set AZURE_OPENAI_DEPLOYMENT for Azure"
        )
    return chosen


def check_options(provider: str, caps: Capabilities, n: int, options: dict[str, Any]) -> None:
    """Refuse what the provider cannot do, before any network call or input decoding.

    Normalises `aspect_ratio` in place (" 16 : 9 " becomes "16:9").
    """
    unsupported = sorted(set(options) - caps.options)
    if unsupported:
        them = "them" if len(unsupported) > 1 else "it"
        supported = ", ".join(sorted(caps.options))
        raise UnsupportedOptionError(
            f"{provider} does not support {', '.join(unsupported)}; leave {them} out or pick a provider that "
            f"does (list_providers). {provider} supports: {supported}"
        )
    if n > caps.max_images:
        raise InputError(f"{provider} makes at most {caps.max_images} image(s) per call, not {n}")
    if "size" in options and "aspect_ratio" in options:
        raise InputError("give size or aspect_ratio, not both")
    ratio = options.get("aspect_ratio")
    if ratio is not None:
        match = ASPECT_RATIO.match(ratio)
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            raise InputError(f"aspect_ratio must look like 16:9, not {ratio!r}")
        options["aspect_ratio"] = f"{int(match[1])}:{int(match[2])}"
    output_format = options.get("output_format")
    if output_format is not None and output_format not in caps.output_formats:
        raise UnsupportedOptionError(
            f"{provider} makes {', '.join(caps.output_formats)}, not {output_format}"
        )
    if options.get("background") == "transparent" and output_format not in (None, "png", "webp"):
        raise InputError("background 'transparent' needs output_format png or webp")
    if "output_compression" in options and output_format not in ("jpeg", "webp"):
        raise InputError("output_compression applies to jpeg or webp output; set output_format too")


def _check_partials(options: dict[str, Any], keep_partials: bool) -> None:
    if keep_partials and not options.get("partial_images"):
        raise InputError("keep_partials applies only with partial_images (1-3)")


async def input_image(app: AppState, reference: str, caps: Capabilities, what: str) -> InputImage:
    raw = await app.inputs.resolve(reference, what)
    normalized = await anyio.to_thread.run_sync(
        lambda: codec.normalize_input(
            raw.data, max_pixels=app.settings.max_pixels, accepted=caps.input_mime_types, what=what
        )
    )
    return InputImage(
        data=normalized.data,
        mime_type=normalized.mime_type,
        width=normalized.width,
        height=normalized.height,
        filename=_filename(raw, normalized.mime_type, what),
        # A stored input keeps its id only if it is sent unchanged (normalize_input returns the same
        # bytes object); a rotated or converted copy is new and gets stored as an input of its own.
        store_id=raw.store_id if normalized.data is raw.data else None,
    )


async def _mask_image(app: AppState, reference: str, first: InputImage) -> InputImage:
    raw = await app.inputs.resolve(reference, "mask")
    size = (first.width, first.height)
    data = await anyio.to_thread.run_sync(
        lambda: codec.edit_mask(raw.data, size=size, max_pixels=app.settings.max_pixels)
    )
    return InputImage(data, "image/png", first.width, first.height, "mask.png")


def _filename(raw: RawInput, mime_type: str, what: str) -> str:
    """The multipart filename: the source's name with the right extension."""
    stem = raw.filename.rsplit(".", 1)[0] if "." in raw.filename else raw.filename
    if stem == "image":
        stem = what.replace(" ", "-")
    return f"{stem}.{codec.EXTENSION_BY_MIME.get(mime_type, 'png')}"
