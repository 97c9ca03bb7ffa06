"""Mistral: images through an agent with the `image_generation` tool, and vision through chat
(providers.md section 4).

Generation needs Conversations: an agent that has the tool is created once per (model,
instructions, completion args) and reused (or `MISTRAL_AGENT_ID` is used as given), a
conversation is started with the prompt and streamed (SSE with `event:` lines) so progress
shows the tool running, and each `tool_file` the agent produces is downloaded from
`/v1/files/{id}/content`. The agent's words are kept with the images.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from pydantic import JsonValue

from mcp_imagegen.config import MistralSettings, Settings
from mcp_imagegen.errors import ConfigError, MalformedReplyError, ProviderError
from mcp_imagegen.providers._http import (
    DEFAULT_RETRY,
    Exchange,
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
    Provider,
    ProviderResult,
)
from mcp_imagegen.providers.model_data import LiveList, LiveModel, parse_date, shipped, today
from mcp_imagegen.providers.openai.chat import ChatEndpoint, ChatVision
from mcp_imagegen.providers.spec import (
    Probe,
    ProviderSpec,
    listed_models,
    listing,
    retry_policy,
    with_default,
)

AGENT_NAME = "mcp-imagegen image agent"
AGENT_DESCRIPTION = "Creates images with the image_generation tool for mcp-imagegen."
MAX_VISION_IMAGES = 8


def mistral_capabilities(settings: MistralSettings) -> Capabilities:
    """The models the model data lists (`providers/mistral/models.toml`), the configured ones first."""
    book, day = shipped(), today()
    models = with_default(settings.default_model, book.models("mistral", "image", day))
    vision = with_default(settings.vision_model, book.models("mistral", "text", day))
    return Capabilities(
        operations=frozenset({"generate", "edit", "describe"}),
        models=models,
        default_model=settings.default_model,
        options=frozenset(),
        max_images=4,
        max_input_images=4,
        vision_models=vision,
        operation_models={"describe": settings.vision_model},
        max_describe_images=MAX_VISION_IMAGES,
        vision_max_side=1540,
        max_describe_image_bytes=10 * 1024 * 1024,
        fetches_urls=True,
        notes=(
            "An agent with the image_generation tool draws the images (size and format are the tool's own); "
            "n images are n conversations; edits send the image with the instruction. temperature and top_p "
            "come from MISTRAL_TEMPERATURE / MISTRAL_TOP_P. Vision: up to 8 images a request."
        ),
    )


@dataclass(frozen=True)
class MistralEndpoint:
    base_url: str
    headers: Mapping[str, str]
    secrets: tuple[str, ...]


def mistral_endpoint(settings: MistralSettings) -> MistralEndpoint:
    if settings.api_key is None:
        raise ConfigError("the mistral provider needs MISTRAL_API_KEY")
    key = settings.api_key.get_secret_value()
    return MistralEndpoint(settings.base_url.rstrip("/"), {"Authorization": f"Bearer {key}"}, (key,))


class MistralImages:
    def __init__(
        self,
        settings: MistralSettings,
        client: httpx2.AsyncClient,
        capabilities: Capabilities,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._settings = settings
        self._endpoint = mistral_endpoint(settings)
        self._client = client
        self._capabilities = capabilities
        self._retry = retry
        self._agents: dict[tuple[str, str, str], str] = {}
        self._agent_lock = anyio.Lock()
        chat = ChatEndpoint(
            provider="mistral",
            base_url=f"{self._endpoint.base_url}/v1",
            headers=self._endpoint.headers,
            key_hint="MISTRAL_API_KEY",
            secrets=self._endpoint.secrets,
            stream_usage=False,  # Mistral refuses fields it does not know (422 extra_forbidden)
        )
        self._vision = ChatVision(chat, client, capabilities, settings.timeout_s, retry)

    @property
    def name(self) -> str:
        return "mistral"

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def describe(self, request: DescribeRequest, events: CallEvents = SILENT) -> DescribeResult:
        return await self._vision.describe(request, events)

    async def generate(self, request: GenerateRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._images(request, request.prompt, events)

    async def edit(self, request: EditRequest, events: CallEvents = SILENT) -> ProviderResult:
        if request.mask is not None:
            raise ProviderError(
                "mistral", "the image_generation tool takes no mask; describe the area in the prompt"
            )
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content += [
            {
                "type": "image_url",
                "image_url": f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}",
            }
            for image in request.images
        ]
        inputs = [
            {"role": "user", "content": content, "object": "entry", "type": "message.input", "prefix": False}
        ]
        return await self._images(request, inputs, events)

    async def _images(self, request: GenerateRequest, inputs: object, events: CallEvents) -> ProviderResult:
        agent_id = await self._agent(request.model, events)
        images: list[GeneratedImage] = []
        texts: list[str] = []
        usage: list[JsonValue] = []
        conversations: list[JsonValue] = []
        for _ in range(
            request.n
        ):  # one conversation per image, one after another: the tool is slow and rate-limited
            outcome = await self._conversation(agent_id, inputs, events)
            conversations.append(outcome.conversation_id)
            texts.extend(outcome.texts)
            if outcome.usage:
                usage.append(outcome.usage)
            for file_id in outcome.file_ids:
                images.append(GeneratedImage(await self._download(file_id, events)))
        if not images:
            said = f' It said: "{" ".join(texts)[:400]}"' if texts else ""
            raise ProviderError("mistral", f"the agent answered without an image.{said}")
        text = "\n\n".join(dict.fromkeys(texts)) or None  # the same words from n conversations, once
        metadata: dict[str, JsonValue] = {"agent_id": agent_id, "conversation_ids": conversations}
        if usage:
            metadata["usage"] = usage[0] if len(usage) == 1 else {"calls": usage}
        if text:
            metadata["model_text"] = text
        return ProviderResult(images=tuple(images), model=request.model, metadata=metadata, text=text)

    async def _agent(self, model: str, events: CallEvents) -> str:
        """The id of an agent with the image tool for `model`, created on first use and reused."""
        if self._settings.agent_id:
            return self._settings.agent_id
        completion_args = {
            key: value
            for key, value in (("temperature", self._settings.temperature), ("top_p", self._settings.top_p))
            if value is not None
        }
        key = (model, self._settings.instructions, json.dumps(completion_args, sort_keys=True))
        async with self._agent_lock:
            if key in self._agents:
                return self._agents[key]
            body: dict[str, Any] = {
                "model": model,
                "name": AGENT_NAME,
                "instructions": self._settings.instructions,
                "tools": [{"type": "image_generation"}],
            }
            if completion_args:
                body["completion_args"] = completion_args
            body["description"] = AGENT_DESCRIPTION
            events.step("creating the mistral image agent (once per model)")
            reply = read_json_object(
                await send(self._client, self._exchange("/v1/agents", body), events), "mistral"
            )
            agent_id = reply.get("id")
            if not isinstance(agent_id, str):
                raise MalformedReplyError("mistral created an agent but sent no id.")
            self._agents[key] = agent_id
            return agent_id

    async def _conversation(self, agent_id: str, inputs: object, events: CallEvents) -> _Conversation:
        body = {"inputs": inputs, "stream": True, "agent_id": agent_id}
        exchange = self._exchange("/v1/conversations", body, accept="text/event-stream")
        outcome = _Conversation()
        async with open_stream(self._client, exchange, events) as response:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                async for event in sse_events(response):
                    outcome.add_event(event.event, _json(event.data), events)
            else:
                await response.aread()
                outcome.add_response(read_json_object(response, "mistral"))
        return outcome

    async def _download(self, file_id: str, events: CallEvents) -> bytes:
        exchange = self._exchange(
            f"/v1/files/{file_id}/content", None, accept="application/octet-stream", method="GET"
        )
        response = await send(self._client, exchange, events)
        if not response.content:
            raise MalformedReplyError(f"mistral sent an empty file for {file_id}.")
        return response.content

    def _exchange(
        self,
        path: str,
        body: dict[str, Any] | None,
        *,
        accept: str = "application/json",
        method: str = "POST",
    ) -> Exchange:
        return Exchange(
            provider="mistral",
            url=f"{self._endpoint.base_url}{path}",
            headers={"Accept": accept, **self._endpoint.headers},
            timeout_s=self._settings.timeout_s,
            map_error=self._vision.map_error,  # Mistral's error shapes are the chat ones
            json_body=body,
            retry=self._retry,
            method="GET" if method == "GET" else "POST",
        )


class _Conversation:
    """What one conversation produced: the agent's text, the files of its tool, usage."""

    def __init__(self) -> None:
        self.conversation_id: str | None = None
        self.parts: list[str] = []
        self.file_ids: list[str] = []
        self.usage: dict[str, JsonValue] = {}

    def add_event(self, name: str, payload: dict[str, Any], events: CallEvents) -> None:
        kind = name or str(payload.get("type", ""))
        if kind == "conversation.response.started":
            self.conversation_id = payload.get("conversation_id")
        elif kind == "tool.execution.started":
            events.step(f"mistral is running its {payload.get('name', 'tool')} tool")
        elif kind == "tool.execution.done":
            events.step(f"mistral's {payload.get('name', 'tool')} tool finished")
        elif kind == "message.output.delta":
            self._add_content(payload.get("content"))
        elif kind == "conversation.response.done":
            self.usage = payload.get("usage") or {}
        elif kind == "conversation.response.error":
            raise ProviderError(
                "mistral",
                str(payload.get("message", "the conversation failed")),
                code=str(payload.get("code")),
            )

    def add_response(self, body: dict[str, Any]) -> None:
        """A whole ConversationResponse (a server that ignored `stream`)."""
        self.conversation_id = body.get("conversation_id")
        self.usage = body.get("usage") or {}
        for entry in body.get("outputs") or []:
            if isinstance(entry, dict) and entry.get("type") == "message.output":
                content = entry.get("content")
                for chunk in content if isinstance(content, list) else [content]:
                    self._add_content(chunk)

    def _add_content(self, content: object) -> None:
        if isinstance(content, str):
            self._append_text(content)
        elif isinstance(content, dict):
            if content.get("type") == "tool_file" and isinstance(content.get("file_id"), str):
                self.file_ids.append(content["file_id"])
            elif content.get("type") == "text" and isinstance(content.get("text"), str):
                self._append_text(content["text"])

    def _append_text(self, text: str) -> None:
        self.parts.append(text)

    @property
    def texts(self) -> list[str]:
        """The agent's words (its text deltas joined), if it said anything."""
        text = "".join(self.parts).strip()
        return [text] if text else []


def _json(data: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        raise MalformedReplyError("mistral sent a stream event that is not JSON.") from None
    return parsed if isinstance(parsed, dict) else {}


def _build(settings: Settings, client: httpx2.AsyncClient) -> Provider:
    return MistralImages(
        settings.mistral, client, mistral_capabilities(settings.mistral), retry_policy(settings)
    )


async def _probe(settings: Settings) -> Probe:
    endpoint = mistral_endpoint(settings.mistral)
    return Probe(f"{endpoint.base_url}/v1/models", dict(endpoint.headers))


async def _live(settings: Settings, client: httpx2.AsyncClient) -> LiveList:
    """`GET /v1/models`: each model with its `deprecation` date and `deprecation_replacement_model`."""
    probe = await _probe(settings)
    models = []
    for entry in listed_models(await listing(client, "mistral", probe)):
        replacement = entry.get("deprecation_replacement_model")
        models.append(
            LiveModel(
                entry["id"],
                parse_date(entry.get("deprecation")),
                replacement if isinstance(replacement, str) else None,
            )
        )
    return LiveList("mistral", probe.url, tuple(models))


SPEC = ProviderSpec(
    name="mistral",
    title="Mistral: images from an agent with the image_generation tool, and vision chat",
    env_vars=("MISTRAL_API_KEY",),
    enable_hint="MISTRAL_API_KEY for Mistral",
    is_configured=lambda settings: settings.mistral.api_key is not None,
    build=_build,
    capabilities=lambda settings: mistral_capabilities(settings.mistral),
    probe=_probe,
    live_models=_live,
)
