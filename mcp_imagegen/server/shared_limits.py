"""The rate limit of replicas that share a database: one sliding window per principal in the
`rate_calls` table, checked and counted in one transaction under an advisory lock on the
principal, so the limit is exact however many replicas a person's calls reach."""

from __future__ import annotations

import time

import psycopg

from mcp_imagegen.database import Database
from mcp_imagegen.errors import StoreError, first_line
from mcp_imagegen.server.limits import WINDOW_S, refusal

LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
COUNT_CALL = "INSERT INTO rate_calls (principal, at) VALUES (%s, %s)"


class SharedRateLimiter:
    """A `RateLimit` in the shared database; 0 calls per minute means no limit."""

    def __init__(self, database: Database, per_minute: int) -> None:
        self._database = database
        self._per_minute = per_minute

    async def admit(self, client: str) -> None:
        if not self._per_minute:
            return
        now = time.time()
        try:
            async with self._database.connection() as connection, connection.transaction():
                await connection.execute(LOCK, (f"rate:{client}",))
                await connection.execute(
                    "DELETE FROM rate_calls WHERE principal = %s AND at <= %s", (client, now - WINDOW_S)
                )
                cursor = await connection.execute(
                    "SELECT COUNT(*), MIN(at) FROM rate_calls WHERE principal = %s", (client,)
                )
                row = await cursor.fetchone()
                count, oldest = (int(row[0]), row[1]) if row else (0, None)
                if count >= self._per_minute and oldest is not None:
                    raise refusal(self._per_minute, WINDOW_S - (now - float(oldest)))
                await connection.execute(COUNT_CALL, (client, now))
        except psycopg.Error as exc:
            raise StoreError(f"the rate limit at {self._database.where} failed: {first_line(exc)}") from None

    async def wait_s(self, client: str) -> float:
        if not self._per_minute:
            return 0.0
        now = time.time()
        try:
            async with self._database.connection() as connection:
                cursor = await connection.execute(
                    "SELECT at FROM rate_calls WHERE principal = %s AND at > %s ORDER BY at DESC "
                    "OFFSET %s LIMIT 1",
                    (client, now - WINDOW_S, self._per_minute - 1),
                )
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"the rate limit at {self._database.where} failed: {first_line(exc)}") from None
        return 0.0 if row is None else max(0.0, WINDOW_S - (now - float(row[0])))
