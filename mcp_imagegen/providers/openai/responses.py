"""The Responses API's `image_generation` tool (providers.md 1.10) for OpenAI, Azure and
OpenAI-compatible servers.

One call makes one image: a mainline model is made to call the tool (`tool_choice`), the tool
object carries exactly the options the call gave under the names and values the official SDK
sends, and the request body's keys are in the SDK's order (`model`, `stream`, then alphabetical).
An edit of an image that a Responses call made can continue that response
(`previous_response_id`) instead of sending the image again, which keeps the scene. On Azure
the image deployment goes in the `x-ms-oai-image-generation-deployment` header, as Azure's
samples send it, and the tool names no model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from pydantic import JsonValue

from mcp_imagegen.errors import MalformedReplyError, ProviderError, ProviderUnreachableError
from mcp_imagegen.images import b64
from mcp_imagegen.providers._http import SSEEvent, event_object, read_json_object, reply_image_bytes
from mcp_imagegen.providers.base import (
    CallEvents,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    InputImage,
    MainlineUse,
    ProviderResult,
    Tokens,
)
from mcp_imagegen.providers.openai.endpoint import ImagesEndpoint, request_id

Action = Literal["generate", "edit"]
ErrorFromBody = Callable[[Mapping[str, Any], httpx2.Response], ProviderError]

IMAGE_DEPLOYMENT_HEADER = "x-ms-oai-image-generation-deployment"
TOOL_CHOICE = {"type": "image_generation"}
MAINLINE_OUTPUT_TOKENS = 4096
"""The output cap every Responses call carries (`max_output_tokens`, reasoning included): the
mainline model only writes the image tool's call, in a few hundred tokens, but a reasoning model
may think first. It bounds what the mainline can be billed for, so a budget's reservation holds."""
ITEM_FACTS = ("background", "output_format", "quality", "size")
"""Fields of an `image_generation_call` item kept in the image metadata."""


def data_url(image: InputImage) -> str:
    return f"data:{image.mime_type};base64,{b64.encode(image.data)}"


@dataclass(frozen=True)
class ResponsesCall:
    """One Responses API request for an image, and what the result's metadata says about it."""

    provider: str
    body: dict[str, Any]
    headers: dict[str, str]
    streams: bool
    facts: dict[str, JsonValue]
    """Metadata known before the reply: the API, the response continued, why it was not."""

    @classmethod
    def build(
        cls,
        endpoint: ImagesEndpoint,
        request: GenerateRequest,
        tool_options: Mapping[str, Any],
        action: Action,
        *,
        gone: bool = False,
    ) -> ResponsesCall:
        """The request for `request`, with `tool_options` (checked and named as on the wire) in the
        tool. An edit sends its images as `input_image` data URLs after the prompt, and its mask as
        the tool's `input_image_mask`; it continues the response that made its first image instead
        of sending that image, unless asked not to, the response was not kept, or the provider no
        longer has it (`gone`)."""
        tool: dict[str, Any] = {"type": "image_generation"}
        if not endpoint.azure:
            tool["model"] = request.model
        tool.update(tool_options)
        content: list[dict[str, Any]] = [{"type": "input_text", "text": request.prompt}]
        facts: dict[str, JsonValue] = {"api": "responses"}
        previous = None
        if isinstance(request, EditRequest):
            images = list(request.images)
            previous, why_not = continuation(request, endpoint.provider, gone=gone)
            if previous is not None:
                images = images[1:]
                facts["previous_response_id"] = previous
            elif why_not is not None:
                facts["conversation"] = why_not
            content += [
                {"type": "input_image", "image_url": data_url(image), "detail": "auto"} for image in images
            ]
            if request.mask is not None:
                tool["input_image_mask"] = {"image_url": data_url(request.mask)}
        tool["action"] = action
        streams = bool(tool_options.get("partial_images"))
        body: dict[str, Any] = {"model": endpoint.mainline_model()}
        if streams:
            body["stream"] = True
        body["input"] = [{"role": "user", "content": content}]
        body["max_output_tokens"] = MAINLINE_OUTPUT_TOKENS
        if previous is not None:
            body["previous_response_id"] = previous
        if not endpoint.responses_store:
            body["store"] = False
            facts["store"] = False
        body["tool_choice"] = dict(TOOL_CHOICE)
        body["tools"] = [tool]
        headers = {IMAGE_DEPLOYMENT_HEADER: endpoint.deployment_for(request.model)} if endpoint.azure else {}
        return cls(endpoint.provider, body, headers, streams, facts)

    @property
    def continues(self) -> bool:
        return "previous_response_id" in self.body


def continuation(request: EditRequest, provider: str, *, gone: bool = False) -> tuple[str | None, str | None]:
    """The response an edit continues (its first image's, made by this provider), or None with why
    not when there is such a response that is not continued (None, None when there is none)."""
    continues = request.continues
    if continues is None or continues.provider != provider:
        return None, None
    if request.continue_conversation is False:
        return None, "new: continue_conversation was false, so the image was sent"
    if not continues.stored:
        return None, (
            f"new: response {continues.response_id} was kept with store: false and cannot be continued, "
            "so the image was sent again"
        )
    if gone:
        return (
            None,
            f"new: {provider} no longer has response {continues.response_id}, so the image was sent again",
        )
    return continues.response_id, None


def previous_response_gone(error: ProviderError) -> bool:
    """Whether the provider refused a call because the response it continues is gone (expired,
    deleted, or made under another key)."""
    return error.code == "previous_response_not_found" or (
        error.status in (400, 404) and "previous response" in error.message.lower()
    )


class ResponseReader:
    """Turns a Responses API reply, whole or streamed, into the call's image and metadata.

    A failed response, a failed `image_generation_call` (a moderation block carries its
    categories) or an `error` event is the provider's error; a response without an image is a
    malformed reply. Streams dispatch on the JSON `type`, as the SDK does: each
    `…image_generation_call.partial_image` goes to `events` as it arrives, `response.output_item.done`
    brings the final image and `response.completed` the response's id and usage; unknown event
    types are skipped so that newer servers still work.
    """

    def __init__(
        self,
        call: ResponsesCall,
        error_from_body: ErrorFromBody,
        response: httpx2.Response,
        events: CallEvents,
    ) -> None:
        self._call = call
        self._error_from_body = error_from_body
        self._response = response
        self._events = events
        self._items: dict[int, dict[str, Any]] = {}
        self._completed: dict[str, Any] | None = None
        self._response_id: str | None = None
        self._partials = 0

    @property
    def _provider(self) -> str:
        return self._call.provider

    def whole(self, model: str) -> ProviderResult:
        """The result of a JSON reply: images, metadata and the text the model wrote."""
        body = read_json_object(self._response, self._provider, images_at="result")
        self._completed = body
        return self.result(model)

    async def handle(self, event: SSEEvent) -> None:
        payload = event_object(self._provider, event)
        if payload is None:
            return
        kind = str(payload.get("type") or event.event)
        if kind == "error" or isinstance(payload.get("error"), dict):
            error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
            raise self._error_from_body({"error": error}, self._response)
        if kind == "response.created" and isinstance(payload.get("response"), dict):
            self._response_id = payload["response"].get("id")
        elif kind == "response.image_generation_call.generating":
            self._events.step(f"{self._provider} is drawing the image")
        elif kind == "response.image_generation_call.partial_image":
            self._partials += 1
            where = f"partial image {self._partials}"
            encoded = payload.get("partial_image_b64")
            if not isinstance(encoded, str):
                raise MalformedReplyError(f"{self._provider} sent {where} without image bytes.")
            index = payload.get("partial_image_index")
            data = reply_image_bytes(self._provider, encoded, where)
            await self._events.partial_image(data, index if isinstance(index, int) else self._partials - 1)
        elif kind == "response.output_item.done" and isinstance(payload.get("item"), dict):
            item = payload["item"]
            if item.get("type") == "image_generation_call":
                index = payload.get("output_index")
                self._items[index if isinstance(index, int) else len(self._items)] = item
                self._events.step(f"{self._provider} sent the final image")
        elif kind in ("response.completed", "response.failed", "response.incomplete") and isinstance(
            payload.get("response"), dict
        ):
            self._completed = payload["response"]

    def result(self, model: str) -> ProviderResult:
        """The images, the metadata, the model's text and the tokens billed, once the reply is
        complete: the image model's (`tool_usage.image_gen`, or the response's usage where a server
        gives no tool usage) and the mainline model's (the response's usage)."""
        body = self._completed or {}
        self._raise_if_failed(body)
        output = body.get("output")
        items = [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []
        calls = [item for item in items if item.get("type") == "image_generation_call"]
        if not calls or not any(isinstance(call.get("result"), (str, bytes)) for call in calls):
            calls = [self._items[index] for index in sorted(self._items)] or calls
        for call in calls:
            if call.get("status") == "failed" or isinstance(call.get("error"), dict):
                raise self._error_from_body({"error": call.get("error") or {}}, self._response)
        images = tuple(self._image(call, index) for index, call in enumerate(calls) if call.get("result"))
        if not images:
            raise MalformedReplyError(
                f"{self._provider} answered without an image (no image_generation_call result). "
                "Nothing was stored."
            )
        metadata = self._metadata(body, calls[0])
        text = "\n".join(
            str(part.get("text"))
            for item in items
            if item.get("type") == "message" and isinstance(item.get("content"), list)
            for part in item["content"]
            if isinstance(part, dict) and part.get("type") == "output_text" and part.get("text")
        )
        tool_usage = body.get("tool_usage")
        usage = body.get("usage")
        image_usage = tool_usage.get("image_gen") if isinstance(tool_usage, dict) else None
        named = body.get("model")
        mainline = named if isinstance(named, str) else str(self._call.body["model"])
        return ProviderResult(
            images=images,
            model=model,
            metadata=metadata,
            text=text or None,
            tokens=Tokens.reported(image_usage if isinstance(image_usage, dict) else usage),
            mainline=MainlineUse(mainline, Tokens.reported(usage)),
        )

    def _raise_if_failed(self, body: Mapping[str, Any]) -> None:
        error = body.get("error")
        if isinstance(error, dict) and (body.get("status") in (None, "failed")):
            raise self._error_from_body({"error": error}, self._response)
        if body.get("status") == "incomplete" and not self._items and not _has_result(body):
            details = body.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            said = f"the response ended incomplete ({reason or 'no reason given'}) without an image"
            if reason == "max_output_tokens":
                said += (
                    f": the mainline model {self._call.body['model']} used all of its "
                    f"{self._call.body.get('max_output_tokens')} output tokens before calling the image tool"
                )
            raise ProviderError(self._provider, said, status=None)
        if self._call.streams and self._completed is None and not self._items:
            raise ProviderUnreachableError(
                f"{self._provider}'s stream ended before the response completed (after {self._partials} "
                "partial image(s)). No final image was stored; try again."
            )

    def _image(self, call: Mapping[str, Any], index: int) -> GeneratedImage:
        revised = call.get("revised_prompt")
        result = call["result"]
        encoded = result if isinstance(result, bytes) else str(result)
        data = reply_image_bytes(self._provider, encoded, f"image {index + 1}")
        return GeneratedImage(data=data, revised_prompt=revised if isinstance(revised, str) else None)

    def _metadata(self, body: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, JsonValue]:
        """What the image metadata keeps: the response's id (what a later edit continues), the
        image model's usage as `usage` (what prices it), the mainline model's as `response_usage`."""
        metadata: dict[str, JsonValue] = dict(self._call.facts)
        response_id = body.get("id") or self._response_id
        if isinstance(response_id, str):
            metadata["response_id"] = response_id
        if isinstance(call.get("id"), str):
            metadata["image_generation_call_id"] = call["id"]
        if isinstance(body.get("model"), str):
            metadata["mainline_model"] = body["model"]
        metadata.update({key: call[key] for key in ITEM_FACTS if key in call})
        tool_usage = body.get("tool_usage")
        usage = body.get("usage")
        image_usage = tool_usage.get("image_gen") if isinstance(tool_usage, dict) else None
        if isinstance(image_usage, dict):
            metadata["usage"] = image_usage
        elif isinstance(usage, dict):
            metadata["usage"] = usage
        if isinstance(usage, dict):
            metadata["response_usage"] = usage
        if isinstance(tool_usage, dict):
            metadata["tool_usage"] = tool_usage
        if body.get("store") is False:
            metadata["store"] = False
        if self._call.streams:
            metadata["streamed"] = True
            metadata["partial_images_received"] = self._partials
        given = request_id(self._response.headers)
        if given:
            metadata["request_id"] = given
        return metadata


def _has_result(body: Mapping[str, Any]) -> bool:
    output = body.get("output")
    return isinstance(output, list) and any(
        isinstance(item, dict) and isinstance(item.get("result"), (str, bytes)) for item in output
    )
