"""The usage ledger of a scaled-out server, in the shared PostgreSQL database: the same rows and
rules as `UsageLedger`, with budgets exact across replicas. A reservation takes a transaction-scoped
advisory lock on its principal and day, so two replicas reserving for one person at once take
turns at the check-and-insert; different people never wait for each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import JsonValue

from mcp_imagegen.database import Database
from mcp_imagegen.errors import StoreError, first_line
from mcp_imagegen.usage.ledger import (
    COST,
    STALE_AFTER_S,
    BudgetState,
    Outcome,
    Reservation,
    UsageRow,
    check_fits,
    next_midnight,
    utc_day,
)
from mcp_imagegen.usage.prices import Charge, Estimate

SPENT = f"SELECT COALESCE(SUM({COST}), 0) FROM calls WHERE principal = %s AND day = %s"  # noqa: S608
RESERVE = (
    "INSERT INTO calls (principal, started_at, day, tool, provider, model, operation, images_requested,"
    " size, quality, outcome, estimate_usd, basis)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'pending',%s,%s) RETURNING id"
)
RELEASE = "DELETE FROM calls WHERE id = %s AND outcome = 'pending'"
SETTLE = (
    "UPDATE calls SET outcome = %s, cost_usd = %s, basis = %s, images = %s, usage = %s, job_id = %s,"
    " ended_at = %s WHERE id = %s AND outcome = 'pending'"  # a call settles once
)
REPORT = (
    "SELECT day, principal, provider, model, COUNT(*),"  # noqa: S608 - constant expressions only
    " SUM(CASE WHEN outcome IN ('failed', 'interrupted') THEN 1 ELSE 0 END), SUM(images),"
    f" COALESCE(SUM({COST}), 0), SUM(CASE WHEN {COST} IS NULL THEN 1 ELSE 0 END)"
    " FROM calls WHERE day >= %s AND day <= %s AND (%s::text IS NULL OR principal = %s)"
    " GROUP BY day, principal, provider, model ORDER BY day, principal, provider, model"
)
SETTLE_STALE = (
    "UPDATE calls SET outcome = 'interrupted', cost_usd = estimate_usd WHERE outcome = 'pending'"
    " AND started_at < %s"
)


class SharedLedger:
    """A `Ledger` on the shared database."""

    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        self._database = database
        self._clock = clock

    async def reserve(
        self, principal: str, tool: str, charge: Charge, estimate: Estimate, limit_usd: float | None
    ) -> Reservation:
        now = self._clock()
        day = utc_day(now)
        row = (
            principal, now, day, tool, charge.provider, charge.model, charge.operation, charge.images,
            charge.size, charge.quality, estimate.usd, estimate.basis,
        )  # fmt: skip
        try:
            async with self._database.connection() as connection, connection.transaction():
                if limit_usd is not None:
                    await connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        (f"budget:{principal}:{day}",),
                    )
                    spent = await _one(await connection.execute(SPENT, (principal, day)))
                    check_fits(principal, charge, estimate, float(spent), limit_usd, now)
                row_id = await _one(await connection.execute(RESERVE, row))
        except psycopg.Error as exc:
            raise _failed(self._database, exc) from None
        return Reservation(int(row_id), charge, estimate)

    async def settle(
        self,
        reservation: Reservation,
        outcome: Outcome,
        cost: Estimate,
        *,
        images: int = 0,
        usage: dict[str, JsonValue] | None = None,
        job_id: str | None = None,
    ) -> None:
        values = (
            outcome, cost.usd, cost.basis, images, Jsonb(usage) if usage is not None else None, job_id,
            self._clock(), reservation.row_id,
        )  # fmt: skip
        try:
            async with self._database.connection() as connection:
                await connection.execute(SETTLE, values)
        except psycopg.Error as exc:
            raise _failed(self._database, exc) from None

    async def release(self, reservation: Reservation) -> None:
        try:
            async with self._database.connection() as connection:
                await connection.execute(RELEASE, (reservation.row_id,))
        except psycopg.Error as exc:
            raise _failed(self._database, exc) from None

    async def budget(self, principal: str, limit_usd: float) -> BudgetState:
        now = self._clock()
        try:
            async with self._database.connection() as connection:
                spent = await _one(await connection.execute(SPENT, (principal, utc_day(now))))
        except psycopg.Error as exc:
            raise _failed(self._database, exc) from None
        return BudgetState(limit_usd, round(float(spent), 6), next_midnight(now))

    async def report(self, principal: str | None, since: str, until: str) -> list[UsageRow]:
        try:
            async with self._database.connection() as connection:
                cursor = await connection.execute(REPORT, (since, until, principal, principal))
                rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise _failed(self._database, exc) from None
        return [
            UsageRow(
                day,
                who,
                provider,
                model,
                calls,
                int(failed),
                int(images),
                round(float(cost), 6),
                int(unpriced),
            )
            for day, who, provider, model, calls, failed, images, cost, unpriced in rows
        ]

    async def settle_stale(self) -> int:
        """As `UsageLedger.settle_stale`: rows left pending a day by a replica that stopped."""
        async with self._database.connection() as connection:
            cursor = await connection.execute(SETTLE_STALE, (self._clock() - STALE_AFTER_S,))
            return cursor.rowcount


async def _one(cursor: psycopg.AsyncCursor[Any]) -> Any:
    row = await cursor.fetchone()
    assert row is not None  # an aggregate or RETURNING always has a row
    return row[0]


def _failed(database: Database, exc: psycopg.Error) -> StoreError:
    return StoreError(f"the usage ledger at {database.where} failed: {first_line(exc)}")
