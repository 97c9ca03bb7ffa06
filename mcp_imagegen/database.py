"""The shared PostgreSQL database of a scaled-out server (`IMAGEGEN_DATABASE_URL`): one pool per
process, and the schema every replica shares (image index, usage ledger).

psycopg 3 with psycopg_pool (the `[scale]` extra) is imported only here and only when a database is
configured, so the embedded default (files plus SQLite) never loads it. Every connection taken from
the pool is checked first (`check_quietly`), so a replica reconnects by itself after PostgreSQL
restarts: the first request after the restart gets a fresh connection, not a broken one.
"""

from __future__ import annotations

import logging
import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from mcp_imagegen.errors import ConfigError, StoreError, first_line

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.rows import TupleRow
    from psycopg_pool import AsyncConnectionPool

    Connection = AsyncConnection[TupleRow]

logger = logging.getLogger(__name__)

MIGRATION_LOCK = 0x696D6167656E
"""The advisory lock key that orders schema migrations: replicas starting at once take turns."""
MIGRATIONS: tuple[str, ...] = (
    # 1: the image index and the usage ledger
    """
    CREATE TABLE images (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        object_key TEXT NOT NULL,
        mime_type TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        prompt TEXT,
        parent_ids JSONB NOT NULL,
        metadata JSONB NOT NULL
    );
    CREATE INDEX images_listed ON images (seq DESC) WHERE kind <> 'partial';
    CREATE INDEX images_listed_by_owner ON images (owner, seq DESC) WHERE kind <> 'partial';
    CREATE INDEX images_by_owner_sha256 ON images (owner, sha256);
    CREATE TABLE calls (
        id BIGSERIAL PRIMARY KEY,
        principal TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        day TEXT NOT NULL,
        tool TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        operation TEXT NOT NULL,
        images_requested INTEGER NOT NULL,
        images INTEGER NOT NULL DEFAULT 0,
        size TEXT,
        quality TEXT,
        usage JSONB,
        outcome TEXT NOT NULL,
        estimate_usd DOUBLE PRECISION,
        cost_usd DOUBLE PRECISION,
        basis TEXT NOT NULL,
        job_id TEXT,
        ended_at DOUBLE PRECISION
    );
    CREATE INDEX calls_by_principal_day ON calls (principal, day);
    CREATE INDEX calls_by_day ON calls (day);
    CREATE INDEX calls_pending ON calls (started_at) WHERE outcome = 'pending';
    """,
    # 2: jobs any replica can see, wait on and cancel; rate-limit windows
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        tool TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        state TEXT NOT NULL,
        crashed BOOLEAN NOT NULL DEFAULT false,
        error TEXT,
        steps JSONB NOT NULL,
        result TEXT,
        cost JSONB,
        replica TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        heartbeat_at DOUBLE PRECISION NOT NULL,
        ledger_row BIGINT
    );
    CREATE INDEX jobs_running ON jobs (heartbeat_at) WHERE state = 'running';
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state <> 'running';
    CREATE TABLE rate_calls (principal TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
    CREATE INDEX rate_calls_by_principal ON rate_calls (principal, at);
    """,
    # 3: what `mcp-imagegen models check` learned of the providers' models (one document)
    """
    CREATE TABLE model_overlay (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document JSONB NOT NULL,
        checked_at DOUBLE PRECISION NOT NULL
    );
    """,
)
"""Append only: a released step is never edited, so every replica agrees on what version N is."""
POOL_MAX = 20
"""Connections per replica: a statement here takes well under a millisecond, so a few connections
serve hundreds of calls in flight (they queue for a connection, not for the provider)."""
CONNECT_TIMEOUT_S = 10.0


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


class Database:
    """A connection pool on one PostgreSQL database; open it with `connect`."""

    def __init__(self, pool: AsyncConnectionPool[Connection], url: str) -> None:
        self._pool = pool
        self._url = url
        self.where = describe(url)

    async def dedicated(self) -> Connection:
        """A connection of its own, outside the pool (for LISTEN); the caller closes it."""
        import psycopg

        try:
            return await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
            )
        except psycopg.OperationalError as exc:
            raise StoreError(f"the database at {self.where} cannot be reached: {first_line(exc)}") from None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A checked connection, in autocommit mode (use `connection.transaction()` for more than one
        statement). A database that cannot be reached is a StoreError naming it, without its password."""
        import psycopg
        import psycopg_pool

        try:
            async with self._pool.connection() as connection:
                yield connection
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(f"the database at {self.where} cannot be reached: {first_line(exc)}") from None

    async def close(self) -> None:
        await self._pool.close()


async def connect(url: str, *, min_size: int = 1, max_size: int = POOL_MAX) -> Database:
    """Bring the schema up to date and open a pool on `url`. Raises ConfigError when psycopg is
    not installed, StoreError (with the server's reason) when the database cannot be reached."""
    try:
        import psycopg
        from psycopg_pool import AsyncConnectionPool
    except ImportError:
        raise ConfigError(
            "IMAGEGEN_DATABASE_URL needs PostgreSQL support: pip install 'mcp-imagegen[scale]'"
        ) from None
    where = describe(url)
    try:  # one direct connection first: its error says why (the pool's only says it timed out)
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
        ) as connection:
            applied = await migrate(connection)
    except psycopg.Error as exc:
        raise StoreError(f"cannot use the database at {where}: {first_line(exc)}") from None
    if applied:
        logger.info("database %s: %d schema step(s) applied", where, applied)
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=CONNECT_TIMEOUT_S,
        kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT_S)},
        check=check_quietly,
        reconnect_timeout=CONNECT_TIMEOUT_S,
    )
    await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    return Database(pool, url)


async def check_quietly(connection: Connection) -> None:
    """Raise if a connection taken from the pool is broken, without a round trip when its socket says
    it is sound.

    A server that restarts or dies closes its connections, and its last words (a FATAL message, or
    the end of the stream) make the idle socket readable; a sound idle connection has nothing to
    read. So only a readable or closed connection gets psycopg's full check (an empty query), which
    raises for a broken one and makes the pool open a fresh connection. Pinging every connection
    taken would add a round trip to each of the six statements a generate call makes.
    """
    from psycopg_pool import AsyncConnectionPool

    if not connection.closed and not _has_input(connection.fileno()):
        return
    await AsyncConnectionPool.check_connection(connection)


def _has_input(fd: int) -> bool:
    """Whether the socket has something to read, or was closed, now. `poll`, not `select`, where
    there is one: a replica with many clients has descriptors past select's limit of 1024."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # Windows: its select has no such limit


async def migrate(connection: Connection) -> int:
    """Apply the steps this database has not had, in one transaction under an advisory lock, so
    replicas starting at once migrate it once; returns how many were applied."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS imagegen_schema (version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cursor = await connection.execute("SELECT COALESCE(MAX(version), 0) FROM imagegen_schema")
        row = await cursor.fetchone()
        current = int(cast(int, row[0])) if row else 0
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            await connection.execute(step)
            await connection.execute("INSERT INTO imagegen_schema (version) VALUES (%s)", (version,))
    return max(0, len(MIGRATIONS) - current)
