"""A loopback fake of Mistral's agents, conversations, files and chat APIs (providers.md section 4).

Like the service it refuses unknown fields with a 422 `extra_forbidden`, answers agents with
every field the mistralai 3.7 SDK requires, streams conversations as SSE with `event:` lines
(no `[DONE]`), serves files as `application/octet-stream`, and keeps the images its
`image_generation` tool "made" so they can be downloaded. Chat completions are served by the
OpenAI-style chat fake behind Mistral's strict validation. The official mistralai SDK runs
against it in `tests/test_fake_mistral_sdk.py`.
"""

from __future__ import annotations

import io
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.openai_chat import FakeChat

AGENT_FIELDS = frozenset(
    {
        "model",
        "name",
        "instructions",
        "tools",
        "completion_args",
        "guardrails",
        "description",
        "handoffs",
        "metadata",
        "version_message",
    }
)
CONVERSATION_FIELDS = frozenset(
    {
        "inputs",
        "stream",
        "store",
        "handoff_execution",
        "instructions",
        "tools",
        "completion_args",
        "guardrails",
        "name",
        "description",
        "metadata",
        "agent_id",
        "agent_version",
        "model",
    }
)
CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
        "metadata",
        "guardrails",
        "reasoning_effort",
    }
)
NOW = "2026-11-21T10:00:00.000000Z"


@dataclass(frozen=True)
class MistralRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any]
    """The JSON body ({} for a GET)."""


@dataclass
class FakeMistral:
    api_key: str = "mistral-test-key-0123456789"
    url: str = ""
    agent_text: str = "Here is your image: an orange cat in an office."
    images_per_conversation: int = 1
    requests: list[MistralRequest] = field(default_factory=list)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    chat: FakeChat = field(default_factory=FakeChat)
    listed: dict[str, tuple[str, str | None] | None] = field(
        default_factory=lambda: {
            "mistral-medium-latest": None,
            "mistral-large-latest": None,
            "mistral-medium-2508": None,
            "mistral-small-2506": None,
            "mistral-large-2512": None,
            "pixtral-12b-2409": None,
            "mistral-medium-3.5": ("2026-12-14T00:00:00Z", "mistral-large-4"),
        }
    )
    """`GET /v1/models`: each model and its (deprecation, replacement), or None."""
    list_delay_s: float = 0.0
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.chat.api_key = self.api_key
        self.app = Starlette(
            routes=[
                Route("/v1/agents", self._create_agent, methods=["POST"]),
                Route("/v1/conversations", self._start_conversation, methods=["POST"]),
                Route("/v1/files/{file_id}/content", self._download, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        """`GET /v1/models` as Mistral lists them: `deprecation` (a timestamp or null) and
        `deprecation_replacement_model` per model, with its capabilities."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"detail": "Unauthorized"}, status_code=401)
        await anyio.sleep(self.list_delay_s)
        data = [
            {
                "id": model,
                "object": "model",
                "owned_by": "mistralai",
                "capabilities": {"completion_chat": True, "vision": True},
                "deprecation": deprecation[0] if deprecation else None,
                "deprecation_replacement_model": deprecation[1] if deprecation else None,
            }
            for model, deprecation in self.listed.items()
        ]
        return JSONResponse({"object": "list", "data": data})

    def of(self, path: str) -> list[MistralRequest]:
        return [request for request in self.requests if request.path.startswith(path)]

    async def _record(self, request: Request) -> tuple[MistralRequest, Response | None]:
        body = await request.body()
        recorded = MistralRequest(
            request.method,
            request.url.path,
            {key.lower(): value for key, value in request.headers.items()},
            json.loads(body) if body else {},
        )
        self.requests.append(recorded)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return recorded, JSONResponse({"detail": "Unauthorized"}, status_code=401)
        return recorded, None

    async def _create_agent(self, request: Request) -> Response:
        recorded, refused = await self._record(request)
        if refused:
            return refused
        body = recorded.json
        problem = _strict(body, AGENT_FIELDS, required=("model", "name"))
        if problem:
            return problem
        agent_id = f"ag_{next(self._counter):032x}"
        agent = {
            "model": body["model"],
            "name": body["name"],
            "description": body.get("description"),
            "id": agent_id,
            "version": 0,
            "versions": [0],
            "created_at": NOW,
            "updated_at": NOW,
            "deployment_chat": False,
            "source": "api",
            "instructions": body.get("instructions"),
            "tools": body.get("tools", []),
            "completion_args": {
                "temperature": None,
                "top_p": None,
                "tool_choice": "auto",
                **body.get("completion_args", {}),
            },
            "handoffs": None,
            "object": "agent",
        }
        self.agents[agent_id] = agent
        return JSONResponse(agent)

    async def _start_conversation(self, request: Request) -> Response:
        recorded, refused = await self._record(request)
        if refused:
            return refused
        body = recorded.json
        problem = _strict(body, CONVERSATION_FIELDS, required=("inputs",))
        if problem:
            return problem
        agent = self.agents.get(str(body.get("agent_id")))
        if agent is None and "model" not in body:
            return JSONResponse({"detail": f"Agent {body.get('agent_id')} not found."}, status_code=404)
        tools = (agent or body).get("tools") or []
        file_ids = []
        if any(tool.get("type") == "image_generation" for tool in tools):
            for _ in range(self.images_per_conversation):
                file_id = str(uuid.uuid4())
                self.files[file_id] = self._image()
                file_ids.append(file_id)
        conversation_id = f"conv_{next(self._counter):032x}"
        if body.get("stream"):
            return StreamingResponse(self._events(conversation_id, file_ids), media_type="text/event-stream")
        content: list[dict[str, Any]] = [{"text": self.agent_text, "type": "text"}]
        content += [_tool_file(file_id, index) for index, file_id in enumerate(file_ids)]
        return JSONResponse(
            {
                "conversation_id": conversation_id,
                "outputs": [
                    {
                        "name": "image_generation",
                        "arguments": "{}",
                        "object": "entry",
                        "type": "tool.execution",
                        "created_at": NOW,
                        "completed_at": NOW,
                        "id": "tool_exec_1",
                        "info": {},
                    },
                    {
                        "content": content,
                        "object": "entry",
                        "type": "message.output",
                        "created_at": NOW,
                        "completed_at": NOW,
                        "id": "msg_1",
                        "agent_id": body.get("agent_id"),
                        "model": "mistral-medium-latest",
                        "role": "assistant",
                    },
                ],
                "usage": _usage(),
                "object": "conversation.response",
            }
        )

    async def _events(self, conversation_id: str, file_ids: list[str]) -> AsyncIterator[bytes]:
        def event(name: str, payload: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n".encode()

        yield event("conversation.response.started", {"conversation_id": conversation_id, "created_at": NOW})
        yield event(
            "tool.execution.started",
            {"id": "t1", "name": "image_generation", "arguments": "{}", "output_index": 0},
        )
        yield event("tool.execution.done", {"id": "t1", "name": "image_generation", "output_index": 0})
        for index, word in enumerate(self.agent_text.split(" ")):
            piece = word if index == 0 else f" {word}"
            yield event(
                "message.output.delta",
                {"id": "m1", "content": piece, "output_index": 1, "content_index": 0, "role": "assistant"},
            )
        for index, file_id in enumerate(file_ids):
            yield event(
                "message.output.delta",
                {
                    "id": "m1",
                    "content": _tool_file(file_id, index),
                    "output_index": 1,
                    "content_index": index + 1,
                    "role": "assistant",
                },
            )
        yield event("conversation.response.done", {"usage": _usage()})

    async def _download(self, request: Request) -> Response:
        _, refused = await self._record(request)
        if refused:
            return refused
        data = self.files.get(request.path_params["file_id"])
        if data is None:
            return JSONResponse({"detail": "File not found."}, status_code=404)
        return Response(data, media_type="application/octet-stream")

    async def _chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        problem = _strict(body, CHAT_FIELDS, required=("model", "messages"))
        if problem:
            self.requests.append(MistralRequest("POST", request.url.path, dict(request.headers), body))
            return problem
        self.requests.append(MistralRequest("POST", request.url.path, dict(request.headers), body))
        return await self.chat.handle(request, body)

    def _image(self) -> bytes:
        index = next(self._counter)
        image = Image.new("RGB", (256, 256), (200, 120 + index * 17 % 100, 40))
        ImageDraw.Draw(image).ellipse((64, 64, 192, 192), fill=(250, 250, 250))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def _tool_file(file_id: str, index: int) -> dict[str, Any]:
    return {
        "tool": "image_generation",
        "file_id": file_id,
        "type": "tool_file",
        "file_name": f"image_generated_{index}",
        "file_type": "png",
    }


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 129,
        "total_tokens": 292,
        "completion_tokens": 94,
        "connector_tokens": 69,
        "connectors": {"image_generation": 1},
    }


def _strict(
    body: dict[str, Any], allowed: frozenset[str], *, required: tuple[str, ...]
) -> JSONResponse | None:
    """Mistral's validation: a 422 for unknown or missing fields, the message wrapping `detail`."""
    details = [
        {
            "type": "extra_forbidden",
            "loc": ["body", name],
            "msg": "Extra inputs are not permitted",
            "input": body[name],
        }
        for name in body
        if name not in allowed
    ]
    details += [
        {"type": "missing", "loc": ["body", name], "msg": "Field required"}
        for name in required
        if name not in body
    ]
    if not details:
        return None
    return JSONResponse(
        {
            "object": "error",
            "message": {"detail": details},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
        status_code=422,
    )
