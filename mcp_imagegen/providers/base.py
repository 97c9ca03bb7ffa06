"""What crosses the provider seam: requests, results, capabilities, one Protocol per capability.

Providers translate these into their wire formats and nothing else; validation that
depends only on the provider's declared capabilities happens in the tools layer, and
model-specific rules (sizes, quality values) inside the provider before any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import JsonValue

from mcp_imagegen.providers.options import (
    DescribeOptions,
    EditOptions,
    GenerateOptions,
    OptionName,
    RecontextOptions,
    SegmentOptions,
    UpscaleOptions,
)

if TYPE_CHECKING:  # the operation table imports this module; it names operations for the types only
    from mcp_imagegen.operations import Operation


@dataclass(frozen=True)
class ModelFamily:
    """Models of one family and the options they take, where a provider serves families that
    differ (Gemini and Imagen on Vertex): a model's family decides which options it honours."""

    name: str
    prefixes: tuple[str, ...]
    """A model belongs to the family whose prefix its name starts with."""
    options: frozenset[OptionName]

    def serves(self, model: str) -> bool:
        return model.startswith(self.prefixes)


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do, as data: tools route by it and `list_providers` reports it."""

    operations: frozenset[Operation]
    models: tuple[str, ...]
    default_model: str
    options: frozenset[OptionName]
    """The optional parameters it honours (`providers/options.py`); any other given is refused."""
    option_values: Mapping[OptionName, tuple[str, ...]] = field(default_factory=dict)
    """For an option it honours with fewer values than the option's type allows, the values its
    models take (e.g. OpenAI's qualities); the tool list offers only values some provider takes."""
    output_formats: tuple[str, ...] = ("png",)
    max_images: int = 1
    """Largest `n` one call may ask for."""
    max_input_images: int = 1
    """Most input images an edit accepts (the first is the one a mask applies to)."""
    input_mime_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")
    """Input image types sent as they are; others are converted to PNG first."""
    notes: str = ""
    vision_models: tuple[str, ...] = ()
    """Models `describe` may use (vision chat models, not image generators)."""
    max_describe_images: int = 8
    vision_max_side: int = 2048
    """Images sent to `describe` are downscaled to fit this (what the model resizes to anyway)."""
    max_describe_image_bytes: int | None = None
    """The provider's cap on one image sent to `describe`, checked after downscaling."""
    fetches_urls: bool = False
    """The provider downloads http(s) image URLs itself, so a URL the user gives is passed through."""
    operation_models: dict[str, str] = field(default_factory=dict)
    """Default model per operation where it differs from `default_model`; the key `edit_masked`
    is the default for edits with a mask or an edit mode."""

    families: tuple[ModelFamily, ...] = ()
    """Per model family, the options it takes (within `options`); a model of no family takes all."""
    deployments: Mapping[str, str] = field(default_factory=dict)
    """Azure: where each model name's calls go (its deployment), for `list_providers`."""

    def family_of(self, model: str) -> ModelFamily | None:
        return next((family for family in self.families if family.serves(model)), None)

    def options_for(self, model: str) -> frozenset[OptionName]:
        """The options `model` honours: its family's, or the provider's."""
        family = self.family_of(model)
        return family.options if family is not None else self.options

    def default_model_for(self, operation: str) -> str:
        return self.operation_models.get(operation, self.default_model)


@dataclass(frozen=True)
class InputImage:
    """An input image after resolution and validation: bytes ready for a provider."""

    data: bytes
    mime_type: str
    width: int
    height: int
    filename: str
    store_id: str | None = None
    """Id of the stored copy, recorded as the parent of whatever the edit produces."""


@dataclass(frozen=True)
class GenerateRequest(GenerateOptions):
    """A text-to-image request. An option left `None` is "not given": providers omit it from the wire."""

    prompt: str
    model: str
    n: int = 1


@dataclass(frozen=True)
class Continuation:
    """The Responses API response that made an edit's first input image: an edit on the same
    provider can continue it (`previous_response_id`) instead of sending the image again."""

    provider: str
    response_id: str
    stored: bool = True
    """False when the response was made with `store: false`: it cannot be continued."""


@dataclass(frozen=True)
class EditRequest(GenerateRequest, EditOptions):
    """An instruction edit of one or more input images, with an optional mask.

    `mask` is already in the provider-neutral form: a PNG of the first image's size whose
    fully transparent pixels mark the area to change. Reference images (`reference_type`)
    are referred to in the prompt as [1], [2]...
    """

    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    continues: Continuation | None = None
    """Where the first image came from, when a Responses API call made it."""


@dataclass(frozen=True)
class UpscaleRequest(UpscaleOptions):
    image: InputImage
    model: str
    factor: str = "x2"


@dataclass(frozen=True)
class SegmentRequest(SegmentOptions):
    """Masks of what `mode` picks out: `foreground`, `background`, `prompt` (what the prompt
    names), `semantic` (the class names in the prompt) or `interactive` (what the scribble marks)."""

    image: InputImage
    model: str
    mode: str = "foreground"
    prompt: str | None = None
    scribble: InputImage | None = None
    """White marks on black, the size of `image` (interactive mode)."""


@dataclass(frozen=True)
class RecontextRequest(RecontextOptions):
    """A product shown in a new scene; `images` are 1-3 views of the same product."""

    prompt: str
    model: str
    n: int = 1
    images: tuple[InputImage, ...] = ()


@dataclass(frozen=True)
class DescribeRequest(DescribeOptions):
    """A question about one or more images, for a vision model."""

    images: tuple[InputImage | str, ...]
    """Image bytes, or an http(s) URL the provider fetches itself (only for providers that can)."""
    question: str
    model: str


@dataclass(frozen=True)
class DescribeResult:
    text: str
    model: str
    structured: JsonValue = None
    """The parsed answer when a response schema was given."""
    usage: dict[str, JsonValue] = field(default_factory=dict)
    finish_reason: str | None = None


@dataclass(frozen=True)
class Tokens:
    """Tokens a provider billed for one call (or one model's part of it)."""

    input: int
    output: int

    @classmethod
    def reported(cls, usage: object) -> Tokens | None:
        """The tokens of a usage object in any provider's names: OpenAI's (`input_tokens`,
        `output_tokens`), the chat API's (`prompt_tokens`, `completion_tokens`) or Gemini's
        (`promptTokenCount`, `candidatesTokenCount` plus `thoughtsTokenCount`, billed as output)."""
        if not isinstance(usage, Mapping):
            return None
        tokens_in = usage.get("input_tokens", usage.get("prompt_tokens", usage.get("promptTokenCount")))
        tokens_out = usage.get("output_tokens", usage.get("completion_tokens"))
        if tokens_out is None and "candidatesTokenCount" in usage:
            tokens_out = usage["candidatesTokenCount"] + usage.get("thoughtsTokenCount", 0)
        if isinstance(tokens_in, int) and isinstance(tokens_out, int):
            return cls(tokens_in, tokens_out)
        return None


@dataclass(frozen=True)
class Mainline:
    """A text model an image call also runs, and pays for by its tokens: the Responses API's
    mainline model, which calls the image tool."""

    model: str
    max_output_tokens: int
    """The output cap the request carries, so the most output it can be billed for."""
    may_continue: bool = False
    """The call may continue an earlier response, whose context is then billed as input again."""


@dataclass(frozen=True)
class MainlineUse:
    """The mainline model a call ran, and the tokens the reply said it used (None: not said)."""

    model: str
    tokens: Tokens | None = None


@runtime_checkable
class MainlineDriven(Protocol):
    """A provider whose image calls may run a mainline model besides the image model."""

    def mainline_for(self, request: GenerateRequest, *, may_continue: bool) -> Mainline | None:
        """The mainline model `request` would run (None: none), known before its inputs are
        read; `may_continue`: an edit whose first input is a stored image, which a Responses
        call may have made."""
        ...


@dataclass(frozen=True)
class GeneratedImage:
    """One image as the provider returned it (bytes not yet validated or stored)."""

    data: bytes
    revised_prompt: str | None = None
    label: str | None = None
    """What a segmentation mask shows, e.g. `foreground` or a class name."""
    score: float | None = None
    """The provider's confidence in a mask."""
    role: str | None = None
    """`cutout` for a subject cut out on transparency; None for the operation's usual output."""


@dataclass(frozen=True)
class ProviderResult:
    """The images of one call plus whatever the provider reported about them."""

    images: tuple[GeneratedImage, ...]
    model: str
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    """Provider-reported facts worth keeping: usage, effective size/quality, request id."""
    text: str | None = None
    """What the model wrote alongside its images (Gemini), shown with the result."""
    tokens: Tokens | None = None
    """The tokens the image model billed, where the reply says (what prices a token-priced model)."""
    mainline: MainlineUse | None = None
    """The mainline model the call ran (Responses API), and its tokens."""


class CallEvents(Protocol):
    """What a provider reports while one call runs; the server turns it into progress.

    `step` is called at real milestones (request sent, first byte, download finished) and
    must not block. `partial_image` receives each streamed intermediate image as the
    provider sent it (undecoded). `reply_arriving` is awaited before a reply's body is read,
    with its size when the reply gives one: it may wait until the server has room for the
    body, which stays in the connection meanwhile.
    """

    def step(self, message: str) -> None: ...

    async def partial_image(self, data: bytes, index: int) -> None: ...

    async def reply_arriving(self, size: int | None) -> None: ...


class SilentEvents:
    """A `CallEvents` that ignores everything, for direct provider calls (tests, scripts)."""

    def step(self, message: str) -> None:
        """Drop the message."""

    async def partial_image(self, data: bytes, index: int) -> None:
        """Drop the image."""

    async def reply_arriving(self, size: int | None) -> None:
        """Read every reply at once."""


SILENT = SilentEvents()


class Provider(Protocol):
    """Every provider has a name and declares its capabilities."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...


@runtime_checkable
class ImageGenerator(Provider, Protocol):
    async def generate(self, request: GenerateRequest, events: CallEvents = SILENT) -> ProviderResult: ...


@runtime_checkable
class ImageEditor(Provider, Protocol):
    async def edit(self, request: EditRequest, events: CallEvents = SILENT) -> ProviderResult: ...


@runtime_checkable
class ImageDescriber(Provider, Protocol):
    async def describe(self, request: DescribeRequest, events: CallEvents = SILENT) -> DescribeResult: ...


@runtime_checkable
class ImageUpscaler(Provider, Protocol):
    async def upscale(self, request: UpscaleRequest, events: CallEvents = SILENT) -> ProviderResult: ...


@runtime_checkable
class ImageSegmenter(Provider, Protocol):
    async def segment(self, request: SegmentRequest, events: CallEvents = SILENT) -> ProviderResult: ...


@runtime_checkable
class ImageRecontexter(Provider, Protocol):
    async def recontext(self, request: RecontextRequest, events: CallEvents = SILENT) -> ProviderResult: ...
