"""A loopback fake of Google's image APIs on both hosts (providers.md section 3).

Gemini API paths `/{version}/models/{model}:{method}` with `x-goog-api-key`, and Vertex paths
`/{version}/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}` with a bearer
token. `generateContent` answers with a text part and an image part (or, steered, a blocked
prompt, a blocked image, a text-only answer); `streamGenerateContent?alt=sse` sends the same
as one SSE event. Requests are recorded; both spellings the SDK and the REST docs use
(`mime_type`/`mimeType`) are accepted. The official google-genai SDK runs against it in
`tests/test_fake_google_sdk.py`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import anyio
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ASPECT_SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
SIZE_SCALE = {"1K": 1, "2K": 2, "4K": 4}
SEGMENT_MODES = ("FOREGROUND", "BACKGROUND", "PROMPT", "SEMANTIC", "INTERACTIVE")
EDIT_MODES = (
    "EDIT_MODE_DEFAULT",
    "EDIT_MODE_INPAINT_REMOVAL",
    "EDIT_MODE_INPAINT_INSERTION",
    "EDIT_MODE_OUTPAINT",
    "EDIT_MODE_CONTROLLED_EDITING",
    "EDIT_MODE_STYLE",
    "EDIT_MODE_BGSWAP",
    "EDIT_MODE_PRODUCT_IMAGE",
)
REFERENCE_TYPES = (
    "REFERENCE_TYPE_RAW",
    "REFERENCE_TYPE_MASK",
    "REFERENCE_TYPE_CONTROL",
    "REFERENCE_TYPE_STYLE",
    "REFERENCE_TYPE_SUBJECT",
    "REFERENCE_TYPE_CONTENT",
)


@dataclass(frozen=True)
class GoogleRequest:
    backend: str
    """`gemini` or `vertex`."""
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: dict[str, Any]
    model: str
    method: str


LISTED = (
    "gemini-nano-banana-2.1",
    "gemini-3-pro-image",
    "gemini-3.1-flash-lite-image",
    "gemini-2.5-flash-image",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-pro",
    "gemini-embedding-001",
)
"""The Gemini API's `models.list` after Google retired gemini-3.1-flash-image and Imagen."""


@dataclass
class FakeGoogle:
    api_key: str = "AIza-fake-test-key-0123456789"
    access_token: str = "ya29.fake-test-token"
    project: str = "test-project"
    url: str = ""
    requests: list[GoogleRequest] = field(default_factory=list)
    block_prompt: str | None = None
    """Answer generateContent with `promptFeedback.blockReason` and no candidates."""
    finish_reason: str | None = None
    """Answer generateContent with this finish reason and no image."""
    text_only: str | None = None
    """Answer generateContent with this text and no image."""
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    describe_answer: str = "A red box on a white floor."
    """The answer to a text question about images (no IMAGE modality asked for)."""
    structured_answer: Any = field(default_factory=lambda: {"objects": ["box"], "count": 1})
    filtered: int = 0
    """Imagen: replace this many of the images asked for by `raiFilteredReason` entries."""
    scale_down: int = 4
    """Make images this many times smaller than the real service would, to keep tests fast."""
    listed: list[str] = field(default_factory=lambda: list(LISTED))
    """`models.list` on the Gemini API."""
    vertex_gone: set[str] = field(default_factory=set)
    """Vertex publisher models that answer 404."""
    list_delay_s: float = 0.0
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/{version}/models", self._list_models, methods=["GET"]),
                Route("/{version}/models/{target}", self._gemini, methods=["POST"]),
                Route(
                    "/{version}/projects/{project}/locations/{location}/publishers/google/models/{target}",
                    self._vertex,
                    methods=["POST"],
                ),
                Route(
                    "/{version}/projects/{project}/locations/{location}/publishers/google/models/{target}",
                    self._vertex_model,
                    methods=["GET"],
                ),
            ]
        )

    @property
    def last(self) -> GoogleRequest:
        return self.requests[-1]

    async def _list_models(self, request: Request) -> Response:
        """`models.list`, in pages of `pageSize` (default 50) with `nextPageToken`, as the service
        pages it; no lifecycle fields (python-genai's `Model` has none)."""
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        await anyio.sleep(self.list_delay_s)
        size = int(request.query_params.get("pageSize", "50"))
        start = int(request.query_params.get("pageToken") or 0)
        page = self.listed[start : start + size]
        body: dict[str, Any] = {
            "models": [
                {"name": f"models/{name}", "supportedGenerationMethods": ["generateContent", "countTokens"]}
                for name in page
            ]
        }
        if start + size < len(self.listed):
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def _vertex_model(self, request: Request) -> Response:
        """A publisher model by name: 404 for one Google removed (`vertex_gone`)."""
        await anyio.sleep(self.list_delay_s)
        target = request.path_params["target"]
        if target in self.vertex_gone:
            return _error(404, f"Publisher Model `{target}` not found.", "NOT_FOUND")
        return JSONResponse({"name": f"publishers/google/models/{target}", "launchStage": "GA"})

    async def _gemini(self, request: Request) -> Response:
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        return await self._handle(request, "gemini")

    async def _vertex(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if request.path_params["project"] != self.project:
            return _error(
                403, f"Permission denied on project {request.path_params['project']}.", "PERMISSION_DENIED"
            )
        return await self._handle(request, "vertex")

    async def _handle(self, request: Request, backend: str) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        self.requests.append(
            GoogleRequest(
                backend=backend,
                path=request.url.path,
                query=dict(request.query_params),
                headers={key.lower(): value for key, value in request.headers.items()},
                json=body,
                model=model,
                method=method,
            )
        )
        if self.fail_next:
            status, reply = self.fail_next.pop(0)
            return JSONResponse(reply, status_code=status)
        if method == "generateContent":
            return self._generate_content(body, backend)
        if method == "predict":
            return self._predict(body, backend)
        if method == "streamGenerateContent":
            answer = self._generate_content(body, backend)
            return Response(b"data: " + bytes(answer.body) + b"\r\n\r\n", media_type="text/event-stream")
        return _error(404, f"Method {method} not found for {model}.", "NOT_FOUND")

    def _generate_content(self, body: dict[str, Any], backend: str) -> JSONResponse:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return _error(
                400, "* GenerateContentRequest.contents: contents is not specified", "INVALID_ARGUMENT"
            )
        config = body.get("generationConfig", {})
        image_config = config.get("imageConfig", {})
        if backend == "gemini":
            for vertex_only in ("personGeneration", "imageOutputOptions"):
                if vertex_only in image_config:
                    return _error(
                        400,
                        f"Unknown name \"{vertex_only}\" at 'generation_config.image_config'",
                        "INVALID_ARGUMENT",
                    )
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
        if self.block_prompt:
            return JSONResponse(
                {"promptFeedback": {"blockReason": self.block_prompt}, "usageMetadata": usage}
            )
        wants_image = "IMAGE" in [str(item).upper() for item in config.get("responseModalities", ["TEXT"])]
        if wants_image:
            text = self.text_only or "Here is the image you asked for."
        elif config.get("responseMimeType") == "application/json":
            text = json.dumps(self.structured_answer)
        else:
            text = self.describe_answer
        parts: list[dict[str, Any]] = [{"text": text}]
        finish = self.finish_reason or "STOP"
        if wants_image and not self.text_only and not self.finish_reason:
            inputs = [
                _inline(part) for content in contents for part in content.get("parts", []) if _inline(part)
            ]
            size = self._output_size(image_config, inputs[0] if inputs else None)
            output_format = image_config.get("imageOutputOptions", {}).get("mimeType", "image/png")
            image = self._image(size, "JPEG" if output_format == "image/jpeg" else "PNG")
            parts.append(
                {"inlineData": {"mimeType": output_format, "data": base64.b64encode(image).decode()}}
            )
        reply = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": usage,
            "modelVersion": "gemini-fake-001",
            "responseId": f"resp-{next(self._counter)}",
        }
        return JSONResponse(reply)

    def _predict(self, body: dict[str, Any], backend: str) -> JSONResponse:
        instances = body.get("instances")
        parameters = body.get("parameters", {})
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            return _error(400, "instances must hold exactly one instance.", "INVALID_ARGUMENT")
        instance = instances[0]
        if parameters.get("mode") == "upscale":
            return self._upscale(instance, parameters)
        if str(parameters.get("mode", "")).upper() in SEGMENT_MODES:
            return self._segment(instance, parameters)
        if "productImages" in instance:
            return self._recontext(instance, parameters)
        if "referenceImages" in instance:
            return self._edit(instance, parameters)
        if not isinstance(instance.get("prompt"), str) or not instance["prompt"]:
            return _error(400, "Prompt is required.", "INVALID_ARGUMENT")
        if "seed" in parameters and parameters.get("addWatermark", True):
            return _error(400, "Seed is not supported when watermark is enabled.", "INVALID_ARGUMENT")
        count = int(parameters.get("sampleCount", 1))
        if not 1 <= count <= 4:
            return _error(400, "sampleCount must be between 1 and 4.", "INVALID_ARGUMENT")
        width, height = ASPECT_SIZES.get(str(parameters.get("aspectRatio", "1:1")), (1024, 1024))
        scale = SIZE_SCALE.get(str(parameters.get("sampleImageSize", "1K")), 1)
        size = (width * scale // self.scale_down, height * scale // self.scale_down)
        mime = parameters.get("outputOptions", {}).get("mimeType", "image/png")
        predictions: list[dict[str, Any]] = []
        for index in range(count):
            if index < self.filtered:
                if parameters.get("includeRaiReason"):
                    predictions.append({"raiFilteredReason": "56562880: the image may depict violence."})
                continue
            image = self._image(size, "JPEG" if mime == "image/jpeg" else "PNG")
            entry: dict[str, Any] = {"bytesBase64Encoded": base64.b64encode(image).decode(), "mimeType": mime}
            if parameters.get("includeSafetyAttributes"):
                entry["safetyAttributes"] = {"categories": ["Violence"], "scores": [0.1]}
            if parameters.get("enhancePrompt") and backend == "vertex":
                entry["prompt"] = f"{instance['prompt']}, golden hour, detailed"
            predictions.append(entry)
        if parameters.get("includeSafetyAttributes"):
            predictions.append(
                {"safetyAttributes": {"categories": [], "scores": []}, "contentType": "Positive Prompt"}
            )
        return JSONResponse({"predictions": predictions} if predictions else {})

    def _upscale(self, instance: dict[str, Any], parameters: dict[str, Any]) -> JSONResponse:
        source = _image_field(instance.get("image"))
        factor = parameters.get("upscaleConfig", {}).get("upscaleFactor")
        if source is None or factor not in ("x2", "x4"):
            return _error(400, "An image and upscaleFactor x2 or x4 are required.", "INVALID_ARGUMENT")
        with Image.open(io.BytesIO(source)) as opened:
            multiple = int(factor[1])
            size = (opened.width * multiple, opened.height * multiple)
        mime = parameters.get("outputOptions", {}).get("mimeType", "image/png")
        image = self._image(size, "JPEG" if mime == "image/jpeg" else "PNG")
        return JSONResponse(
            {"predictions": [{"bytesBase64Encoded": base64.b64encode(image).decode(), "mimeType": mime}]}
        )

    def _segment(self, instance: dict[str, Any], parameters: dict[str, Any]) -> JSONResponse:
        mode = str(parameters["mode"]).upper()
        source = _image_field(instance.get("image"))
        if source is None:
            return _error(400, "An image is required.", "INVALID_ARGUMENT")
        if mode in ("PROMPT", "SEMANTIC") and not instance.get("prompt"):
            return _error(400, f"A prompt is required for {mode} mode.", "INVALID_ARGUMENT")
        if mode == "INTERACTIVE" and _image_field(instance.get("scribble", {}).get("image")) is None:
            return _error(400, "A scribble image is required for INTERACTIVE mode.", "INVALID_ARGUMENT")
        with Image.open(io.BytesIO(source)) as opened:
            size = opened.size
        labels = [part.strip() for part in str(instance.get("prompt", "")).split(",") if part.strip()]
        if mode in {"FOREGROUND", "BACKGROUND", "INTERACTIVE"}:
            labels = [mode.lower()]
        limit = int(parameters.get("maxPredictions", len(labels)))
        threshold = float(parameters.get("confidenceThreshold", 0))
        predictions: list[dict[str, Any]] = []
        for index, label in enumerate(labels[:limit]):
            score = round(0.98 - index * 0.1, 2)
            if score < threshold:
                continue
            mask = Image.new("L", size, 0)
            ImageDraw.Draw(mask).rectangle(
                (size[0] // 4, size[1] // 4, size[0] * 3 // 4 - index, size[1] * 3 // 4), fill=255
            )
            buffer = io.BytesIO()
            mask.save(buffer, format="PNG")
            predictions.append(
                {
                    "bytesBase64Encoded": base64.b64encode(buffer.getvalue()).decode(),
                    "mimeType": "image/png",
                    "labels": [{"label": label, "score": score}],
                }
            )
        return JSONResponse({"predictions": predictions} if predictions else {})

    def _edit(self, instance: dict[str, Any], parameters: dict[str, Any]) -> JSONResponse:
        references = instance["referenceImages"]
        if not isinstance(references, list) or not references:
            return _error(400, "referenceImages must not be empty.", "INVALID_ARGUMENT")
        if "aspectRatio" in parameters and any(
            r.get("referenceType") == "REFERENCE_TYPE_MASK" for r in references
        ):
            return _error(400, "aspect_ratio is not supported for mask editing.", "INVALID_ARGUMENT")
        edit_mode = parameters.get("editMode")
        if edit_mode is not None and edit_mode not in EDIT_MODES:
            return _error(400, f"Invalid editMode {edit_mode}.", "INVALID_ARGUMENT")
        first = _image_field(references[0].get("referenceImage"))
        if first is None:
            return _error(400, "The first reference needs an image.", "INVALID_ARGUMENT")
        with Image.open(io.BytesIO(first)) as opened:
            size = opened.size
        for reference in references:
            kind = reference.get("referenceType")
            if kind not in REFERENCE_TYPES:
                return _error(400, f"Invalid referenceType {kind}.", "INVALID_ARGUMENT")
            if kind == "REFERENCE_TYPE_MASK":
                mode = reference.get("maskImageConfig", {}).get("maskMode")
                mask = _image_field(reference.get("referenceImage"))
                if (mode == "MASK_MODE_USER_PROVIDED") != (mask is not None):
                    return _error(
                        400, "A user-provided mask needs a mask image, and only it.", "INVALID_ARGUMENT"
                    )
                if mask is not None:
                    with Image.open(io.BytesIO(mask)) as opened_mask:
                        if opened_mask.size != size:
                            return _error(400, "The mask must be the size of the image.", "INVALID_ARGUMENT")
        mime = parameters.get("outputOptions", {}).get("mimeType", "image/png")
        predictions = []
        for _ in range(int(parameters.get("sampleCount", 1))):
            image = self._image(size, "JPEG" if mime == "image/jpeg" else "PNG")
            predictions.append({"bytesBase64Encoded": base64.b64encode(image).decode(), "mimeType": mime})
        return JSONResponse({"predictions": predictions})

    def _recontext(self, instance: dict[str, Any], parameters: dict[str, Any]) -> JSONResponse:
        products = instance.get("productImages")
        if not isinstance(products, list) or not 1 <= len(products) <= 3:
            return _error(400, "1 to 3 product images are required.", "INVALID_ARGUMENT")
        if any(_image_field(product.get("image")) is None for product in products):
            return _error(400, "Each product image needs bytesBase64Encoded.", "INVALID_ARGUMENT")
        mime = parameters.get("outputOptions", {}).get("mimeType", "image/png")
        predictions = []
        for _ in range(int(parameters.get("sampleCount", 1))):
            image = self._image(
                (1024 // self.scale_down, 1024 // self.scale_down), "JPEG" if mime == "image/jpeg" else "PNG"
            )
            predictions.append({"bytesBase64Encoded": base64.b64encode(image).decode(), "mimeType": mime})
        return JSONResponse({"predictions": predictions})

    def _output_size(self, image_config: dict[str, Any], first_input: bytes | None) -> tuple[int, int]:
        if first_input is not None and "aspectRatio" not in image_config:
            with Image.open(io.BytesIO(first_input)) as opened:
                width, height = opened.size
                return (width, height)
        width, height = ASPECT_SIZES.get(str(image_config.get("aspectRatio", "1:1")), (1024, 1024))
        scale = SIZE_SCALE.get(str(image_config.get("imageSize", "1K")), 1)
        return (width * scale // self.scale_down, height * scale // self.scale_down)

    def _image(self, size: tuple[int, int], pil_format: str) -> bytes:
        index = next(self._counter)
        image = Image.new("RGB", size, (30 + index * 41 % 200, 90, 150))
        ImageDraw.Draw(image).rectangle(
            (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(240, 240, 0)
        )
        buffer = io.BytesIO()
        image.save(buffer, format=pil_format)
        return buffer.getvalue()


def _image_field(value: object) -> bytes | None:
    """`{"bytesBase64Encoded": ..., "mimeType": ...}` as bytes (either base64 alphabet)."""
    if not isinstance(value, dict) or not isinstance(value.get("bytesBase64Encoded"), str):
        return None
    return decode_b64(value["bytesBase64Encoded"])


def _inline(part: dict[str, Any]) -> bytes | None:
    inline = part.get("inlineData") or part.get("inline_data")
    if not isinstance(inline, dict):
        return None
    if not (inline.get("mimeType") or inline.get("mime_type")):
        return None
    return decode_b64(str(inline["data"]))


def decode_b64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not: the SDK writes URL-safe, REST users standard."""
    standard = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)


def _error(status: int, message: str, status_name: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": status, "message": message, "status": status_name}}, status_code=status
    )
