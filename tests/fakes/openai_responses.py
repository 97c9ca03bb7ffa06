"""A loopback fake of the Responses API's `image_generation` tool (providers.md section 1.10), served
by the OpenAI fake at `/v1/responses`, and for Azure at `/openai/v1/responses` and
`/openai/responses?api-version=…` (section 2.1; Azure also needs the
`x-ms-oai-image-generation-deployment` header, section 2.5).

It validates requests the way the service does (unknown fields, tool fields and values, a mask
with other keys than `image_url`/`file_id`, partial images without streaming, an unknown
`previous_response_id`), keeps every response it made (those made with `store: false` cannot be
continued), and answers with a `Response` object holding one `image_generation_call` item, or
for `stream: true` with the events of section 1.10 in their typical order. Tests steer it
through `moderate_next` (categories to block the next image with) and the image fake's
`fail_next`, `output_size` and `stream_cut_after`. The official SDK is run against it in
`tests/test_fake_openai_responses_sdk.py`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.responses import JSONResponse, Response, StreamingResponse

REQUEST_FIELDS = frozenset(
    {
        "access_programs", "background", "background_options", "context_management", "conversation",
        "image", "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata",
        "model", "moderation", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
        "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs",
        "top_p", "truncation", "user",
    }
)  # fmt: skip
TOOL_VALUES: dict[str, frozenset[Any] | None] = {
    "type": frozenset({"image_generation"}),
    "action": frozenset({"generate", "edit", "auto"}),
    "background": frozenset({"transparent", "opaque", "auto"}),
    "complexity": frozenset({"low", "medium", "high"}),
    "frame_count": None,
    "frame_duration_ms": None,
    "input_fidelity": frozenset({"high", "low", None}),
    "input_image_mask": None,
    "model": None,
    "moderation": frozenset({"auto", "low"}),
    "output_compression": None,
    "output_format": frozenset({"png", "webp", "jpeg", "gif", "svg"}),
    "partial_images": frozenset({0, 1, 2, 3}),
    "quality": frozenset({"low", "medium", "high", "xhigh", "max", "auto"}),
    "size": None,
    "svg": None,
}
"""The `image_generation` tool's fields (openai `types/responses/tool_param.py:ImageGeneration`),
with their allowed values where they are an enumeration."""


@dataclass
class Made:
    """A response the fake made, as a later request may continue it."""

    body: dict[str, Any]
    stored: bool
    size: tuple[int, int]


@dataclass
class FakeResponses:
    """The Responses half of the OpenAI fake; `image` draws the pictures (the images fake's)."""

    image: Callable[[tuple[int, int], str, bool], bytes]
    output_size: Callable[[], tuple[int, int] | None]
    made: dict[str, Made] = field(default_factory=dict)
    moderate_next: list[list[str]] = field(default_factory=list)
    """Categories to block the next image with (one entry per blocked call)."""
    stream_cut_after: Callable[[], int | None] = lambda: None
    stream_error: Callable[[], dict[str, Any] | None] = lambda: None
    """An `error` event's code and message, sent after the partial images instead of the image."""
    mainline_output_tokens: int = 40
    """What the mainline model writes (reasoning included): over the request's `max_output_tokens`,
    the response ends `incomplete` before the tool is called, as the service's does."""
    image_output_tokens: int = 1056
    """The image model's output tokens (`tool_usage.image_gen`)."""
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def handle(self, body: Any, *, azure: bool, headers: dict[str, str]) -> Response:
        problem = self._invalid(body, azure=azure, headers=headers)
        if problem is not None:
            return problem
        tool = body["tools"][0]
        previous = self.made.get(str(body.get("previous_response_id")))
        size = self._size(tool, body, previous)
        output_format = str(tool.get("output_format", "png"))
        transparent = tool.get("background") == "transparent"
        number = next(self._counter)
        response_id = f"resp_{number:06d}fake"
        item: dict[str, Any] = {
            "type": "image_generation_call",
            "id": f"ig_{number:06d}fake",
            "status": "completed",
            "action": tool.get("action", "generate" if previous is None else "edit"),
            "background": "transparent" if transparent else "opaque",
            "output_format": output_format,
            "quality": str(tool.get("quality", "high")),
            "size": f"{size[0]}x{size[1]}",
            "revised_prompt": f"A detailed rendering of: {_prompt(body)}",
        }
        if self.moderate_next:
            categories = self.moderate_next.pop(0)
            item.update(status="failed", revised_prompt=None)
            item["error"] = {
                "code": "moderation_blocked",
                "message": "Your request was rejected by the safety system.",
                "param": None,
                "type": "image_generation_user_error",
                "moderation_details": {"categories": categories, "moderation_stage": "output"},
            }
        stored = body.get("store") is not False
        cap = body.get("max_output_tokens")
        written = self.mainline_output_tokens if cap is None else min(self.mainline_output_tokens, cap)
        incomplete = cap is not None and self.mainline_output_tokens > cap
        response = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if incomplete else "completed",
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": None,
            "model": body["model"],
            "output": [] if incomplete else [item],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "store": stored,
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body["tools"],
            "usage": {
                "input_tokens": 120,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": written,
                "output_tokens_details": {"reasoning_tokens": max(0, written - 40)},
                "total_tokens": 120 + written,
            },
            "tool_usage": {
                "image_gen": {
                    "input_tokens": 60,
                    "input_tokens_details": {"image_tokens": 50, "text_tokens": 10},
                    "output_tokens": 0 if incomplete else self.image_output_tokens,
                    "total_tokens": 60 + (0 if incomplete else self.image_output_tokens),
                },
                "web_search": {"num_requests": 0},
            },
        }
        self.made[response_id] = Made(response, stored, size)
        headers_out = {"x-request-id": f"req_resp_{number}"}
        if body.get("stream"):
            partials = int(tool.get("partial_images", 0))
            return self._stream(response, partials, size, output_format, headers_out)
        if item["status"] == "completed":
            item["result"] = base64.b64encode(self.image(size, output_format, transparent)).decode()
        else:
            item["result"] = None
        return JSONResponse(response, headers=headers_out)

    def _stream(
        self,
        response: dict[str, Any],
        partials: int,
        size: tuple[int, int],
        output_format: str,
        headers: dict[str, str],
    ) -> Response:
        item = response["output"][0]
        transparent = item["background"] == "transparent"
        started = {**response, "status": "in_progress", "output": [], "usage": None, "tool_usage": None}
        pending = {key: item[key] for key in ("type", "id")} | {"status": "in_progress", "result": None}
        where = {"output_index": 0, "item_id": item["id"]}
        planned: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {"type": "response.output_item.added", "output_index": 0, "item": pending},
            {"type": "response.image_generation_call.in_progress", **where},
            {"type": "response.image_generation_call.generating", **where},
        ]
        failed = item["status"] == "failed"
        if not failed:
            for index in range(partials):
                picture = self.image(size, output_format, transparent)
                planned.append(
                    {
                        "type": "response.image_generation_call.partial_image",
                        **where,
                        "partial_image_index": index,
                        "partial_image_b64": base64.b64encode(picture).decode(),
                        "size": item["size"],
                        "quality": item["quality"],
                        "background": item["background"],
                        "output_format": output_format,
                    }
                )
            broken = self.stream_error()
            if broken is not None:
                planned.append({"type": "error", "param": None, **broken})
                return self._events(planned, headers)
            item["result"] = base64.b64encode(self.image(size, output_format, transparent)).decode()
            planned.append({"type": "response.image_generation_call.completed", **where})
        else:
            item["result"] = None
        planned.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        planned.append({"type": "response.completed", "response": response})
        cut = self.stream_cut_after()
        return self._events(planned[:cut] if cut is not None else planned, headers)

    def _events(self, planned: list[dict[str, Any]], headers: dict[str, str]) -> Response:
        async def events() -> AsyncIterator[bytes]:
            for number, event in enumerate(planned):
                payload = {**event, "sequence_number": number}
                yield f"event: {event['type']}\ndata: {json.dumps(payload)}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    def _invalid(self, body: Any, *, azure: bool, headers: dict[str, str]) -> Response | None:
        if not isinstance(body, dict):
            return error(400, "Expected a JSON object body.", None)
        unknown = sorted(set(body) - REQUEST_FIELDS)
        if unknown:
            return error(400, f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return error(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
        if "input" not in body:
            return error(400, "Missing required parameter: 'input'.", "input", "missing_required_parameter")
        tools = body.get("tools")
        if not isinstance(tools, list) or len(tools) != 1 or not isinstance(tools[0], dict):
            return error(400, "This fake serves one image_generation tool per request.", "tools", None)
        tool = tools[0]
        for key, value in tool.items():
            where = f"tools[0].{key}"
            if key not in TOOL_VALUES:
                return error(400, f"Unknown parameter: '{where}'.", where, "unknown_parameter")
            allowed = TOOL_VALUES[key]
            if allowed is not None and value not in allowed:
                return error(400, f"Invalid value for '{where}': {value!r}.", where, None)
        mask = tool.get("input_image_mask")
        if mask is not None and (not isinstance(mask, dict) or not set(mask) <= {"image_url", "file_id"}):
            where = "tools[0].input_image_mask"
            return error(400, "input_image_mask takes image_url or file_id only.", where, None)
        if tool.get("partial_images") and not body.get("stream"):
            return error(400, "partial_images requires stream to be true.", "tools[0].partial_images", None)
        if body.get("tool_choice") not in (None, "auto", "required", {"type": "image_generation"}):
            return error(400, "Invalid tool_choice.", "tool_choice", None)
        previous = body.get("previous_response_id")
        if previous is not None and (previous not in self.made or not self.made[previous].stored):
            return error(
                400, f"Previous response with id '{previous}' not found.", "previous_response_id",
                "previous_response_not_found",
            )  # fmt: skip
        if azure and not headers.get("x-ms-oai-image-generation-deployment"):
            return error(
                400, "The image generation tool needs the x-ms-oai-image-generation-deployment header.", None,
                "missing_image_deployment",
            )  # fmt: skip
        return None

    def _size(self, tool: dict[str, Any], body: dict[str, Any], previous: Made | None) -> tuple[int, int]:
        forced = self.output_size()
        if forced is not None:
            return forced
        size = str(tool.get("size", "auto"))
        if size != "auto":
            width, _, height = size.partition("x")
            return (int(width), int(height))
        first = _first_input_image(body)
        if first is not None:
            return first
        return previous.size if previous is not None else (1024, 1024)


def _prompt(body: dict[str, Any]) -> str:
    source = body["input"]
    if isinstance(source, str):
        return source
    texts = [
        part.get("text", "")
        for message in source
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "input_text"
    ]
    return " ".join(texts)


def _first_input_image(body: dict[str, Any]) -> tuple[int, int] | None:
    """The size of the first `input_image` data URL in the input, if any."""
    source = body["input"]
    if isinstance(source, str):
        return None
    for message in source:
        for part in message.get("content", []) if isinstance(message, dict) else []:
            url = part.get("image_url") if isinstance(part, dict) else None
            if part.get("type") == "input_image" and isinstance(url, str) and url.startswith("data:"):
                data = base64.b64decode(url.split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
                    return (width, height)
    return None


def error(status: int, message: str, param: str | None, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers={"x-request-id": "req_fake_error"})


def input_images(body: dict[str, Any]) -> list[bytes]:
    """The bytes of every `input_image` data URL a request carried, in order (for tests)."""
    found = []
    for message in body.get("input", []) if isinstance(body.get("input"), list) else []:
        for part in message.get("content", []):
            if part.get("type") == "input_image":
                found.append(base64.b64decode(part["image_url"].split(",", 1)[1]))
    return found
