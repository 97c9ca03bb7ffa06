"""Vision through OpenAI-style `chat/completions`: OpenAI, Azure OpenAI, Scaleway, Mistral and any
compatible server (vLLM, Ollama, LM Studio). providers.md 1, 4.6 and 5.

One user message carries the question and each image as an `image_url` part (a data URI,
in the object form every server accepts). The answer is streamed so that progress can
show it arriving; a server that ignores `stream` and answers with one JSON body works
too. With a response schema the answer must be JSON that validates against it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx2
from pydantic import JsonValue

from mcp_imagegen.errors import (
    ContentPolicyError,
    InputError,
    MalformedReplyError,
    ProviderError,
)
from mcp_imagegen.providers._http import (
    DEFAULT_RETRY,
    Exchange,
    HttpProvider,
    RetryPolicy,
    json_error_body,
    open_stream,
    read_json_object,
    retry_after_seconds,
    sse_events,
)
from mcp_imagegen.providers.base import (
    SILENT,
    CallEvents,
    Capabilities,
    DescribeRequest,
    DescribeResult,
    InputImage,
)
from mcp_imagegen.redaction import redact

if TYPE_CHECKING:
    from mcp_imagegen.providers.openai.endpoint import ImagesEndpoint

PROGRESS_EVERY_S = 0.75
CONTENT_FILTER_FINISH = frozenset({"content_filter"})


@dataclass(frozen=True)
class ChatEndpoint:
    """Where one OpenAI-style chat API lives and what it accepts."""

    provider: str
    base_url: str
    """Up to and including the version segment, e.g. `https://api.openai.com/v1`."""
    headers: Mapping[str, str]
    key_hint: str
    params: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    stream_usage: bool = True
    """Send `stream_options.include_usage` (servers with strict validation, like Mistral, refuse it)."""
    deployment_path: bool = False
    """Azure classic: `/deployments/{model}/chat/completions`."""

    def url(self, model: str) -> str:
        base = self.base_url.rstrip("/")
        return (
            f"{base}/deployments/{model}/chat/completions"
            if self.deployment_path
            else f"{base}/chat/completions"
        )


def chat_endpoint_for(
    images: ImagesEndpoint, *, max_tokens_field: Literal["max_tokens", "max_completion_tokens"]
) -> ChatEndpoint:
    """The chat API next to an OpenAI-style images API: same host, version, auth and query."""
    return ChatEndpoint(
        provider=images.provider,
        base_url=images.base_url,
        headers=images.headers,
        key_hint=images.key_hint,
        params=images.params,
        secrets=images.secrets,
        max_tokens_field=max_tokens_field,
        deployment_path=images.deployment_path,
    )


class ChatVision(HttpProvider):
    """`describe` on one chat endpoint."""

    def __init__(
        self,
        endpoint: ChatEndpoint,
        client: httpx2.AsyncClient,
        capabilities: Capabilities,
        timeout_s: float,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(endpoint.provider, client, capabilities, timeout_s, retry)
        self._endpoint = endpoint

    async def describe(self, request: DescribeRequest, events: CallEvents = SILENT) -> DescribeResult:
        exchange = Exchange(
            provider=self.name,
            url=self._endpoint.url(request.model),
            headers={"Accept": "application/json", **self._endpoint.headers},
            timeout_s=self._timeout_s,
            map_error=self.map_error,
            params=self._endpoint.params,
            json_body=self._body(request),
            retry=self._retry,
        )
        answer = _Answer(self.name, events)
        async with open_stream(self._client, exchange, events) as response:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                async for event in sse_events(response):
                    answer.add_chunk(_json(self.name, event.data))
            else:
                await response.aread()
                answer.add_whole(read_json_object(response, self.name))
        return answer.result(request)

    def _body(self, request: DescribeRequest) -> dict[str, Any]:
        """Keys in the openai SDK's order: model, stream, messages, then the rest sorted."""
        content: list[dict[str, Any]] = [{"type": "text", "text": request.question}]
        for image in request.images:
            url: dict[str, Any] = {"url": image if isinstance(image, str) else _data_uri(image)}
            if request.detail is not None:
                url["detail"] = request.detail
            content.append({"type": "image_url", "image_url": url})
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": content})
        rest: dict[str, Any] = {}
        if request.max_tokens is not None:
            rest[self._endpoint.max_tokens_field] = request.max_tokens
        if request.response_schema is not None:
            rest["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.response_schema, "strict": False},
            }
        if self._endpoint.stream_usage:
            rest["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            rest["temperature"] = request.temperature
        if request.top_p is not None:
            rest["top_p"] = request.top_p
        return {"model": request.model, "stream": True, "messages": messages, **dict(sorted(rest.items()))}

    def map_error(self, response: httpx2.Response) -> ProviderError:
        """OpenAI's `{"error": {...}}`, Mistral's and Scaleway's `{"object": "error", "message": ...}`."""
        body = json_error_body(response) or {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, dict):  # Mistral nests validation details under message
            message = json.dumps(message)
        text = redact(
            str(message) if message else (response.reason_phrase or "error"), self._endpoint.secrets
        )
        code = error.get("code") if isinstance(error, dict) else None
        if response.status_code in (401, 403):
            text = f"{text} (check {self._endpoint.key_hint})"
        if code in ("content_filter", "content_policy_violation"):
            return ContentPolicyError(self.name, text, status=response.status_code, code=str(code))
        return ProviderError(
            self.name,
            text,
            status=response.status_code,
            code=str(code) if code is not None else None,
            retry_after=retry_after_seconds(response),
        )


class _Answer:
    """The answer as it arrives: text deltas, the finish reason, usage; progress as it grows."""

    def __init__(self, provider: str, events: CallEvents) -> None:
        self._provider = provider
        self._events = events
        self._parts: list[str] = []
        self._finish: str | None = None
        self._usage: dict[str, JsonValue] = {}
        self._model: str | None = None
        self._reported_at = time.monotonic()

    def add_chunk(self, chunk: dict[str, Any]) -> None:
        _raise_if_error(self._provider, chunk)
        self._model = chunk.get("model") or self._model
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]  # cumulative on servers that send it on every chunk
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self._parts.append(delta["content"])
            self._finish = choice.get("finish_reason") or self._finish
        if time.monotonic() - self._reported_at >= PROGRESS_EVERY_S and self._parts:
            self._reported_at = time.monotonic()
            text = "".join(self._parts)
            tail = text[-60:].replace("\n", " ")
            self._events.step(f"{self._provider} is answering ({len(text)} characters so far): …{tail}")

    def add_whole(self, body: dict[str, Any]) -> None:
        _raise_if_error(self._provider, body)
        self._model = body.get("model") or self._model
        if isinstance(body.get("usage"), dict):
            self._usage = body["usage"]
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise MalformedReplyError(f"{self._provider} answered without any choice.")
        message = choices[0].get("message") or {}
        content = message.get("content")
        if isinstance(content, list):  # Mistral may answer with chunks
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        self._parts.append(content if isinstance(content, str) else "")
        self._finish = choices[0].get("finish_reason")

    def result(self, request: DescribeRequest) -> DescribeResult:
        text = "".join(self._parts).strip()
        if self._finish in CONTENT_FILTER_FINISH:
            raise ContentPolicyError(
                self._provider, "the answer was withheld by the provider's content filter"
            )
        if not text:
            raise MalformedReplyError(
                f"{self._provider} answered with no text (finish reason {self._finish or 'none'})."
            )
        structured = structured_answer(self._provider, text, request.response_schema)
        return DescribeResult(
            text=text,
            model=self._model or request.model,
            structured=structured,
            usage=self._usage,
            finish_reason=self._finish,
        )


def structured_answer(provider: str, text: str, schema: dict[str, JsonValue] | None) -> JsonValue:
    """The answer parsed as JSON and validated against `schema` (None without a schema)."""
    if schema is None:
        return None
    candidate = text.strip()
    if candidate.startswith("```"):  # some models fence JSON even when asked for JSON
        candidate = candidate.strip("`").removeprefix("json").strip()
    try:
        parsed: JsonValue = json.loads(candidate)
    except ValueError:
        raise ProviderError(
            provider, f"the answer is not JSON, though a response_schema was given: {text[:200]!r}"
        ) from None
    import jsonschema  # ~40 ms: loaded only when an answer must follow a schema

    try:
        jsonschema.validate(parsed, schema)
    except jsonschema.ValidationError as exc:
        raise ProviderError(provider, f"the answer does not match response_schema: {exc.message}") from None
    return parsed


def check_schema(schema: dict[str, JsonValue]) -> None:
    """Refuse a response_schema that is not a valid JSON schema, before any request."""
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InputError(f"response_schema is not a valid JSON schema: {exc.message}") from None


def _data_uri(image: InputImage) -> str:
    return f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}"


def _raise_if_error(provider: str, body: dict[str, Any]) -> None:
    """Errors that arrive inside a 200 reply or stream (Scaleway: 5xx may come mid-stream)."""
    error = body.get("error")
    if isinstance(error, dict) or body.get("object") == "error":
        details = error if isinstance(error, dict) else body
        raise ProviderError(provider, f"error in the answer stream: {details.get('message', 'unknown')}")


def _json(provider: str, data: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        raise MalformedReplyError(f"{provider} sent a stream event that is not JSON.") from None
    return parsed if isinstance(parsed, dict) else {}
