"""Serving over HTTP: Streamable HTTP at `/mcp`, or the older SSE transport at `/sse`.

Both apps get `GET /health` and a request-body limit raised from the SDK's 4 MiB so that
edits can carry base64 images. Host/Origin checks (DNS-rebinding protection) are the
SDK's defaults for loopback binds.
"""

from __future__ import annotations

from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_imagegen import __version__
from mcp_imagegen.config import Settings
from mcp_imagegen.server.app import ImagegenServer

HttpTransport = Literal["http", "sse"]
MCP_PATH = "/mcp"


def http_app(server: ImagegenServer, settings: Settings, transport: HttpTransport, host: str) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "server": "mcp-imagegen", "version": __version__})

    server.custom_route("/health", methods=["GET"])(health)
    if transport == "sse":
        return server.sse_app(max_request_body_size=settings.http_max_body_bytes, host=host)
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH, max_request_body_size=settings.http_max_body_bytes, host=host
    )


async def serve_http(
    server: ImagegenServer, settings: Settings, transport: HttpTransport, host: str, port: int
) -> None:
    """Run uvicorn with our logging (stderr), not uvicorn's own configuration."""
    import uvicorn

    app = http_app(server, settings, transport, host)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=settings.log_level.lower())
    await uvicorn.Server(config).serve()
