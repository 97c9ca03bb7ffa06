"""A loopback fake of OpenAI-style `chat/completions` with vision (providers.md 1, 4.6, 5).

It serves any path ending in `/chat/completions`, so the same fake stands in for OpenAI
(`/v1/...`), Azure (`/openai/v1/...`, `/openai/deployments/{d}/...`) and Scaleway
(`/v1/...` and `/{project_id}/v1/...`). It checks the bearer key, counts the images of the
request against `max_images` (Scaleway refuses a 13th with a 400), answers in one JSON body
or as an SSE stream ending with `data: [DONE]`, and, for a `json_schema` response format,
answers with `structured_answer` as JSON. The official openai SDK runs against it in
`tests/test_fake_chat_sdk.py`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class ChatRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: dict[str, Any]

    def image_sizes(self) -> list[tuple[int, int]]:
        """The size of every data-URI image in the user message, in order."""
        sizes = []
        for message in self.json["messages"]:
            for part in message["content"] if isinstance(message["content"], list) else []:
                if part.get("type") == "image_url":
                    url = (
                        part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                    )
                    data = base64.b64decode(url.split(",", 1)[1])
                    with Image.open(io.BytesIO(data)) as opened:
                        sizes.append(opened.size)
        return sizes


@dataclass
class FakeChat:
    api_key: str = "sk-chat-test-key"
    url: str = ""
    answer: str = "Two red squares on a white background."
    structured_answer: Any = field(default_factory=lambda: {"objects": ["square", "square"], "count": 2})
    max_images: int = 12
    usage_every_chunk: bool = False
    """Scaleway style: cumulative usage on every chunk instead of a final usage chunk."""
    error_shape: str = "openai"
    """`openai` ({"error": {...}}) or `legacy` ({"object": "error", ...}: older Scaleway models, Mistral)."""
    chunk_delay_s: float = 0.0
    """Pause between streamed chunks, as a model writing its answer."""
    answer_tokens: int | None = None
    """The tokens the model would write (and bill) when not capped; None: one per word of the answer."""
    requests: list[ChatRequest] = field(default_factory=list)
    listed: list[str] = field(
        default_factory=lambda: ["mistral-small-3.2-24b-instruct-2506", "gemma-3-27b-it", "qwen3.5-397b-a17b"]
    )
    """`GET .../models` (Scaleway's serverless models, 2026-12)."""
    list_delay_s: float = 0.0
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/{prefix:path}/chat/completions", self._chat, methods=["POST"]),
                Route("/{prefix:path}/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        """`GET .../models` as an OpenAI-style chat server lists them (Scaleway: ids, no lifecycle)."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        await anyio.sleep(self.list_delay_s)
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": model, "object": "model", "owned_by": "scaleway"} for model in self.listed],
            }
        )

    @property
    def last(self) -> ChatRequest:
        return self.requests[-1]

    async def _chat(self, request: Request) -> Response:
        return await self.handle(request, json.loads(await request.body()))

    async def handle(self, request: Request, body: dict[str, Any]) -> Response:
        """Answer one chat request whose JSON body has been read (other fakes reuse this)."""
        recorded = ChatRequest(
            path=request.url.path,
            query=dict(request.query_params),
            headers={key.lower(): value for key, value in request.headers.items()},
            json=body,
        )
        self.requests.append(recorded)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or "model" not in body:
            return self._error(400, "messages and model are required.", "invalid_request_error", None)
        images = sum(
            1
            for message in messages
            for part in (message.get("content") if isinstance(message.get("content"), list) else [])
            if part.get("type") == "image_url"
        )
        if images > self.max_images:
            return self._error(
                400, f"Too many images: at most {self.max_images} per request.", "invalid_request_error", 400
            )
        wants_json = (body.get("response_format") or {}).get("type") == "json_schema"
        text = json.dumps(self.structured_answer) if wants_json else self.answer
        usage = {"prompt_tokens": 50 + 85 * images, "completion_tokens": len(text.split()), "total_tokens": 0}
        if self.answer_tokens is not None:  # a long answer, billed up to the cap the request sets
            cap = body.get("max_completion_tokens", body.get("max_tokens"))
            usage["completion_tokens"] = (
                self.answer_tokens if cap is None else min(self.answer_tokens, int(cap))
            )
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion_id = f"chatcmpl-{next(self._counter)}"
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage", False)
            return StreamingResponse(
                self._chunks(completion_id, body["model"], text, usage, include_usage),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": usage,
            }
        )

    async def _chunks(
        self, completion_id: str, model: str, text: str, usage: dict[str, int], include_usage: bool
    ) -> AsyncIterator[bytes]:
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else f" {word}"
            chunk: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}
                ],
            }
            if self.usage_every_chunk:
                chunk["usage"] = {**usage, "completion_tokens": index + 1}
            if self.chunk_delay_s:
                await anyio.sleep(self.chunk_delay_s)
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        final: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
        }
        if self.usage_every_chunk:
            final["usage"] = usage
        yield f"data: {json.dumps(final)}\n\n".encode()
        if include_usage:
            usage_chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
            }
            yield f"data: {json.dumps({**usage_chunk, 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def _error(self, status: int, message: str, error_type: str, code: object) -> JSONResponse:
        if self.error_shape == "legacy":
            body: dict[str, Any] = {
                "object": "error",
                "message": message,
                "type": error_type,
                "param": None,
                "code": code,
            }
        else:
            body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        return JSONResponse(body, status_code=status)
