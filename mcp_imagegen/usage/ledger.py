"""The usage ledger: one row per provider call, in `usage.sqlite3` beside the image index.

A call is written as `pending` with its estimate before any provider request (its reservation),
and settled once it ends with what it made, the usage the provider reported and its cost. A
principal's spend for a day (UTC) is the sum of settled costs plus pending estimates, so calls
that run at once each see the others' reservations: the check and the reservation happen in one
write transaction (`BEGIN IMMEDIATE`), which holds across processes sharing the store too.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio.to_thread
from pydantic import JsonValue

from mcp_imagegen.errors import BudgetError, StoreError
from mcp_imagegen.usage.prices import Charge, Estimate

Outcome = Literal["pending", "succeeded", "failed", "cancelled", "interrupted"]
SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal TEXT NOT NULL,
    started_at REAL NOT NULL,
    day TEXT NOT NULL,
    tool TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    operation TEXT NOT NULL,
    images_requested INTEGER NOT NULL,
    images INTEGER NOT NULL DEFAULT 0,
    size TEXT,
    quality TEXT,
    usage TEXT,
    outcome TEXT NOT NULL,
    estimate_usd REAL,
    cost_usd REAL,
    basis TEXT NOT NULL,
    job_id TEXT,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS calls_by_principal_day ON calls (principal, day);
CREATE INDEX IF NOT EXISTS calls_by_day ON calls (day);
CREATE INDEX IF NOT EXISTS calls_pending ON calls (started_at) WHERE outcome = 'pending';
"""
COST = "(CASE WHEN outcome = 'pending' THEN estimate_usd ELSE cost_usd END)"
"""What a call counts for: its estimate while it runs, then what it settled at (NULL: unknown)."""
SPENT = f"SELECT COALESCE(SUM({COST}), 0) FROM calls WHERE principal = ? AND day = ?"  # noqa: S608
REPORT = (
    "SELECT day, principal, provider, model, COUNT(*),"  # noqa: S608 - constant expressions only
    " SUM(CASE WHEN outcome IN ('failed', 'interrupted') THEN 1 ELSE 0 END), SUM(images),"
    f" COALESCE(SUM({COST}), 0), SUM(CASE WHEN {COST} IS NULL THEN 1 ELSE 0 END)"
    " FROM calls WHERE day >= ? AND day <= ? AND (? IS NULL OR principal = ?)"
    " GROUP BY day, principal, provider, model ORDER BY day, principal, provider, model"
)
RELEASE = "DELETE FROM calls WHERE id = ? AND outcome = 'pending'"
LEDGER_FILE = "usage.sqlite3"
STALE_AFTER_S = 24 * 3600.0
"""A row still pending this long after it started belongs to a server that stopped mid-call."""


def utc_day(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, tz=datetime.timezone.utc).date().isoformat()


def next_midnight(moment: float) -> datetime.datetime:
    """When the budget day that contains `moment` ends (midnight UTC)."""
    day = datetime.datetime.fromtimestamp(moment, tz=datetime.timezone.utc).date()
    return datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), datetime.timezone.utc)


@dataclass(frozen=True)
class Reservation:
    row_id: int
    charge: Charge
    estimate: Estimate


@dataclass(frozen=True)
class BudgetState:
    limit_usd: float
    spent_usd: float
    resets_at: datetime.datetime

    @property
    def remaining_usd(self) -> float:
        return max(0.0, round(self.limit_usd - self.spent_usd, 6))


@dataclass(frozen=True)
class UsageRow:
    day: str
    principal: str
    provider: str
    model: str
    calls: int
    failed: int
    images: int
    cost_usd: float
    """The sum of the known costs."""
    unpriced: int
    """Calls whose cost is unknown (no price in the table): not in `cost_usd`."""


class Ledger(Protocol):
    """Where calls are reserved and settled: `UsageLedger` (SQLite beside the local store) or
    `usage.shared_ledger.SharedLedger` (PostgreSQL, shared by replicas)."""

    async def reserve(
        self, principal: str, tool: str, charge: Charge, estimate: Estimate, limit_usd: float | None
    ) -> Reservation:
        """Record the call as pending; with a limit, first check it fits what is left of the
        principal's day (BudgetError if not: nothing is recorded and nothing is sent). The check and
        the insert are one atomic step against every other reservation of that principal."""
        ...

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
        """Record how the call ended; a call settles once (a second settle changes nothing)."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Remove a still-pending reservation whose call was never sent (its inputs could not be
        read): it is no call, so it neither counts against the budget nor shows in reports."""
        ...

    async def budget(self, principal: str, limit_usd: float) -> BudgetState: ...

    async def report(self, principal: str | None, since: str, until: str) -> list[UsageRow]:
        """Calls from day `since` to day `until` (inclusive, UTC), by day, principal, provider and
        model; `principal=None`: everyone's."""
        ...


class UsageLedger:
    """Blocking SQLite work runs in a worker thread; a lock orders this process's writes."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # as the image index: no fsync per call
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the usage ledger at {path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def reserve(
        self, principal: str, tool: str, charge: Charge, estimate: Estimate, limit_usd: float | None
    ) -> Reservation:
        """Record the call as pending; with a limit, first check it fits what is left of the
        principal's day (BudgetError if not: nothing is recorded and nothing is sent)."""
        return await anyio.to_thread.run_sync(self._reserve, principal, tool, charge, estimate, limit_usd)

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
        await anyio.to_thread.run_sync(self._settle, reservation, outcome, cost, images, usage, job_id)

    async def release(self, reservation: Reservation) -> None:
        await anyio.to_thread.run_sync(self._release, reservation)

    async def budget(self, principal: str, limit_usd: float) -> BudgetState:
        return await anyio.to_thread.run_sync(self._budget, principal, limit_usd)

    async def report(self, principal: str | None, since: str, until: str) -> list[UsageRow]:
        """Calls from day `since` to day `until` (inclusive, UTC), by day, principal, provider and
        model; `principal=None`: everyone's."""
        return await anyio.to_thread.run_sync(self._report, principal, since, until)

    def _reserve(
        self, principal: str, tool: str, charge: Charge, estimate: Estimate, limit_usd: float | None
    ) -> Reservation:
        now = self._clock()
        day = utc_day(now)
        row = (
            principal, now, day, tool, charge.provider, charge.model, charge.operation, charge.images,
            charge.size, charge.quality, "pending", estimate.usd, estimate.basis,
        )  # fmt: skip
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if limit_usd is not None:
                    spent = float(self._db.execute(SPENT, (principal, day)).fetchone()[0])
                    check_fits(principal, charge, estimate, spent, limit_usd, now)
                cursor = self._db.execute(
                    "INSERT INTO calls (principal, started_at, day, tool, provider, model, operation,"
                    " images_requested, size, quality, outcome, estimate_usd, basis)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        assert cursor.lastrowid is not None
        return Reservation(cursor.lastrowid, charge, estimate)

    def _settle(
        self,
        reservation: Reservation,
        outcome: Outcome,
        cost: Estimate,
        images: int,
        usage: dict[str, JsonValue] | None,
        job_id: str | None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE calls SET outcome = ?, cost_usd = ?, basis = ?, images = ?, usage = ?, job_id = ?,"
                " ended_at = ? WHERE id = ? AND outcome = 'pending'",  # a call settles once
                (
                    outcome,
                    cost.usd,
                    cost.basis,
                    images,
                    json.dumps(usage) if usage is not None else None,
                    job_id,
                    self._clock(),
                    reservation.row_id,
                ),
            )

    def _release(self, reservation: Reservation) -> None:
        with self._lock:
            self._db.execute(RELEASE, (reservation.row_id,))

    def _budget(self, principal: str, limit_usd: float) -> BudgetState:
        now = self._clock()
        with self._lock:
            spent = float(self._db.execute(SPENT, (principal, utc_day(now))).fetchone()[0])
        return BudgetState(limit_usd, round(spent, 6), next_midnight(now))

    def _report(self, principal: str | None, since: str, until: str) -> list[UsageRow]:
        with self._lock:
            rows: Sequence[Any] = self._db.execute(REPORT, (since, until, principal, principal)).fetchall()
        return [
            UsageRow(day, who, provider, model, calls, failed, images, round(cost, 6), unpriced)
            for day, who, provider, model, calls, failed, images, cost, unpriced in rows
        ]

    def settle_stale(self) -> int:
        """Mark rows left pending by a server that stopped mid-call as interrupted; their estimate
        stays their cost (the provider may have charged)."""
        cutoff = self._clock() - STALE_AFTER_S
        with self._lock:
            cursor = self._db.execute(
                "UPDATE calls SET outcome = 'interrupted', cost_usd = estimate_usd"
                " WHERE outcome = 'pending' AND started_at < ?",
                (cutoff,),
            )
        return cursor.rowcount


def check_fits(
    principal: str, charge: Charge, estimate: Estimate, spent: float, limit_usd: float, now: float
) -> None:
    resets = next_midnight(now)
    left = max(0.0, limit_usd - spent)
    when = f"{resets.isoformat().replace('+00:00', 'Z')} (in {_duration(resets.timestamp() - now)})"
    if estimate.usd is None:
        raise BudgetError(
            f"budget: {principal} has a daily budget of ${limit_usd:.2f}, and this call cannot be priced "
            f"({estimate.basis}), so it was not sent. Use a provider and model with a known price, or add "
            "one with [[prices]] in the config file."
        )
    if spent + estimate.usd > limit_usd + 1e-9:
        raise BudgetError(
            f"budget: {principal} has spent ${spent:.2f} of the ${limit_usd:.2f} daily budget (${left:.2f} "
            f"left), and this call is estimated at ${estimate.usd:.2f} ({estimate.basis}), so it was not "
            f"sent. The budget resets at midnight UTC, {when}. Ask for fewer or cheaper images "
            "(n, quality, size, model)."
        )


def _duration(seconds: float) -> str:
    minutes = max(1, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
