"""The optional parameters of each operation, declared once, typed, with their descriptions.

Each operation has one frozen options dataclass; its request (`providers/base.py`) inherits
it, so a provider reads `request.size` with the type declared here. The tools' input schemas
are derived from these classes (`server/tools/arguments.py`), `check_options` refuses what
the chosen provider does not declare in `Capabilities.options`, and `list_providers` reports
that declaration. An option's absence is `None` (or `()` for a list), and providers leave it
off the wire.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, JsonValue

OptionName = Literal[
    "size",
    "aspect_ratio",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "negative_prompt",
    "seed",
    "moderation",
    "input_fidelity",
    "partial_images",
    "image_size",
    "person_generation",
    "safety_filter",
    "language",
    "add_watermark",
    "enhance_prompt",
    "guidance_scale",
    "mode",
    "mask_mode",
    "mask_classes",
    "mask_dilation",
    "reference_type",
    "reference_description",
    "subject_type",
    "control_type",
    "max_predictions",
    "confidence_threshold",
    "binary_color_threshold",
    "api",
    "continue_conversation",
]
"""Every option a provider may or may not honour; `Capabilities.options` is a set of these."""
OPTION_NAMES: frozenset[OptionName] = frozenset(get_args(OptionName))

STRICT = ConfigDict(extra="forbid")
"""Options are closed: an unknown name is an error, never ignored."""

Quality = Literal["auto", "low", "medium", "high", "xhigh", "max"]
Background = Literal["auto", "transparent", "opaque"]
OutputFormat = Literal["png", "jpeg", "webp"]

SizeOption = Annotated[
    str | None,
    Field(
        description="'auto' or WxH. gpt-image-1.x: 1024x1024, 1536x1024, 1024x1536. gpt-image-2: edges "
        "divisible by 16, long edge <= 3840, ratio <= 3:1."
    ),
]
AspectRatioOption = Annotated[
    str | None,
    Field(description="Instead of size, e.g. '16:9'."),
]
QualityOption = Annotated[Quality | None, Field(description="Higher: slower, dearer.")]
BackgroundOption = Annotated[Background | None, Field(description="transparent: png or webp output only.")]
OutputFormatOption = Annotated[OutputFormat | None, Field(description="Default png.")]
CompressionOption = Annotated[int | None, Field(description="For jpeg/webp.", ge=0, le=100)]
NegativePromptOption = Annotated[
    str | None, Field(description="What to keep out of the image (providers that support it).")
]
SeedOption = Annotated[
    int | None, Field(description="Seed for repeatable results (providers that support it).")
]
ModerationOption = Annotated[
    Literal["auto", "low"] | None, Field(description="Content moderation strictness.")
]
InputFidelityOption = Annotated[
    Literal["low", "high"] | None,
    Field(description="Keep the input's details, faces especially (gpt-image-1.x)."),
]
PartialImagesOption = Annotated[
    int | None,
    Field(
        description="Stream 1-3 partial images, each stored and sent as progress.",
        ge=0,
        le=3,
    ),
]
ImageSizeOption = Annotated[
    Literal["1K", "2K", "4K"] | None,
    Field(description="Resolution class for providers that take one (Google): 1K (default), 2K, 4K."),
]
PersonGenerationOption = Annotated[
    Literal["allow_all", "allow_adult", "dont_allow"] | None,
    Field(description="Whether people may appear (Google Vertex)."),
]
SafetyFilterOption = Annotated[
    Literal["block_low_and_above", "block_medium_and_above", "block_only_high", "block_none"] | None,
    Field(description="How strict the provider's safety filter is (Imagen)."),
]
LanguageOption = Annotated[
    Literal["auto", "en", "ja", "ko", "hi", "zh", "pt", "es"] | None,
    Field(description="The prompt's language (Imagen)."),
]
WatermarkOption = Annotated[
    bool | None,
    Field(description="Imagen's invisible SynthID watermark (on unless false; seed needs it off)."),
]
EnhancePromptOption = Annotated[
    bool | None,
    Field(description="Let the provider rewrite the prompt (Imagen); the result shows the rewrite."),
]
ApiOption = Annotated[
    Literal["images", "responses"] | None,
    Field(description="OpenAI: 'responses' lets edits continue an image's conversation."),
]
GuidanceScaleOption = Annotated[
    float | None, Field(description="How strictly to follow the prompt (Imagen).", ge=0, le=500)
]


@dataclass(frozen=True, kw_only=True)
class OutputOptions:
    """How the result file is written."""

    __pydantic_config__ = STRICT

    output_format: OutputFormatOption = None
    output_compression: CompressionOption = None


@dataclass(frozen=True, kw_only=True)
class ImagenSafetyOptions:
    """Safety and provenance settings that Google's image models take."""

    __pydantic_config__ = STRICT

    person_generation: PersonGenerationOption = None
    safety_filter: SafetyFilterOption = None
    add_watermark: WatermarkOption = None


@dataclass(frozen=True, kw_only=True)
class RenderOptions(OutputOptions):
    """What generate and edit share: size, quality, background, seed, streaming."""

    size: SizeOption = None
    aspect_ratio: AspectRatioOption = None
    quality: QualityOption = None
    background: BackgroundOption = None
    negative_prompt: NegativePromptOption = None
    seed: SeedOption = None
    partial_images: PartialImagesOption = None
    """Intermediate images to stream (1-3), each handed to `CallEvents.partial_image`."""
    image_size: ImageSizeOption = None
    """A resolution class, `1K`, `2K` or `4K` (Google)."""
    guidance_scale: GuidanceScaleOption = None
    api: ApiOption = None
    """Which OpenAI API makes the image: `images` or `responses` (the `image_generation` tool);
    None: the provider's configured default."""


@dataclass(frozen=True, kw_only=True)
class GenerateOptions(RenderOptions, ImagenSafetyOptions):
    """Options of generate_image."""

    moderation: ModerationOption = None
    language: LanguageOption = None
    """The prompt's language for Imagen: `auto`, `en`, `ja`, `ko`, `hi`, `zh`, `pt`, `es`."""
    enhance_prompt: EnhancePromptOption = None
    """Let Imagen rewrite the prompt; the rewritten prompt comes back as `revised_prompt`."""


@dataclass(frozen=True, kw_only=True)
class EditOptions(RenderOptions, ImagenSafetyOptions):
    """Options of edit_image: generation's, plus how the edit area and references are read."""

    input_fidelity: InputFidelityOption = None
    moderation: ModerationOption = None
    """Taken by edits through the Responses API's image_generation tool only."""
    continue_conversation: Annotated[
        bool | None, Field(description="false: with api responses, resend the image.")
    ] = None
    """With api `responses`, an image made through it is edited by continuing the response that
    made it (`previous_response_id`) unless this is false."""
    mode: Annotated[
        Literal["insert", "remove", "outpaint", "background_swap", "product"] | None,
        Field(
            description="What kind of edit (Imagen on vertex): insert or remove something in the masked "
            "area, outpaint into it (the image padded, the mask marking the new area), background_swap "
            "(keeps the subject), product (a product shot)."
        ),
    ] = None
    mask_mode: Annotated[
        Literal["user_provided", "background", "foreground", "semantic"] | None,
        Field(
            description="Where to edit when no mask is given (Imagen): background, foreground, or semantic "
            "with mask_classes; user_provided means the mask parameter."
        ),
    ] = None
    mask_classes: Annotated[
        tuple[int, ...], Field(description="mask_mode semantic: 1-5 segmentation class ids.", max_length=5)
    ] = ()
    mask_dilation: Annotated[
        float | None, Field(description="Grow the edit area by this fraction of the image (0-1).", ge=0, le=1)
    ] = None
    reference_type: Annotated[
        Literal["style", "subject", "control"] | None,
        Field(
            description="Imagen customisation: every input image is a style, subject or control reference, "
            "referred to in the prompt as [1], [2]... No mask."
        ),
    ] = None
    reference_description: Annotated[
        str | None,
        Field(description="With reference_type style or subject: what the references show.", max_length=500),
    ] = None
    subject_type: Annotated[
        Literal["default", "person", "animal", "product"] | None,
        Field(description="With reference_type subject."),
    ] = None
    control_type: Annotated[
        Literal["canny", "scribble", "face_mesh"] | None, Field(description="With reference_type control.")
    ] = None


@dataclass(frozen=True, kw_only=True)
class RecontextOptions(OutputOptions, ImagenSafetyOptions):
    """Options of recontext_image."""

    seed: SeedOption = None
    enhance_prompt: EnhancePromptOption = None


@dataclass(frozen=True, kw_only=True)
class UpscaleOptions(OutputOptions):
    """Options of upscale_image."""


@dataclass(frozen=True, kw_only=True)
class SegmentOptions:
    """Options of segment_image: how many masks, how sure, how grown, how sharp."""

    __pydantic_config__ = STRICT

    max_predictions: Annotated[int | None, Field(description="Most masks to return.", ge=1, le=100)] = None
    confidence_threshold: Annotated[
        float | None, Field(description="Drop masks the model is less sure of (0-1).", ge=0, le=1)
    ] = None
    mask_dilation: Annotated[
        float | None, Field(description="Grow each mask by this fraction of the image (0-1).", ge=0, le=1)
    ] = None
    binary_color_threshold: Annotated[
        float | None,
        Field(
            description="Make masks pure black and white at this level (0-255; -1 keeps grey).", ge=-1, le=255
        ),
    ] = None


@dataclass(frozen=True, kw_only=True)
class DescribeOptions:
    """Options of describe_image. Every vision provider takes them (the local analysis refuses
    `response_schema` itself), so they are not part of `Capabilities.options`."""

    __pydantic_config__ = STRICT

    system: Annotated[str | None, Field(description="Instructions for the model.", max_length=32000)] = None
    max_tokens: Annotated[
        int | None, Field(description="Longest answer, in tokens (default 8192).", ge=1, le=65536)
    ] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    detail: Annotated[
        Literal["low", "high", "auto"] | None, Field(description="Image detail for OpenAI-style models.")
    ] = None
    """`low`, `high` or `auto` (OpenAI-style image detail)."""
    response_schema: Annotated[
        dict[str, JsonValue] | None,
        Field(
            description="A JSON schema; the answer is then JSON following it, returned validated as `data`."
        ),
    ] = None
    """A JSON schema the answer must follow; the answer is then parsed and validated."""


_FIELDS: dict[type[Any], tuple[tuple[str, Any, Any], ...]] = {}


def option_fields(options: type[Any]) -> tuple[tuple[str, Any, Any], ...]:
    """`(name, annotated type, default)` of each option of an options class (or of a request that
    inherits one), in declaration order: what tool schemas are built from."""
    known = _FIELDS.get(options)
    if known is None:
        hints = typing.get_type_hints(options, include_extras=True)
        own = {
            name
            for cls in options.__mro__
            if cls.__module__ == __name__ and dataclasses.is_dataclass(cls)
            for name in (field.name for field in dataclasses.fields(cls))
        }
        known = _FIELDS[options] = tuple(
            (field.name, hints[field.name], field.default)
            for field in dataclasses.fields(options)
            if field.name in own
        )
    return known


def given_options(request: object) -> dict[str, JsonValue]:
    """The options a request was given (not None, not empty), as JSON values for image metadata."""
    given: dict[str, JsonValue] = {}
    for name, _, _ in option_fields(type(request)):
        value = getattr(request, name)
        if value is None or value == ():
            continue
        given[name] = list(value) if isinstance(value, tuple) else value
    return given


def options_from(options: type[Any], source: object) -> dict[str, Any]:
    """The values of `options`' fields read from `source` (a validated tool call) by name, the
    default for a field the call's schema leaves out: how a tool's arguments become a request's
    options without naming each one again."""
    return {name: getattr(source, name, default) for name, _, default in option_fields(options)}
