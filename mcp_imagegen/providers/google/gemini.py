"""Google's Gemini image models through `models/{model}:generateContent` (providers.md 3.8), on the
Gemini API (`google`) and on Vertex AI (`vertex`).

Requests are what the google-genai SDK sends for the same inputs, in camelCase (the SDK
itself writes `inlineData.mime_type`; Google's parser accepts both). A call returns one
image, so `n` images are `n` calls made side by side. Text the model writes next to its
image is kept; a blocked prompt or image becomes a content-policy error with Google's
reason, and an answer with no image says what the model said instead.
"""

from __future__ import annotations

import binascii
import json
import time
from dataclasses import replace
from typing import Any

import anyio
import anyio.to_thread
import httpx2
from anyio.abc import TaskGroup
from pydantic import JsonValue

from mcp_imagegen.errors import (
    ContentPolicyError,
    ImagegenError,
    InputError,
    MalformedReplyError,
    ProviderError,
    UnsupportedOptionError,
)
from mcp_imagegen.images import b64
from mcp_imagegen.operations import Operation
from mcp_imagegen.providers._http import (
    DEFAULT_RETRY,
    Exchange,
    HttpProvider,
    RetryPolicy,
    open_stream,
    read_json_object,
    send,
    sse_events,
)
from mcp_imagegen.providers.base import (
    SILENT,
    CallEvents,
    Capabilities,
    DescribeRequest,
    DescribeResult,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ModelFamily,
    ProviderResult,
    RecontextRequest,
    SegmentRequest,
    Tokens,
    UpscaleRequest,
)
from mcp_imagegen.providers.google import imagen
from mcp_imagegen.providers.google.endpoint import GoogleEndpoint, google_exchange
from mcp_imagegen.providers.google.imagen_predict import ImagenPredict
from mcp_imagegen.providers.model_data import shipped, today
from mcp_imagegen.providers.openai.chat import PROGRESS_EVERY_S, structured_answer
from mcp_imagegen.providers.options import OptionName
from mcp_imagegen.providers.spec import with_default

ASPECT_RATIOS = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
    "1:8",
    "8:1",
    "1:4",
    "4:1",
)
"""Every ratio `imageConfig.aspectRatio` takes (python-genai v2.19.0); a model the data knows may
take fewer (`models.toml`)."""
IMAGE_SIZES = ("1K", "2K", "4K")
PERSON_GENERATION = {"allow_all": "ALLOW_ALL", "allow_adult": "ALLOW_ADULT", "dont_allow": "ALLOW_NONE"}
"""Our values (Imagen's spelling) to generateContent's; the two APIs spell "none" differently."""
BLOCKED_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
USAGE_COUNTS = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount")
MAX_IMAGES_PER_CALL = 4
MAX_INPUT_IMAGES = 14
_COMMON_OPTIONS: frozenset[OptionName] = frozenset({"aspect_ratio", "image_size", "seed"})
_VERTEX_OPTIONS: frozenset[OptionName] = _COMMON_OPTIONS | frozenset(
    {
        "output_format",
        "output_compression",
        "person_generation",
        *imagen.IMAGEN_ONLY_OPTIONS,
        # Imagen's reference and segmentation settings.
        "reference_description",
        "subject_type",
        "control_type",
        "max_predictions",
        "confidence_threshold",
        "binary_color_threshold",
    }
)
VERTEX_FAMILIES = (
    ModelFamily(
        "Gemini", ("gemini-",), _COMMON_OPTIONS | {"output_format", "output_compression", "person_generation"}
    ),
    ModelFamily("Imagen", imagen.MODEL_PREFIXES, _VERTEX_OPTIONS),
)
"""On Vertex, Gemini models take the common options; Imagen models take those and Imagen's own."""
GEMINI_NOTES = (
    "Gemini image models: edits are by instruction (no mask); n images are n calls. "
    f"aspect_ratio {', '.join(ASPECT_RATIOS)} (1:8, 8:1, 1:4 and 4:1 on gemini-nano-banana-2.1 and "
    f"the Lite model); image_size {', '.join(IMAGE_SIZES)} (1K only on the Lite model and 2.5)."
)
VERTEX_NOTES = (
    f"{GEMINI_NOTES} Google shut down the Imagen generate and edit models on 2026-08-17: generate and "
    "edit with the Gemini image models; Imagen upscale, segmentation and recontext models remain. "
    "output_format, output_compression and person_generation work with both families."
)


VERTEX_OPERATION_MODELS = {
    "upscale": imagen.UPSCALE_MODEL,
    "segment": imagen.SEGMENT_MODEL,
    "recontext": imagen.RECONTEXT_MODEL,
    "edit_masked": imagen.EDIT_MODEL,
}


def gemini_capabilities(
    backend: str, default_model: str, vision_model: str | None = None, models: tuple[str, ...] | None = None
) -> Capabilities:
    """What a Gemini API or Vertex endpoint offers: the image and vision models the model data lists
    for it (`providers/google/models.toml`; `models` instead where given), the configured default
    first."""
    vertex = backend == "vertex"
    book, day, provider = shipped(), today(), "vertex" if vertex else "google"
    models = with_default(default_model, models or book.models(provider, "image", day))
    vision_models = book.models(provider, "text", day)
    vision_model = vision_model or book.default(provider, "describe") or vision_models[0]
    operations: set[Operation] = {"generate", "edit", "describe"}
    if vertex:
        operations |= {"upscale", "segment", "recontext"}
    return Capabilities(
        operations=frozenset(operations),
        operation_models={**(VERTEX_OPERATION_MODELS if vertex else {}), "describe": vision_model},
        vision_models=with_default(vision_model, vision_models),
        max_describe_images=16,
        vision_max_side=3072,
        max_describe_image_bytes=7 * 1024 * 1024,
        models=models,
        default_model=default_model,
        options=_VERTEX_OPTIONS if vertex else _COMMON_OPTIONS,
        families=VERTEX_FAMILIES if vertex else (),
        output_formats=("png", "jpeg") if vertex else ("png",),
        max_images=MAX_IMAGES_PER_CALL,
        max_input_images=MAX_INPUT_IMAGES,
        notes=VERTEX_NOTES if vertex else GEMINI_NOTES,
    )


class GoogleImages(HttpProvider):
    """The Gemini adapter (`generateContent`: generation, instruction edits, vision) on one Google
    endpoint; on Vertex it hands Imagen models to the Imagen adapter on the same endpoint."""

    def __init__(
        self,
        endpoint: GoogleEndpoint,
        client: httpx2.AsyncClient,
        capabilities: Capabilities,
        timeout_s: float,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(endpoint.provider, client, capabilities, timeout_s, retry)
        self._endpoint = endpoint
        self._imagen = (
            ImagenPredict(endpoint, client, capabilities, timeout_s, retry)
            if endpoint.backend == "vertex"
            else None
        )

    async def generate(self, request: GenerateRequest, events: CallEvents = SILENT) -> ProviderResult:
        if imagen.is_imagen(request.model):
            return await self._imagen_for(request.model).generate(request, events)
        imagen.refuse_imagen_only(request)
        return await self._content(request, [], events)

    async def describe(self, request: DescribeRequest, events: CallEvents = SILENT) -> DescribeResult:
        """A question about images through `streamGenerateContent?alt=sse`: text arrives as it is
        written, which feeds progress; a response schema asks for JSON (`responseJsonSchema`)."""
        parts: list[dict[str, Any]] = []
        for image in request.images:
            if isinstance(image, str):
                raise InputError(
                    f"{self.name} takes image bytes, not URLs; let the server fetch them (URL inputs)"
                )
            parts.append({"inlineData": {"data": b64.encode(image.data), "mimeType": image.mime_type}})
        body: dict[str, Any] = {"contents": [{"parts": [*parts, {"text": request.question}], "role": "user"}]}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}], "role": "user"}
        config: dict[str, Any] = {
            key: value
            for key, value in (
                ("temperature", request.temperature),
                ("topP", request.top_p),
                ("maxOutputTokens", request.max_tokens),
            )
            if value is not None
        }
        if request.response_schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = request.response_schema
        if config:
            body["generationConfig"] = config
        exchange = replace(
            await self._exchange(request.model, "streamGenerateContent", body), params={"alt": "sse"}
        )
        texts: list[str] = []
        usage: dict[str, JsonValue] = {}
        finish: str | None = None
        reported_at = time.monotonic()
        async with open_stream(self._client, exchange, events) as response:
            async for event in sse_events(response):
                reply = _json_object(self.name, event.data)
                said, finish_now = _read_text_reply(self.name, reply)
                texts.extend(said)
                finish = finish_now or finish
                usage = _summed_usage([reply]) or usage
                if texts and time.monotonic() - reported_at >= PROGRESS_EVERY_S:
                    reported_at = time.monotonic()
                    events.step(f"{self.name} is answering ({len(''.join(texts))} characters so far)")
        text = "".join(texts).strip()
        if finish in BLOCKED_FINISH_REASONS:
            raise ContentPolicyError(self.name, f"the answer was blocked (finish reason {finish})")
        if not text:
            raise MalformedReplyError(
                f"{self.name} answered with no text (finish reason {finish or 'none'})."
            )
        structured = structured_answer(self.name, text, request.response_schema)
        return DescribeResult(
            text=text, model=request.model, structured=structured, usage=usage, finish_reason=finish
        )

    async def upscale(self, request: UpscaleRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._imagen_for(request.model).upscale(request, events)

    async def segment(self, request: SegmentRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._imagen_for(request.model).segment(request, events)

    async def recontext(self, request: RecontextRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._imagen_for(request.model).recontext(request, events)

    async def edit(self, request: EditRequest, events: CallEvents = SILENT) -> ProviderResult:
        if imagen.is_imagen(request.model):
            return await self._imagen_for(request.model).edit(request, events)
        imagen.refuse_imagen_only(request)
        if request.mask is not None:
            raise InputError(
                f"{request.model} edits by instruction and takes no mask; describe the area in the prompt, "
                f"or use an Imagen model on vertex ({imagen.EDIT_MODEL}) for mask edits"
            )
        parts = [
            {"inlineData": {"data": b64.encode(image.data), "mimeType": image.mime_type}}
            for image in request.images
        ]
        return await self._content(request, parts, events)

    def _imagen_for(self, model: str) -> ImagenPredict:
        """The Imagen adapter for an Imagen model: Vertex serves them, the Gemini API no longer does."""
        if self._imagen is None:
            raise UnsupportedOptionError(
                f"{model} is an Imagen model, which the Gemini API no longer serves; use provider vertex, "
                "or a Gemini image model here"
            )
        return self._imagen

    async def _exchange(self, model: str, method: str, body: dict[str, Any]) -> Exchange:
        return await google_exchange(self._endpoint, model, method, body, self._timeout_s, self._retry)

    async def _content(
        self, request: GenerateRequest, image_parts: list[dict[str, Any]], events: CallEvents
    ) -> ProviderResult:
        body = {
            "contents": [{"parts": [*image_parts, {"text": request.prompt}], "role": "user"}],
            "generationConfig": self._generation_config(request),
        }
        exchange = await self._exchange(request.model, "generateContent", body)
        replies: list[dict[str, Any]] = [{} for _ in range(request.n)]
        failures: list[ImagegenError] = []

        async def one(index: int, group: TaskGroup) -> None:
            try:
                replies[index] = read_json_object(
                    await send(self._client, exchange, events), self.name, images_at="data"
                )
            except ImagegenError as exc:  # the first failure ends the whole call, with its own message
                failures.append(exc)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for index in range(request.n):
                group.start_soon(one, index, group)
        if failures:
            raise failures[0]
        return _result(self.name, request.model, replies)

    def _generation_config(self, request: GenerateRequest) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if request.seed is not None:
            config["seed"] = request.seed
        config["responseModalities"] = ["TEXT", "IMAGE"]
        image_config: dict[str, Any] = {}
        record = shipped().find(self.name, request.model)
        if request.aspect_ratio is not None:
            ratios = record.aspect_ratios if record is not None and record.aspect_ratios else ASPECT_RATIOS
            if request.aspect_ratio not in ratios:
                raise InputError(
                    f"{request.model} supports aspect_ratio {', '.join(ratios)}, not {request.aspect_ratio}"
                )
            image_config["aspectRatio"] = request.aspect_ratio
        if request.image_size is not None:
            sizes = record.image_sizes if record is not None and record.image_sizes else IMAGE_SIZES
            if request.image_size not in sizes:
                raise InputError(
                    f"{request.model} makes image_size {', '.join(sizes)}, not {request.image_size}"
                )
            image_config["imageSize"] = request.image_size
        if request.person_generation is not None:
            image_config["personGeneration"] = PERSON_GENERATION[request.person_generation]
        if request.output_format is not None:
            options: dict[str, Any] = {"mimeType": f"image/{request.output_format}"}
            if request.output_compression is not None:
                options["compressionQuality"] = request.output_compression
            image_config["imageOutputOptions"] = options
        if image_config:
            config["imageConfig"] = image_config
        return config


def _result(provider: str, model: str, replies: list[dict[str, Any]]) -> ProviderResult:
    images: list[GeneratedImage] = []
    texts: list[str] = []
    finish_reasons: list[JsonValue] = []
    for reply in replies:
        found, said, finish = _read_reply(provider, model, reply)
        images.extend(found)
        texts.extend(said)
        finish_reasons.append(finish)
    metadata: dict[str, JsonValue] = {"finish_reasons": finish_reasons}
    usage = _summed_usage(replies)
    if usage:
        metadata["usage"] = usage
    for key in ("modelVersion", "responseId"):
        if key in replies[0]:
            metadata[key] = replies[0][key]
    text = "\n\n".join(texts) or None
    if text:
        metadata["model_text"] = text
    return ProviderResult(
        images=tuple(images), model=model, metadata=metadata, text=text, tokens=Tokens.reported(usage)
    )


def _read_reply(
    provider: str, model: str, reply: dict[str, Any]
) -> tuple[list[GeneratedImage], list[str], JsonValue]:
    """The images and text of one generateContent reply; errors for blocks and empty answers."""
    feedback = reply.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    candidates = reply.get("candidates")
    if block and not candidates:
        message = feedback.get("blockReasonMessage") if isinstance(feedback, dict) else None
        raise ContentPolicyError(
            provider, f"the prompt was blocked ({block}){': ' + message if message else ''}"
        )
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        raise MalformedReplyError(f"{provider} answered without any candidate. Nothing was stored.")
    candidate = candidates[0]
    finish = candidate.get("finishReason")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    images: list[GeneratedImage] = []
    texts: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("thought"):
            continue  # reasoning, possibly with interim images: not the answer
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict):
            images.append(GeneratedImage(data=_b64(provider, inline.get("data"))))
        elif isinstance(part.get("text"), str) and part["text"].strip():
            texts.append(part["text"].strip())
    if not images:
        said = f' It said: "{" ".join(texts)[:500]}"' if texts else ""
        if finish in BLOCKED_FINISH_REASONS:
            raise ContentPolicyError(provider, f"the image was blocked (finish reason {finish}).{said}")
        raise ProviderError(
            provider,
            f"{model} answered without an image (finish reason {finish or 'none'}).{said} Ask explicitly for "
            "an image, or rephrase",
        )
    return images, texts, finish if isinstance(finish, str) else None


def _read_text_reply(provider: str, reply: dict[str, Any]) -> tuple[list[str], str | None]:
    """The text parts and finish reason of one (streamed) generateContent reply."""
    feedback = reply.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if block and not reply.get("candidates"):
        raise ContentPolicyError(provider, f"the prompt was blocked ({block})")
    if isinstance(reply.get("error"), dict):
        raise ProviderError(
            provider, f"error in the answer stream: {reply['error'].get('message', 'unknown')}"
        )
    texts: list[str] = []
    finish: str | None = None
    candidates = reply.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        candidate = candidates[0]  # one candidate was asked for
        content = candidate.get("content")
        for part in (content.get("parts") if isinstance(content, dict) else None) or []:
            if isinstance(part, dict) and not part.get("thought") and isinstance(part.get("text"), str):
                texts.append(part["text"])
        finish = candidate.get("finishReason")
    return texts, finish


def _json_object(provider: str, data: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        raise MalformedReplyError(f"{provider} sent a stream event that is not JSON.") from None
    return parsed if isinstance(parsed, dict) else {}


def _b64(provider: str, data: object) -> bytes:
    """Standard or URL-safe base64 (Google's JSON accepts and may use either); bytes were decoded
    already (`read_json_object`'s `images_at`)."""
    if isinstance(data, bytes):
        return data
    if not isinstance(data, str):
        raise MalformedReplyError(f"{provider} sent an image part without data. Nothing was stored.")
    try:
        return b64.decode_either(data)
    except (binascii.Error, ValueError):
        raise MalformedReplyError(f"{provider} sent an image part with invalid base64.") from None


def _summed_usage(replies: list[dict[str, Any]]) -> dict[str, JsonValue]:
    """Token counts added up over the calls of one tool call (one call per image)."""
    totals: dict[str, JsonValue] = {}
    for reply in replies:
        usage = reply.get("usageMetadata")
        if not isinstance(usage, dict):
            continue
        for key in USAGE_COUNTS:
            value = usage.get(key)
            if isinstance(value, int):
                previous = totals.get(key, 0)
                totals[key] = (previous if isinstance(previous, int) else 0) + value
    return totals
