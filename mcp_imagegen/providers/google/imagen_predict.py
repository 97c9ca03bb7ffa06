"""The Imagen adapter: generate, edit, upscale, segment and recontext through Vertex AI's
`models/{model}:predict` (bodies and replies in `imagen.py`), on the same Google endpoint as the
Gemini adapter (`google.py`), which hands it every Imagen model on Vertex."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import httpx2

from mcp_imagegen.images import codec
from mcp_imagegen.providers._http import DEFAULT_RETRY, HttpProvider, RetryPolicy, read_json_object, send
from mcp_imagegen.providers.base import (
    SILENT,
    CallEvents,
    Capabilities,
    EditRequest,
    GenerateRequest,
    ProviderResult,
    RecontextRequest,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.providers.google import imagen
from mcp_imagegen.providers.google.endpoint import GoogleEndpoint, google_exchange


class ImagenPredict(HttpProvider):
    """Imagen models through `:predict` on one Vertex endpoint."""

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

    async def generate(self, request: GenerateRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._predict(request.model, imagen.generate_body(request), events)

    async def edit(self, request: EditRequest, events: CallEvents = SILENT) -> ProviderResult:
        mask = request.mask
        mask_png = await anyio.to_thread.run_sync(codec.white_where_transparent, mask.data) if mask else None
        return await self._predict(request.model, imagen.edit_body(request, mask_png), events)

    async def upscale(self, request: UpscaleRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._predict(request.model, imagen.upscale_body(request), events)

    async def segment(self, request: SegmentRequest, events: CallEvents = SILENT) -> ProviderResult:
        reply = await self._reply(request.model, imagen.segment_body(request), events)
        masks = imagen.read_masks(self.name, request.mode, reply)
        return ProviderResult(images=tuple(masks), model=request.model, metadata={"mode": request.mode})

    async def recontext(self, request: RecontextRequest, events: CallEvents = SILENT) -> ProviderResult:
        return await self._predict(request.model, imagen.recontext_body(request), events)

    async def _predict(self, model: str, body: dict[str, Any], events: CallEvents) -> ProviderResult:
        images, metadata = imagen.read_predictions(self.name, await self._reply(model, body, events))
        return ProviderResult(images=tuple(images), model=model, metadata=metadata)

    async def _reply(self, model: str, body: dict[str, Any], events: CallEvents) -> dict[str, Any]:
        exchange = await google_exchange(self._endpoint, model, "predict", body, self._timeout_s, self._retry)
        return read_json_object(
            await send(self._client, exchange, events), self.name, images_at="bytesBase64Encoded"
        )
