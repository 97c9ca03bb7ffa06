"""`build_server(settings)`: the MCP server, its lifespan and its store-backed resources."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
from mcp.server import MCPServer
from mcp.server.apps import client_supports_apps
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    InputRequiredResult,
    ListResourcesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ResourceTemplate,
)
from pydantic import AnyUrl

from mcp_imagegen import __version__
from mcp_imagegen.config import Settings
from mcp_imagegen.errors import InputError, StoreError
from mcp_imagegen.images import codec
from mcp_imagegen.images.fetch import UrlFetcher
from mcp_imagegen.images.inputs import ReferenceReader
from mcp_imagegen.providers.lazy_transport import LazyTransport
from mcp_imagegen.providers.registry import ProviderRegistry
from mcp_imagegen.server import resources
from mcp_imagegen.server.icons import SERVER, icon
from mcp_imagegen.server.inputs import InputResolver
from mcp_imagegen.server.jobs.core import JobLimits, JobManager
from mcp_imagegen.server.jobs.tasks import TasksExtension
from mcp_imagegen.server.limits import RateLimit, RateLimiter
from mcp_imagegen.server.links import DownloadLinks, LinkSigner, link_key, site_of
from mcp_imagegen.server.model_knowledge import ModelKnowledge
from mcp_imagegen.server.principals import current_principal
from mcp_imagegen.server.results import stored_previews
from mcp_imagegen.server.state import AppState
from mcp_imagegen.server.studio import for_client, studio_extension
from mcp_imagegen.server.tools import all_tools
from mcp_imagegen.server.tools.arguments import StrictTool
from mcp_imagegen.server.tools.surface import Surface
from mcp_imagegen.store.base import Store
from mcp_imagegen.store.local import LocalStore
from mcp_imagegen.store.selection import Backing, opened
from mcp_imagegen.usage.prices import PriceTable

if TYPE_CHECKING:
    from mcp_imagegen.server.jobs.board import JobBoard

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
Image tools over several providers. generate_image makes images from a prompt; edit_image \
changes an image (optionally inside a mask, optionally with more input images); \
list_providers shows which providers are configured and what each can do. Every image is \
kept in a store: results give an inline preview, an imagegen://images/{id} link to the \
full-size file (and, locally, its path on disk) and the call's estimated cost. Pass an \
imagegen:// URI from an earlier result as the image of edit_image to keep working on it. A \
call that takes longer than wait_seconds answers with status 'running' and a job_id: call \
get_job with it to collect the images (or cancel_job to stop it)."""


CACHE_HINTS: dict[CacheableMethod, CacheHint] = {
    # The tool list changes only with configuration (a restart) and with whether the client renders
    # MCP Apps (the studio's tools); templates and capabilities only with configuration.
    "tools/list": CacheHint(ttl_ms=3_600_000, scope="private"),
    "resources/templates/list": CacheHint(ttl_ms=3_600_000, scope="public"),
    "server/discover": CacheHint(ttl_ms=3_600_000, scope="public"),
    # New images arrive at any time; each caller sees their own.
    "resources/list": CacheHint(ttl_ms=0, scope="private"),
    # A stored image and its metadata never change once written.
    "resources/read": CacheHint(ttl_ms=86_400_000, scope="private"),
}
"""Freshness hints for the cacheable methods (SEP-2549, 2026-07-28)."""


class ImagegenServer(MCPServer[AppState]):
    """MCPServer whose resources come from the image store.

    The SDK's resource manager serves one fixed mime type per template and lists everything
    in one page; stored images need their own mime types and a paginated listing, so the
    three resource handlers are served from the store instead.
    """

    current: AppState | None = None
    """The running lifespan's state, for the plain HTTP routes (`/files/`) outside MCP requests."""
    closed: threading.Event
    """Set once the lifespan has ended: jobs cancelled, store and ledger closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = threading.Event()

    async def _handle_list_tools(
        self, ctx: ServerRequestContext[AppState, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(
            tools=for_client(await self.list_tools(), renders_apps=client_supports_apps(ctx))
        )

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[AppState, Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        cursor = params.cursor if params is not None else None
        try:
            items, next_cursor = await resources.list_page(
                ctx.lifespan_context.store, cursor, current_principal()
            )
        except InputError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return ListResourcesResult(resources=items, next_cursor=next_cursor)

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return list(resources.TEMPLATES)

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[AppState, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        text = str(uri)
        if not resources.is_image_uri(text):
            return await super().read_resource(uri, context)
        if context is None:
            raise ResourceError("reading a stored image needs a request context")
        return await resources.read(context.request_context.lifespan_context.store, text, current_principal())


def _url_fetcher(settings: Settings, client: httpx2.AsyncClient) -> UrlFetcher | None:
    if not settings.allow_url_inputs:
        return None
    return UrlFetcher(
        client,
        max_bytes=settings.max_input_bytes,
        timeout_s=settings.url_timeout_seconds,
        allowed_networks=settings.url_allowed_networks,
    )


def _provider_client(settings: Settings) -> httpx2.AsyncClient:
    """The client every provider and URL input shares. As many connections as calls may be in
    flight: httpx's default of 100 would queue a burst behind the pool, not behind the provider.
    Its transport is made at the first request (`LazyTransport`); proxies from the environment
    get the same limits."""
    limits = httpx2.Limits(
        max_connections=settings.max_concurrent_provider_calls, max_keepalive_connections=64
    )
    return httpx2.AsyncClient(follow_redirects=False, limits=limits, transport=LazyTransport(limits))


async def _tidy_store(store: LocalStore) -> None:
    """Repair what a crash left behind and apply retention, in the background: start-up is
    not made to wait for a scan of the whole store."""
    try:
        report = await store.repair()
        removed = await store.enforce_retention()
    except StoreError as exc:
        logger.warning("store check skipped: %s", exc)
        return
    if report.recovered or report.dropped_rows or report.removed_temp or removed:
        logger.info(
            "store check: %d orphan file(s) indexed again, %d row(s) without a file dropped, "
            "%d unfinished write(s) removed, %d image(s) past retention removed",
            report.recovered,
            report.dropped_rows,
            report.removed_temp,
            removed,
        )


@asynccontextmanager
async def _job_board(backing: Backing, settings: Settings) -> AsyncIterator[JobBoard | None]:
    """The shared jobs table of replicas, when there is a shared database."""
    if backing.database is None:
        yield None
        return
    from mcp_imagegen.server.jobs.board import JobBoard

    previews = functools.partial(stored_previews, backing.store, settings)
    async with JobBoard.running(backing.database, settings.job_retention_seconds, previews) as board:
        yield board


def _download_links(settings: Settings, store: Store) -> DownloadLinks | None:
    """Links in results for hosts that cannot read resources: only where the server has a public URL."""
    if not settings.public_url:
        return None
    site = site_of(settings.public_url)
    signer = LinkSigner(site, link_key(settings.store_dir), settings.link_ttl_seconds)
    return DownloadLinks(signer, store.download_url)


def _rate_limit(backing: Backing, per_minute: int) -> RateLimit:
    """Counted in the shared database when there is one, so that the limit holds across replicas."""
    if backing.database is None:
        return RateLimiter(per_minute)
    from mcp_imagegen.server.shared_limits import SharedRateLimiter

    return SharedRateLimiter(backing.database, per_minute)


def build_server(
    settings: Settings,
    *,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
    surface: Surface | None = None,
    conformance_fixtures: bool = False,
    config_file: Path | None = None,
) -> ImagegenServer:
    """A server for these settings (and, over HTTP, this auth). Nothing is opened until the
    lifespan starts. Its tools are those the configured providers can serve, unless `surface`
    says otherwise (`Surface.everything()` for the manifests); `conformance_fixtures` adds the
    conformance suite's fixture tools (`server/fixtures.py`); `config_file`, the file the settings
    came from, is never readable by path for remote callers."""

    @asynccontextmanager
    async def serving(server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        codec.set_pixel_limit(settings.max_pixels)
        async with (
            opened(settings) as backing,
            _provider_client(settings) as client,
            _job_board(backing, settings) as board,
            anyio.create_task_group() as jobs,
        ):
            if backing.local is not None:
                jobs.start_soon(_tidy_store, backing.local)
            providers = ProviderRegistry(settings, client)
            state = AppState(
                settings=settings,
                store=backing.store,
                providers=providers,
                inputs=InputResolver(
                    backing.store,
                    ReferenceReader(
                        settings.store_dir,
                        settings.allowed_dirs,
                        settings.max_input_bytes,
                        _url_fetcher(settings, client),
                        remote_roots=settings.remote_allow_paths,
                        private=settings.private_paths(config_file),
                    ),
                ),
                jobs=JobManager(
                    jobs,
                    timeout_s=settings.job_timeout_seconds,
                    retention_s=settings.job_retention_seconds,
                    max_concurrent=settings.max_concurrent_provider_calls,
                    in_flight=providers.in_flight,
                    board=board,
                    limits=JobLimits(
                        kept=settings.max_kept_jobs,
                        kept_per_principal=settings.max_kept_jobs_per_principal,
                        active=settings.max_jobs,
                        active_per_principal=settings.max_jobs_per_principal,
                    ),
                ),
                rate_limiter=_rate_limit(backing, settings.rate_limit_per_minute or 0),
                prices=PriceTable(settings.prices),
                ledger=backing.ledger,
                links=_download_links(settings, backing.store),
                models=ModelKnowledge(backing.overlay),
            )
            if settings.models.check_daily and providers.checks_models():
                jobs.start_soon(state.models.check_daily, settings)
            if isinstance(server, ImagegenServer):
                server.current = state
            yield state
            jobs.cancel_scope.cancel()  # shutting down: abort what is still running

    @asynccontextmanager
    async def lifespan(server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        try:
            async with serving(server) as state:
                yield state
        finally:
            if isinstance(server, ImagegenServer):
                server.closed.set()

    tools = all_tools(surface or Surface.of(settings))
    long_tools = frozenset(tool.name for tool in tools if isinstance(tool, StrictTool) and tool.operation)
    if conformance_fixtures:
        from mcp_imagegen.server import fixtures

        long_tools |= fixtures.TASK_TOOLS
    server = ImagegenServer(
        "mcp-imagegen",
        title="Image generation",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        token_verifier=token_verifier,
        auth=auth,
        icons=icon(SERVER),
        cache_hints=CACHE_HINTS,
        tools=tools,
        extensions=[TasksExtension(long_tools, settings.job_retention_seconds), studio_extension()],
    )
    if conformance_fixtures:
        fixtures.register_fixtures(server)
    return server
