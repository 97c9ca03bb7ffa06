"""OpenAI Images API (`/images/generations`, `/images/edits`) for OpenAI, Azure OpenAI and
any OpenAI-compatible server; with `api: responses` (per call or the provider's default), the
Responses API's image_generation tool instead (`providers/openai/responses.py`).

The three differ only in where requests go and how they authenticate (`ImagesEndpoint`);
the translation to and from the wire format (`providers.md` section 1) is shared and
matches what the official `openai` SDK sends: JSON keys in the SDK's order with unset
options omitted, and multipart edits with `image[]` parts and a `mask` part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from pydantic import JsonValue

from mcp_imagegen.errors import (
    ContentPolicyError,
    MalformedReplyError,
    ProviderError,
    ProviderUnreachableError,
    UnsupportedOptionError,
)
from mcp_imagegen.providers._http import (
    DEFAULT_RETRY,
    Exchange,
    HttpProvider,
    MultipartFiles,
    RetryPolicy,
    SSEEvent,
    event_object,
    json_error_body,
    open_stream,
    read_json_object,
    reply_image_bytes,
    retry_after_seconds,
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
    ImageDescriber,
    Mainline,
    ProviderResult,
    Tokens,
)
from mcp_imagegen.providers.openai import models as openai_models
from mcp_imagegen.providers.openai.endpoint import ImagesEndpoint, ImagesOperation, request_id
from mcp_imagegen.providers.openai.responses import (
    MAINLINE_OUTPUT_TOKENS,
    Action,
    ResponseReader,
    ResponsesCall,
    continuation,
    previous_response_gone,
)
from mcp_imagegen.redaction import redact

CONTENT_POLICY_CODES = frozenset(
    {"moderation_blocked", "content_policy_violation", "contentFilter", "content_filter"}
)
RESPONSE_FACTS = ("created", "background", "output_format", "quality", "size", "usage")
"""Top-level reply fields kept in the image metadata."""


class OpenAIImages(HttpProvider):
    """The OpenAI image adapter (Images API or Responses API); one instance per configured endpoint."""

    def __init__(
        self,
        endpoint: ImagesEndpoint,
        client: httpx2.AsyncClient,
        capabilities: Capabilities,
        timeout_s: float,
        retry: RetryPolicy = DEFAULT_RETRY,
        vision: ImageDescriber | None = None,
    ) -> None:
        super().__init__(endpoint.provider, client, capabilities, timeout_s, retry)
        self._endpoint = endpoint
        self._vision = vision

    async def describe(self, request: DescribeRequest, events: CallEvents = SILENT) -> DescribeResult:
        """Vision questions go to the chat API next to the images API (see `providers.chat`)."""
        if self._vision is None:
            raise UnsupportedOptionError(f"{self.name} has no vision model configured for describe_image")
        return await self._vision.describe(request, events)

    async def generate(self, request: GenerateRequest, events: CallEvents = SILENT) -> ProviderResult:
        options = self._checked_options(request)
        if request.moderation is not None:
            options["moderation"] = request.moderation
        if self._api(request) == "responses":
            return await self._respond(request, options, "generate", events)
        # The SDK writes `stream` right after `model` in JSON (in multipart it sorts with the rest).
        body: dict[str, Any] = {"model": self._endpoint.wire_model(request.model)}
        if options.pop("stream", False):
            body["stream"] = True
        body["prompt"] = request.prompt
        body.update(_sdk_order(options, n=request.n))
        exchange = self._exchange("generations", request.model, json_body=body)
        return await self._call(exchange, request, events)

    async def edit(self, request: EditRequest, events: CallEvents = SILENT) -> ProviderResult:
        options = self._checked_options(request)
        if request.input_fidelity is not None:
            openai_models.check_input_fidelity(request.model, request.input_fidelity)
            options["input_fidelity"] = request.input_fidelity
        if self._api(request) == "responses":
            if request.moderation is not None:
                options["moderation"] = request.moderation
            return await self._respond(request, options, "edit", events)
        if request.moderation is not None:
            raise UnsupportedOptionError(
                "the Images API's edits take no moderation; use api 'responses' to set it for an edit"
            )
        if request.continue_conversation is not None:
            raise UnsupportedOptionError("continue_conversation applies with api 'responses' only")
        options["model"] = self._endpoint.wire_model(request.model)
        form = {"prompt": request.prompt, **_form_values(_sdk_order(options, n=request.n))}
        files = [("image[]", (image.filename, image.data, image.mime_type)) for image in request.images]
        if request.mask is not None:
            files.append(("mask", (request.mask.filename, request.mask.data, request.mask.mime_type)))
        exchange = self._exchange("edits", request.model, form=form, files=files)
        return await self._call(exchange, request, events)

    def mainline_for(self, request: GenerateRequest, *, may_continue: bool) -> Mainline | None:
        """The mainline model of a call that goes to the Responses API: one that asks for it, or
        (asking for no API) an edit that may continue a response, or any call where the provider's
        default is `responses`."""
        api = request.api or self._endpoint.image_api
        # Without a mainline model configured, no response of ours can be continued.
        continued = may_continue and isinstance(request, EditRequest) and self._endpoint.responses_model
        if request.api is None and continued:
            api = "responses"
        if api != "responses":
            return None
        return Mainline(self._endpoint.mainline_model(), MAINLINE_OUTPUT_TOKENS, may_continue=may_continue)

    def _api(self, request: GenerateRequest) -> str:
        """The call's `api`; else, for an edit of an image a Responses call of this provider made
        (and that can be continued), `responses`, so that refinement needs no option; else the
        provider's default."""
        if request.api is not None:
            return request.api
        if isinstance(request, EditRequest) and continuation(request, self.name)[0] is not None:
            return "responses"
        return self._endpoint.image_api

    async def _respond(
        self, request: GenerateRequest, options: dict[str, Any], action: Action, events: CallEvents
    ) -> ProviderResult:
        """The Responses API's image_generation tool (`providers/openai/responses.py`): one image."""
        if request.n != 1:
            raise UnsupportedOptionError(
                "api 'responses' makes one image per call: use n=1, or api 'images' for several"
            )
        options.pop("stream", None)
        options.pop("response_format", None)
        call = ResponsesCall.build(self._endpoint, request, options, action)
        try:
            return await self._send_response(call, request, events)
        except ProviderError as exc:
            if not (call.continues and previous_response_gone(exc)):
                raise
        events.step(f"{self.name} no longer has the image's response; sending the image instead")
        call = ResponsesCall.build(self._endpoint, request, options, action, gone=True)
        return await self._send_response(call, request, events)

    async def _send_response(
        self, call: ResponsesCall, request: GenerateRequest, events: CallEvents
    ) -> ProviderResult:
        exchange = self._exchange_at(self._endpoint.responses_url, call.headers, json_body=call.body)
        if not call.streams:
            response = await send(self._client, exchange, events)
            return ResponseReader(call, self._error_from_body, response, events).whole(request.model)
        async with open_stream(self._client, exchange, events) as response:
            reader = ResponseReader(call, self._error_from_body, response, events)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()  # a server that ignores `stream` answers with plain JSON
                return reader.whole(request.model)
            async for event in sse_events(response):
                await reader.handle(event)
            return reader.result(request.model)

    async def _call(self, exchange: Exchange, request: GenerateRequest, events: CallEvents) -> ProviderResult:
        """One JSON reply, or a stream of events when the request asked for partial images."""
        if not request.partial_images:
            return self._result(await send(self._client, exchange, events), request.model)
        async with open_stream(self._client, exchange, events) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()  # a server that ignores `stream` answers with plain JSON
                return self._result(response, request.model)
            reader = _StreamReader(self.name, self._error_from_body, response, events)
            async for event in sse_events(response):
                await reader.handle(event)
        return reader.result(request.model)

    def _checked_options(self, request: GenerateRequest) -> dict[str, Any]:
        """The options shared by generations and edits, validated for the model."""
        options: dict[str, Any] = {}
        size = request.size
        if request.aspect_ratio is not None:
            width, _, height = request.aspect_ratio.partition(":")
            size = openai_models.size_for_aspect_ratio(request.model, (int(width), int(height)))
        if size is not None:
            options["size"] = openai_models.check_size(request.model, size)
        if request.quality is not None:
            openai_models.check_quality(request.model, request.quality)
            options["quality"] = request.quality
        if request.background is not None:
            takers = tuple(
                model for model in self.capabilities.models if openai_models.rules_for(model).transparent
            )
            openai_models.check_background(request.model, request.background, takers)
            options["background"] = request.background
        if request.output_format is not None:
            options["output_format"] = request.output_format
        if request.output_compression is not None:
            options["output_compression"] = request.output_compression
        if request.partial_images:
            options["stream"] = True
            options["partial_images"] = request.partial_images
        if self._endpoint.response_format is not None:
            options["response_format"] = self._endpoint.response_format
        return options

    def _exchange(
        self,
        operation: ImagesOperation,
        model: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        files: MultipartFiles | None = None,
    ) -> Exchange:
        return self._exchange_at(
            self._endpoint.url(operation, model), {}, json_body=json_body, form=form, files=files
        )

    def _exchange_at(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        json_body: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        files: MultipartFiles | None = None,
    ) -> Exchange:
        return Exchange(
            provider=self.name,
            url=url,
            headers={"Accept": "application/json", **self._endpoint.headers, **headers},
            timeout_s=self._timeout_s,
            map_error=self._map_error,
            params=self._endpoint.params,
            json_body=json_body,
            form=form,
            files=files,
            retry=self._retry,
        )

    def _result(self, response: httpx2.Response, model: str) -> ProviderResult:
        body = read_json_object(response, self.name, images_at="b64_json")
        if isinstance(body.get("error"), dict):
            # Azure reports some content-filter failures inside a 200 body.
            raise self._error_from_body(body, response)
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise MalformedReplyError(
                f"{self.name} answered without any image (no 'data'). Nothing was stored."
            )
        images = tuple(_decode_item(self.name, item, f"data[{index}]") for index, item in enumerate(data))
        return ProviderResult(
            images=images,
            model=model,
            metadata=_reply_facts(body, response),
            tokens=Tokens.reported(body.get("usage")),
        )

    def _map_error(self, response: httpx2.Response) -> ProviderError:
        return self._error_from_body(json_error_body(response) or {}, response)

    def _error_from_body(self, body: Mapping[str, Any], response: httpx2.Response) -> ProviderError:
        """OpenAI `{"error": {message, type, code}}`, Azure's variants, or a bare status."""
        error = body.get("error")
        message = code = None
        inner_code = None
        flagged = ""
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            flagged = _moderation_text(error.get("moderation_details"))
            inner = error.get("inner_error") or error.get("innererror")
            if isinstance(inner, dict):
                inner_code = inner.get("code")
        elif isinstance(error, str):
            message = error
        status = response.status_code
        text = redact(
            str(message) if message else f"{response.reason_phrase or 'error'}", self._endpoint.secrets
        )
        code_text = str(code) if code is not None else None
        given_id = request_id(response.headers)
        if code_text in CONTENT_POLICY_CODES or inner_code == "ResponsibleAIPolicyViolation" or flagged:
            text = f"{text}{flagged}"
            return ContentPolicyError(self.name, text, status=status, code=code_text, request_id=given_id)
        if status in (401, 403):
            text = f"{text} (check {self._endpoint.key_hint})"
        elif status == 404 and self._endpoint.deployment_path:
            text = f"{text} (check the deployment name and AZURE_OPENAI_API_VERSION)"
        elif code_text == "model_not_found" or (status == 404 and "model" in text.lower()):
            text = (
                f"{text} ({self.name} does not serve this model: it may be shut down, or not open to this "
                "key; `mcp-imagegen models check` compares the provider's live list with the model data)"
            )
        return ProviderError(
            self.name,
            text,
            status=status if status >= 400 else None,
            code=code_text,
            retry_after=retry_after_seconds(response),
            request_id=given_id,
        )


ErrorFromBody = Callable[[Mapping[str, Any], httpx2.Response], ProviderError]


def _moderation_text(details: object) -> str:
    """ " (flagged: sexual, violence; at the output stage)" from `moderation_details`, or ""."""
    if not isinstance(details, dict):
        return ""
    categories = details.get("categories")
    named = ", ".join(str(name) for name in categories) if isinstance(categories, list) else ""
    stage = details.get("moderation_stage")
    where = f"at the {stage} stage" if isinstance(stage, str) and stage != "unknown" else ""
    return f" (flagged: {'; '.join(part for part in (named, where) if part) or 'no category given'})"


class _StreamReader:
    """Collects an images stream (providers.md 1.5): partial images go to `events` as they
    arrive, each `*.completed` event is one final image.

    Dispatch is on the JSON `type`, as in the SDK; a `data:` object with an `error` key (or
    of type `error`) is the provider's error; unknown event types are skipped so that newer
    servers still work.
    """

    def __init__(
        self, provider: str, error_from_body: ErrorFromBody, response: httpx2.Response, events: CallEvents
    ) -> None:
        self._provider = provider
        self._error_from_body = error_from_body
        self._response = response
        self._events = events
        self._finals: list[GeneratedImage] = []
        self._facts: dict[str, Any] = {}
        self._billed: list[Tokens | None] = []
        self._partials = 0

    async def handle(self, event: SSEEvent) -> None:
        payload = event_object(self._provider, event)
        if payload is None:
            return
        event_type = str(payload.get("type") or event.event)
        if "error" in payload or event_type == "error":
            body = payload if isinstance(payload.get("error"), dict | str) else {"error": payload}
            raise self._error_from_body(body, self._response)
        if event_type.endswith(".partial_image"):
            self._partials += 1
            index = payload.get("partial_image_index")
            encoded = payload.get("b64_json")
            where = f"partial image {self._partials}"
            if not isinstance(encoded, str):
                raise MalformedReplyError(f"{self._provider} sent {where} without image bytes.")
            data = reply_image_bytes(self._provider, encoded, where)
            await self._events.partial_image(data, index if isinstance(index, int) else self._partials - 1)
        elif event_type.endswith(".completed"):
            where = f"final image {len(self._finals) + 1}"
            self._finals.append(_decode_item(self._provider, payload, where))
            self._facts.update({key: payload[key] for key in RESPONSE_FACTS if key in payload})
            self._billed.append(Tokens.reported(payload.get("usage")))
            self._events.step(f"{self._provider} sent {where}")

    def result(self, model: str) -> ProviderResult:
        if not self._finals:
            raise ProviderUnreachableError(
                f"{self._provider}'s stream ended before the final image "
                f"(after {self._partials} partial image(s)). No final image was stored; try again."
            )
        metadata = _reply_facts(self._facts, self._response)
        metadata["streamed"] = True
        metadata["partial_images_received"] = self._partials
        # Each final image's event carries that image's usage: the call billed their sum.
        billed = [tokens for tokens in self._billed if tokens is not None]
        tokens = (
            Tokens(sum(t.input for t in billed), sum(t.output for t in billed))
            if billed and len(billed) == len(self._billed)
            else None
        )
        return ProviderResult(images=tuple(self._finals), model=model, metadata=metadata, tokens=tokens)


def _decode_item(provider: str, item: object, where: str) -> GeneratedImage:
    """One `{"b64_json": ..., "revised_prompt": ...}` item (a `data[]` entry or a completed event);
    its image may already be decoded (`read_json_object`'s `images_at`)."""
    if not isinstance(item, dict):
        raise MalformedReplyError(f"{provider} sent a malformed {where}. Nothing was stored.")
    encoded = item.get("b64_json")
    if not isinstance(encoded, (str, bytes)):
        hint = (
            ' (it sent a URL; set response_format = "b64_json" for this endpoint)' if item.get("url") else ""
        )
        raise MalformedReplyError(f"{provider} sent {where} without image bytes{hint}.")
    revised = item.get("revised_prompt")
    data = reply_image_bytes(provider, encoded, where)
    return GeneratedImage(data=data, revised_prompt=revised if isinstance(revised, str) else None)


def _reply_facts(body: Mapping[str, Any], response: httpx2.Response) -> dict[str, JsonValue]:
    """The reply fields worth keeping in image metadata, plus the request id support asks for."""
    metadata: dict[str, JsonValue] = {key: body[key] for key in RESPONSE_FACTS if key in body}
    given_id = request_id(response.headers)
    if given_id:
        metadata["request_id"] = given_id
    return metadata


_SDK_OPTION_ORDER = (
    "background",
    "input_fidelity",
    "model",
    "moderation",
    "n",
    "output_compression",
    "output_format",
    "partial_images",
    "quality",
    "response_format",
    "size",
    "stream",
)
"""The order in which the openai SDK writes these keys after `model`/`prompt` (alphabetical)."""


def _sdk_order(options: Mapping[str, Any], *, n: int) -> dict[str, Any]:
    """Options in the SDK's key order, with `n` included only when it is not the default."""
    merged = dict(options)
    if n != 1:
        merged["n"] = n
    return {key: merged[key] for key in _SDK_OPTION_ORDER if key in merged}


def _form_values(options: Mapping[str, Any]) -> dict[str, str]:
    """Multipart scalars as the SDK writes them: decimal ints, lowercase booleans."""
    return {
        key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in options.items()
    }
