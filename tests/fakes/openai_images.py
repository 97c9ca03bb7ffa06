"""A loopback fake of the OpenAI Images API and its Azure URL shapes (providers.md sections 1, 2, 5, 6).

It records every request byte for byte, validates requests the way the real service does
(unknown fields, missing prompt or image, bad auth, bad mask), and answers with an
`ImagesResponse` holding real encoded images, or, for `stream=true`, with the SSE events
of section 1.5 (partial images, then one completed event per image). Tests steer it
through plain attributes: `output_size` to force the size of returned images,
`fail_next` to inject error replies, `delay_s` to make it slow, `stream_cut_after` to end
a stream early. `disconnects` lists the requests whose client went away before the
answer was complete. The official `openai` SDK is run against it in
`tests/test_fake_openai_sdk.py`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_responses import FakeResponses

GENERATION_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "background",
        "complexity",
        "frame_count",
        "frame_duration_ms",
        "moderation",
        "n",
        "output_compression",
        "output_format",
        "partial_images",
        "quality",
        "response_format",
        "safety_identifier",
        "size",
        "stream",
        "style",
        "svg",
        "user",
    }
)
EDIT_FIELDS = frozenset(
    {
        "prompt",
        "background",
        "complexity",
        "frame_count",
        "frame_duration_ms",
        "input_fidelity",
        "model",
        "n",
        "output_compression",
        "output_format",
        "partial_images",
        "quality",
        "response_format",
        "safety_identifier",
        "size",
        "stream",
        "user",
    }
)
EDIT_FILES = frozenset({"image", "image[]", "mask", "markup"})
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@dataclass(frozen=True)
class Part:
    """One multipart part exactly as received."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes
    raw_headers: bytes


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: dict[str, Any] | None = None
    parts: list[Part] | None = None

    def fields(self) -> dict[str, str]:
        """Non-file multipart fields, in order."""
        return {part.name: part.data.decode() for part in self.parts or [] if part.filename is None}

    def files(self) -> list[Part]:
        return [part for part in self.parts or [] if part.filename is not None]


LISTED: dict[str, str | Literal[False] | None] = {
    "gpt-image-2.6-sunburst": None,
    "gpt-image-2.6-flare": None,
    "gpt-image-2.5-sunburst": False,
    "gpt-image-2.5-flare": None,
    "gpt-image-2": "2027-02-10",
    "gpt-image-2-2026-04-21": "2027-02-10",
    "gpt-6.1-terra": None,
    "gpt-6-luna": None,
    "gpt-5-mini": "2026-12-11",
    "gpt-4o": "2027-01-14",
}
"""What OpenAI's list holds on 2026-12-07 (models-2026-12.md section 3): the image models shut down
on 2026-12-01 are gone from it."""


@dataclass
class FakeOpenAIImages:
    """State and behaviour of the fake; `app` is the ASGI app to serve on loopback."""

    api_key: str = "sk-test-key"
    url: str = ""
    """Set by the fixture that serves the fake: `http://127.0.0.1:PORT`."""
    azure_key: str = "azure-test-key"
    requests: list[Recorded] = field(default_factory=list)
    output_size: tuple[int, int] | None = None
    fail_next: list[tuple[int, Any]] = field(default_factory=list)
    """Replies to send instead of a success: (status, JSON body, raw bytes or a whole Response)."""
    delay_s: float = 0.0
    images_sent: list[bytes] = field(default_factory=list)
    """Every image the fake answered with, in order, as bytes."""
    """Seconds before the answer; a stream spreads them over its events."""
    stream_cut_after: int | None = None
    """End streams after this many events, as a server that breaks off would."""
    stream_error: dict[str, Any] | None = None
    """Send this `error` object as a stream event after the partial images, instead of the final image."""
    disconnects: list[str] = field(default_factory=list)
    """Paths of requests whose client closed the connection before the answer was complete."""
    in_flight: int = 0
    max_in_flight: int = 0
    """The most non-streamed requests the fake was answering at once."""
    listed: dict[str, str | Literal[False] | None] = field(default_factory=lambda: dict(LISTED))
    """`GET /v1/models`: each model and its `shutdown_date` (False: the field is absent)."""
    list_delay_s: float = 0.0
    gone: set[str] = field(default_factory=set)
    """Models answered as the service answers a shut-down one: 404 `model_not_found`."""
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.chat = FakeChat(api_key=self.api_key)
        self.responses = FakeResponses(
            image=self._image,
            output_size=lambda: self.output_size,
            stream_cut_after=lambda: self.stream_cut_after,
            stream_error=lambda: self.stream_error,
        )
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/images/{operation}", self._openai, methods=["POST"]),
                Route(
                    "/openai/deployments/{deployment}/images/{operation}",
                    self._azure_classic,
                    methods=["POST"],
                ),
                Route("/openai/v1/images/{operation}", self._azure_v1, methods=["POST"]),
                Route("/v1/responses", self._openai_responses, methods=["POST"]),
                Route("/openai/v1/responses", self._azure_responses, methods=["POST"]),
                Route("/openai/responses", self._azure_responses, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        """`GET /v1/models`: what `doctor --check` asks for, and `models check` reads (each model's
        `shutdown_date`: a date, null, or absent, which the service treats alike)."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        await anyio.sleep(self.list_delay_s)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": model,
                        "object": "model",
                        "created": 1_760_000_000,
                        "owned_by": "system",
                        **({"shutdown_date": shutdown} if shutdown is not False else {}),
                    }
                    for model, shutdown in self.listed.items()
                ],
            }
        )

    async def _chat(self, request: Request) -> Response:
        """Chat completions, as served next to the images API (describe_image)."""
        return await self.chat.handle(request, json.loads(await request.body()))

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def _openai(self, request: Request) -> Response:
        recorded = await self._record(request)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(
                401, "Incorrect API key provided: sk-te***key.", "invalid_request_error", "invalid_api_key"
            )
        return await self._handle(request, recorded, request.path_params["operation"])

    async def _azure_classic(self, request: Request) -> Response:
        recorded = await self._record(request)
        if "api-version" not in request.query_params:
            return _error(404, "Resource not found", "invalid_request_error", "404")
        if not self._azure_authorized(request):
            return _error(
                401, "Access denied due to invalid subscription key.", "invalid_request_error", "401"
            )
        return await self._handle(request, recorded, request.path_params["operation"])

    async def _azure_v1(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not self._azure_authorized(request):
            return _error(
                401, "Access denied due to invalid subscription key.", "invalid_request_error", "401"
            )
        return await self._handle(request, recorded, request.path_params["operation"])

    async def _openai_responses(self, request: Request) -> Response:
        recorded = await self._record(request)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(
                401, "Incorrect API key provided: sk-te***key.", "invalid_request_error", "invalid_api_key"
            )
        return self._respond(recorded, azure=False)

    async def _azure_responses(self, request: Request) -> Response:
        """`/openai/v1/responses`, or `/openai/responses` with the classic `api-version`."""
        recorded = await self._record(request)
        if request.url.path == "/openai/responses" and "api-version" not in request.query_params:
            return _error(404, "Resource not found", "invalid_request_error", "404")
        if not self._azure_authorized(request):
            return _error(
                401, "Access denied due to invalid subscription key.", "invalid_request_error", "401"
            )
        return self._respond(recorded, azure=True)

    def _respond(self, recorded: Recorded, *, azure: bool) -> Response:
        if self.fail_next:
            status, reply = self.fail_next.pop(0)
            return reply if isinstance(reply, Response) else JSONResponse(reply, status_code=status)
        if recorded.json is None:
            return _error(400, "Expected a JSON body.", "invalid_request_error", None)
        return self.responses.handle(recorded.json, azure=azure, headers=recorded.headers)

    def _azure_authorized(self, request: Request) -> bool:
        return request.headers.get("api-key") == self.azure_key or (
            request.headers.get("authorization") == f"Bearer {self.azure_key}"
        )

    async def _record(self, request: Request) -> Recorded:
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        parsed_json = json.loads(body) if content_type.startswith("application/json") and body else None
        parts = (
            parse_multipart(body, content_type) if content_type.startswith("multipart/form-data") else None
        )
        recorded = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body,
            json=parsed_json,
            parts=parts,
        )
        self.requests.append(recorded)
        return recorded

    async def _handle(self, request: Request, recorded: Recorded, operation: str) -> Response:
        if self.fail_next:
            status, reply = self.fail_next.pop(0)
            if isinstance(reply, Response):
                return reply
            if isinstance(reply, bytes):
                return Response(reply, status_code=status, media_type="application/json")
            return JSONResponse(reply, status_code=status, headers={"x-request-id": "req_fake_error"})
        answer: Response | tuple[dict[str, Any], tuple[int, int] | None]
        if operation == "generations":
            answer = self._generations(recorded)
        elif operation == "edits":
            answer = self._edits(recorded)
        else:
            return _error(404, f"Invalid URL (POST /v1/images/{operation})", "invalid_request_error", None)
        if isinstance(answer, Response):
            return answer
        params, input_size = answer
        if params.get("model") in self.gone:
            model = params["model"]
            message = f"The model `{model}` does not exist or you do not have access to it."
            return _error(404, message, "invalid_request_error", "model_not_found")
        if str(params.get("stream", "false")).lower() == "true":
            return self._stream(request, params, input_size, operation)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s and await self._client_left(request, self.delay_s):
                self.disconnects.append(request.url.path)
                return Response(status_code=499)
            return self._images_response(params, input_size)
        finally:
            self.in_flight -= 1

    async def _client_left(self, request: Request, seconds: float) -> bool:
        """Wait `seconds`, watching the connection; whether the client closed it meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return True
            await anyio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        return False

    def _stream(
        self, request: Request, params: dict[str, Any], input_size: tuple[int, int] | None, operation: str
    ) -> Response:
        """Section 1.5: per image, `partial_images` partial events then one completed event."""
        prefix = "image_generation" if operation == "generations" else "image_edit"
        partials = int(params.get("partial_images", 0))
        count = int(params.get("n", 1))
        size = self._size(params, input_size)
        output_format = str(params.get("output_format", "png"))
        transparent = params.get("background") == "transparent"
        pause = self.delay_s / max(1, count * (partials + 1))
        facts = {
            "background": "transparent" if transparent else "opaque",
            "created_at": int(time.time()),
            "output_format": output_format,
            "quality": str(params.get("quality", "high")),
            "size": f"{size[0]}x{size[1]}",
        }
        planned: list[dict[str, Any]] = []
        for _ in range(count):
            for index in range(partials):
                planned.append({"type": f"{prefix}.partial_image", "partial_image_index": index, **facts})
            if self.stream_error is not None:
                planned.append({"type": "error", "error": self.stream_error})
                break
            planned.append({"type": f"{prefix}.completed", **facts, "usage": _usage(1)})
        if self.stream_cut_after is not None:
            planned = planned[: self.stream_cut_after]

        async def events() -> AsyncIterator[bytes]:
            finished = False
            try:
                for plan in planned:
                    if pause and await self._client_left(request, pause):
                        return
                    event = dict(plan)
                    if "error" not in event:
                        image = self._image(size, output_format, transparent)
                        event["b64_json"] = base64.b64encode(image).decode()
                    yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                finished = True
            finally:
                if not finished:
                    self.disconnects.append(request.url.path)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"x-request-id": f"req_fake_{next(self._counter)}"},
        )

    def _generations(self, recorded: Recorded) -> Response | tuple[dict[str, Any], None]:
        body = recorded.json
        if body is None:
            return _error(400, "Expected a JSON body.", "invalid_request_error", None)
        unknown = sorted(set(body) - GENERATION_FIELDS)
        if unknown:
            return _error(
                400, f"Unrecognized request argument supplied: {unknown[0]}", "invalid_request_error", None
            )
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return _error(400, "Missing required parameter: 'prompt'.", "invalid_request_error", None)
        return _streaming_checked(body) or (body, None)

    def _edits(self, recorded: Recorded) -> Response | tuple[dict[str, Any], tuple[int, int]]:
        if recorded.parts is None:
            return _error(400, "Expected multipart/form-data.", "invalid_request_error", None)
        fields = recorded.fields()
        names = {part.name for part in recorded.parts}
        unknown = sorted(names - EDIT_FIELDS - EDIT_FILES)
        if unknown:
            return _error(
                400, f"Unrecognized request argument supplied: {unknown[0]}", "invalid_request_error", None
            )
        if not fields.get("prompt"):
            return _error(400, "Missing required parameter: 'prompt'.", "invalid_request_error", None)
        images = [part for part in recorded.files() if part.name in ("image", "image[]")]
        if not images:
            return _error(400, "Missing required parameter: 'image'.", "invalid_request_error", None)
        first = _open(images[0].data)
        if first is None:
            return _error(
                400,
                "Invalid input image - format must be in ['png', 'jpeg', 'webp'].",
                "invalid_request_error",
                None,
            )
        masks = [part for part in recorded.files() if part.name == "mask"]
        if masks:
            mask = _open(masks[0].data)
            if mask is None or mask.format != "PNG" or "A" not in mask.getbands():
                return _error(
                    400,
                    "Invalid mask image: must be a PNG with an alpha channel.",
                    "invalid_request_error",
                    "invalid_mask",
                )
            if mask.size != first.size:
                return _error(
                    400,
                    "Invalid mask image: the mask and the image must have the same dimensions.",
                    "invalid_request_error",
                    "invalid_mask",
                )
        return _streaming_checked(dict(fields)) or (dict(fields), first.size)

    def _size(self, params: dict[str, Any], input_size: tuple[int, int] | None) -> tuple[int, int]:
        size_text = str(params.get("size", "auto"))
        if self.output_size is not None:
            return self.output_size
        if size_text != "auto":
            width, _, height = size_text.partition("x")
            return (int(width), int(height))
        return input_size or (1024, 1024)

    def _images_response(self, params: dict[str, Any], input_size: tuple[int, int] | None) -> Response:
        count = int(params.get("n", 1))
        output_format = str(params.get("output_format", "png"))
        size = self._size(params, input_size)
        transparent = params.get("background") == "transparent"
        data = [
            {"b64_json": base64.b64encode(self._image(size, output_format, transparent)).decode()}
            for _ in range(count)
        ]
        reply = {
            "created": int(time.time()),
            "data": data,
            "background": "transparent" if transparent else "opaque",
            "output_format": output_format,
            "quality": str(params.get("quality", "high")),
            "size": f"{size[0]}x{size[1]}",
            "usage": _usage(count),
        }
        return JSONResponse(reply, headers={"x-request-id": f"req_fake_{next(self._counter)}"})

    def _image(self, size: tuple[int, int], output_format: str, transparent: bool) -> bytes:
        """A distinct image per call; large sizes get texture so they do not compress to nothing."""
        index = next(self._counter)
        colour = (40 + index * 37 % 200, 80 + index * 53 % 150, 120 + index * 71 % 120)
        mode = "RGBA" if transparent and output_format != "jpeg" else "RGB"
        image = Image.new(mode, size, (*colour, 0) if mode == "RGBA" else colour)
        draw = ImageDraw.Draw(image)
        draw.ellipse(
            (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(250, 250, 250, 255)
        )
        if max(size) > 2048:
            noise = Image.effect_noise((size[0] // 4, size[1] // 4), 40).convert(mode)
            image.paste(noise, (0, 0))
        buffer = io.BytesIO()
        image.save(buffer, format=PIL_FORMAT.get(output_format, "PNG"))
        self.images_sent.append(buffer.getvalue())
        return buffer.getvalue()


def _usage(count: int) -> dict[str, Any]:
    return {
        "total_tokens": 100 * count + 50,
        "input_tokens": 50,
        "output_tokens": 100 * count,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
        "output_tokens_details": {"text_tokens": 0, "image_tokens": 100 * count},
    }


def _streaming_checked(params: dict[str, Any]) -> JSONResponse | None:
    """The service's rules for `stream` and `partial_images` (0-3, and only when streaming)."""
    partials = params.get("partial_images")
    if partials is None:
        return None
    try:
        count = int(partials)
    except (TypeError, ValueError):
        count = -1
    if not 0 <= count <= 3:
        return _error(400, "partial_images must be between 0 and 3.", "invalid_request_error", None)
    if str(params.get("stream", "false")).lower() != "true":
        return _error(400, "partial_images requires stream to be true.", "invalid_request_error", None)
    return None


def _error(status: int, message: str, error_type: str, code: str | None) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers={"x-request-id": "req_fake_error"})


def _open(data: bytes) -> Image.Image | None:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        return None
    return image


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """A strict multipart/form-data parser that keeps part order and raw headers."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    delimiter = b"--" + boundary
    chunks = body.split(delimiter)
    if chunks[0] not in (b"", b"\r\n") or not chunks[-1].startswith(b"--"):
        raise ValueError("malformed multipart body")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        raw_headers, _, data = chunk[2:-2].partition(b"\r\n\r\n")
        headers = {}
        for line in raw_headers.split(b"\r\n"):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = dict(_disposition_params(disposition))
        parts.append(
            Part(params["name"], params.get("filename"), headers.get("content-type"), data, raw_headers)
        )
    return parts


def _disposition_params(disposition: str) -> list[tuple[str, str]]:
    items = []
    for item in disposition.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        items.append((key, value.strip('"')))
    return items
