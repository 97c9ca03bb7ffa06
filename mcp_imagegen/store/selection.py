"""Which store a server uses: the embedded default (files plus SQLite under `IMAGEGEN_STORE_DIR`),
or, for replicas that share nothing, object storage plus PostgreSQL (`IMAGEGEN_STORE_URL` with
`IMAGEGEN_DATABASE_URL`). The shared store's clients are imported only when it is chosen."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ConfigError
from mcp_imagegen.store.base import Store
from mcp_imagegen.store.local import LocalStore, Retention
from mcp_imagegen.store.model_overlay import DatabaseOverlay, FileOverlay, ModelOverlay
from mcp_imagegen.store.url import StoreUrl
from mcp_imagegen.usage.ledger import LEDGER_FILE, Ledger, UsageLedger

if TYPE_CHECKING:
    from mcp_imagegen.database import Database


@dataclass(frozen=True)
class Backing:
    """What a server keeps its state in: the image store and the usage ledger."""

    store: Store
    ledger: Ledger
    local: LocalStore | None
    """The local store when it is the one in use (it has start-up repair and retention)."""
    overlay: ModelOverlay
    """What `models check` learned of the providers' models (`store/model_overlay.py`)."""
    database: Database | None = None
    """The shared database, when there is one: jobs and rate limits go there too."""


@asynccontextmanager
async def opened(settings: Settings, *, clock: Callable[[], float] = time.time) -> AsyncIterator[Backing]:
    """Open the configured store and ledger, settle calls left pending by a server that stopped
    mid-call, and close both on exit."""
    if settings.store_url is None or settings.database_url is None:
        store = LocalStore(settings.store_dir, retention(settings))
        ledger = UsageLedger(settings.store_dir / LEDGER_FILE, clock)
        try:
            ledger.settle_stale()
            yield Backing(store, ledger, store, FileOverlay(settings.store_dir))
        finally:
            store.close()
            ledger.close()
        return
    try:
        from mcp_imagegen import database
        from mcp_imagegen.store.objects import ObjectStore
        from mcp_imagegen.store.shared import SharedStore
        from mcp_imagegen.usage.shared_ledger import SharedLedger
    except ImportError:
        raise ConfigError(
            "IMAGEGEN_STORE_URL and IMAGEGEN_DATABASE_URL need the scale-out clients: "
            "pip install 'mcp-imagegen[scale]'"
        ) from None
    objects = ObjectStore(StoreUrl.parse(settings.store_url))
    shared = await database.connect(settings.database_url.get_secret_value())
    try:
        shared_ledger = SharedLedger(shared, clock)
        await shared_ledger.settle_stale()
        yield Backing(SharedStore(objects, shared), shared_ledger, None, DatabaseOverlay(shared), shared)
    finally:
        await shared.close()


@asynccontextmanager
async def model_overlay(settings: Settings) -> AsyncIterator[ModelOverlay]:
    """The store's model overlay alone (what `models check` and `doctor` need), without opening
    the store or the ledger that a running server holds."""
    if settings.store_url is None or settings.database_url is None:
        yield FileOverlay(settings.store_dir)
        return
    try:
        from mcp_imagegen import database
    except ImportError:
        raise ConfigError(
            "IMAGEGEN_DATABASE_URL needs the scale-out clients: pip install 'mcp-imagegen[scale]'"
        ) from None
    shared = await database.connect(settings.database_url.get_secret_value())
    try:
        yield DatabaseOverlay(shared)
    finally:
        await shared.close()


def retention(settings: Settings) -> Retention:
    days = settings.store_max_age_days
    return Retention(max_bytes=settings.store_max_bytes, max_age_s=days * 86400 if days is not None else None)
