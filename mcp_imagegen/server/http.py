"""Serving over HTTP: Streamable HTTP at `/mcp`, or the older SSE transport at `/sse`.

What a remote server adds to the local one:
- authentication (static bearer tokens or OAuth access tokens, `server.auth`), with the
  protected-resource metadata served at `/.well-known/oauth-protected-resource/...`;
- Host/Origin checks against DNS rebinding: the SDK's loopback defaults, plus the hosts and
  origins the user lists (`IMAGEGEN_ALLOWED_HOSTS`, `IMAGEGEN_ALLOWED_ORIGINS`);
- a request-body limit raised from the SDK's 4 MiB so edits can carry base64 images, with
  a 413 that says what the limit is and what to do instead;
- `GET /healthz` (and `/health`), unauthenticated and saying nothing but "ok".
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import INVALID_REQUEST
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ConfigError, ImageNotFoundError
from mcp_imagegen.redaction import remember, remembered
from mcp_imagegen.server.app import ImagegenServer
from mcp_imagegen.server.auth import (
    JwtVerifier,
    StaticToken,
    StaticTokenVerifier,
    parse_token,
    read_token_file,
)
from mcp_imagegen.server.limits import refusal
from mcp_imagegen.server.links import FILES_PATH
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.tools.arguments import MAX_ARGUMENT_VALUES

logger = logging.getLogger(__name__)

HttpTransport = Literal["http", "sse"]
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


@dataclass(frozen=True)
class RemoteAuth:
    verifier: TokenVerifier
    settings: AuthSettings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_url(settings: Settings, transport: HttpTransport, host: str, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "::") else host)  # noqa: S104
    return f"http://{shown}:{port}{MCP_PATH if transport == 'http' else SSE_PATH}"


MIN_TOKEN_LENGTH = 16
"""Shorter static tokens are refused on a server listening beyond loopback, warned about on it."""


def remote_auth(settings: Settings, resource: str, host: str) -> RemoteAuth | None:
    """The verifier and SDK auth settings the configuration asks for, or None for no auth; static
    tokens shorter than `MIN_TOKEN_LENGTH` are refused when `host` is beyond loopback."""
    scopes = list(settings.auth_required_scopes)
    if settings.auth_issuer:
        issuer = settings.auth_issuer.rstrip("/")
        verifier: TokenVerifier = JwtVerifier(
            issuer=settings.auth_issuer,
            audience=settings.auth_audience or resource,
            jwks_url=settings.auth_jwks_url or f"{issuer}/.well-known/jwks.json",
        )
    else:
        tokens = [
            parse_token(token.get_secret_value(), "IMAGEGEN_AUTH_TOKENS") for token in settings.auth_tokens
        ]
        if settings.auth_tokens_file is not None:
            tokens += read_token_file(settings.auth_tokens_file)
        if not tokens:
            return None
        remember(token.token for token in tokens)  # the tokens file's too: scrubbed from every log line
        _check_lengths(tokens, host)
        verifier = StaticTokenVerifier(tokens, scopes=scopes, resource=resource)
        issuer = resource  # no authorization server: static tokens are handed out by hand
    try:
        auth = AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(resource),
            required_scopes=scopes or None,
            validate_token_resource=True,
        )
    except ValueError as exc:
        raise ConfigError(
            f"invalid auth settings (IMAGEGEN_AUTH_ISSUER / IMAGEGEN_PUBLIC_URL): {exc}"
        ) from None
    return RemoteAuth(verifier, auth)


def _check_lengths(tokens: list[StaticToken], host: str) -> None:
    short = sorted({token.name for token in tokens if len(token.token) < MIN_TOKEN_LENGTH})
    if not short:
        return
    said = (
        f"the auth token(s) of {', '.join(repr(name) for name in short)} are shorter than "
        f"{MIN_TOKEN_LENGTH} characters, which can be guessed; make each one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    )
    if not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host}: {said}")
    logger.warning("%s (accepted on loopback only)", said)


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings | None:
    """Loopback hosts and origins always, plus the configured ones; None (off) for a
    non-loopback bind with nothing configured, where no Host can be known to be right."""
    if not settings.allowed_hosts and not settings.allowed_origins:
        if is_loopback(host):
            return TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=LOOPBACK_HOSTS,
                allowed_origins=LOOPBACK_ORIGINS,
            )
        logger.warning(
            "Host/Origin checks are off: set IMAGEGEN_ALLOWED_HOSTS (and IMAGEGEN_ALLOWED_ORIGINS) to the "
            "names clients use to reach this server"
        )
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*LOOPBACK_HOSTS, *settings.allowed_hosts],
        allowed_origins=[*LOOPBACK_ORIGINS, *settings.allowed_origins],
    )


CREDENTIAL_PARAMETERS = frozenset(
    {"access_token", "token", "auth", "authorization", "bearer", "api_key", "apikey", "api-key", "key"}
)
"""Query parameters that carry a credential by name (RFC 6750's `access_token` among them)."""


class NoTokenInUrl:
    """Refuse a request that carries a credential in its URL (a parameter named like one, or any
    secret the server knows), with a 400 that says to use the Authorization header. A URL is
    written to access logs, proxies and browser history, so such a token is never accepted (and
    the access log line is scrubbed like every other)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("query_string")
            and _carries_credential(scope["query_string"])
        ):
            await _refuse(
                send,
                400,
                "A token was sent in the URL. Send it only in the Authorization header "
                "(Authorization: Bearer <token>); a URL is kept in logs and histories, so replace "
                "that token. This request was refused.",
            )
            return
        await self._app(scope, receive, send)


def _carries_credential(query_string: bytes) -> bool:
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if any(name.lower() in CREDENTIAL_PARAMETERS for name, _ in pairs):
        return True
    values = [value for _, value in pairs]
    # Secrets of 8 characters and more: a shorter one would refuse ordinary words.
    return any(secret in value for secret in remembered() if len(secret) >= 8 for value in values)


class BodyLimit:
    """Refuse a request whose declared body is over the limit with a 413 that explains it.

    (The SDK enforces the same limit on bodies without a length, with a terser message.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self._max_bytes:
                message = (
                    f"Request body too large: {int(declared):,} bytes, over this server's limit of "
                    f"{self._max_bytes:,} (IMAGEGEN_HTTP_MAX_BODY_BYTES). Pass images as imagegen:// URIs, "
                    "file paths or URLs instead of base64."
                )
                await _refuse(send, 413, message, close=True)
                return
        await self._app(scope, receive, send)


DOOR_BODY_BYTES = 64 * 1024
"""Request bodies larger than this (and those of unknown length) are looked at before the SDK
parses them (whole, on the event loop, where every other request waits): far above any call with
text arguments only, so what it stops is a call carrying image data, or one built to be expensive
to parse."""
MAX_SEPARATORS = 2 * MAX_ARGUMENT_VALUES + 30_000
"""Commas and colons in a large body, in strings or not: a valid call has at most two per value
(`MAX_ARGUMENT_VALUES`) plus those of its text; base64 has none. A body with more is refused
unread: its parse alone would stall the server (100,000 names take about 80 ms)."""


class LargeBodies:
    """Look at a large request before it is parsed: refused unread, with a 429 and `Retry-After`,
    while its sender is over the rate limit for provider calls (what it carries could only be
    refused after parsing); refused with a 400 when it holds more JSON separators than any valid
    call. Runs after authentication, so the sender is known; smaller requests (listing, polling,
    reading) pass straight through, and the tools still count and check every call."""

    def __init__(self, app: ASGIApp, server: ImagegenServer) -> None:
        self._app = app
        self._server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._server.current
        if scope["type"] != "http" or scope["method"] != "POST" or state is None:
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) <= DOOR_BODY_BYTES:
            await self._app(scope, receive, send)
            return
        wait_s = await state.rate_limiter.wait_s(current_principal().name)
        if wait_s > 0:
            said = refusal(state.settings.rate_limit_per_minute or 0, wait_s)
            await _refuse(
                send,
                429,
                f"{said}. Requests over {DOOR_BODY_BYTES // 1024} KiB are refused unread until then.",
                close=True,
                headers=[(b"retry-after", str(max(1, math.ceil(wait_s))).encode())],
            )
            return
        messages, body = await _read_body(receive)
        separators = body.count(b",") + body.count(b":")
        if separators > MAX_SEPARATORS:
            await _refuse(
                send,
                400,
                f"Request refused unread: it holds {separators:,} commas and colons, more than any valid "
                f"call ({MAX_SEPARATORS:,}). Send at most {MAX_ARGUMENT_VALUES:,} values, and images "
                "as base64, imagegen:// URIs, file paths or URLs.",
            )
            return
        await self._app(scope, _replay(messages, receive), send)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    """The request's body messages, read whole (the SDK reads it whole next), and their bytes."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return messages, b"".join(message.get("body", b"") for message in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands out `messages` again, then whatever comes next (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _refuse(
    send: Send, status: int, message: str, *, close: bool = False, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer without reading the request's body, with a JSON-RPC error (id null: the request was
    not parsed) that MCP clients show as the call's error, and any HTTP client can read."""
    extra = [*headers, *([(b"connection", b"close")] if close else [])]
    error = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *extra],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(error).encode()})


async def download(server: ImagegenServer, request: Request) -> Response:
    """`GET /files/{id}?expires=…&signature=…`: the full-size image behind a signed link from a
    result. The signature is the authorisation (no bearer token), and it covers that one id."""
    state = server.current
    if state is None or state.links is None:
        return PlainTextResponse("downloads are off: the server has no IMAGEGEN_PUBLIC_URL", status_code=404)
    image_id = request.path_params["image_id"]
    query = request.query_params
    refused = state.links.signer.check(image_id, query.get("expires", ""), query.get("signature", ""))
    if refused is not None:
        return PlainTextResponse(refused, status_code=403)
    try:
        image = await state.store.get(image_id, owner=None)
    except ImageNotFoundError:
        return PlainTextResponse("this image is no longer in the store", status_code=404)
    headers = {"Cache-Control": "private, max-age=300"}
    if image.path is None:  # an object store: its own presigned URL serves the bytes
        presigned = state.store.download_url(image, state.links.signer.ttl_s)
        if presigned is None:
            return PlainTextResponse("this store cannot serve downloads", status_code=404)
        return RedirectResponse(presigned, status_code=307, headers=headers)
    return FileResponse(
        image.path,
        media_type=image.mime_type,
        filename=image.name,
        content_disposition_type="inline",
        headers=headers,
    )


def http_app(server: ImagegenServer, settings: Settings, transport: HttpTransport, host: str) -> ASGIApp:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    for path in ("/healthz", "/health"):
        server.custom_route(path, methods=["GET"])(health)
    server.custom_route(FILES_PATH + "{image_id}", methods=["GET"])(functools.partial(download, server))
    security = transport_security(settings, host)
    app: Starlette
    if transport == "sse":
        app = server.sse_app(
            max_request_body_size=settings.http_max_body_bytes, transport_security=security, host=host
        )
    else:
        app = server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            # Replicas on a shared store answer any request: no session lives in one process.
            stateless_http=settings.store_url is not None,
            max_request_body_size=settings.http_max_body_bytes,
            transport_security=security,
            host=host,
        )
    # Innermost, so after the SDK's authentication: the sender of a large body is known.
    app.user_middleware.append(Middleware(LargeBodies, server=server))
    return BodyLimit(NoTokenInUrl(app), settings.http_max_body_bytes)


async def serve_http(
    server: ImagegenServer, settings: Settings, transport: HttpTransport, host: str, port: int
) -> None:
    """Run uvicorn with our logging (stderr), not uvicorn's own configuration."""
    import uvicorn

    app = http_app(server, settings, transport, host)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=settings.log_level.lower())
    await uvicorn.Server(config).serve()
