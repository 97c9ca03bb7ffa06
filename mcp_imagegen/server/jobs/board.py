"""Jobs that every replica can see: a job runs in the replica that started it, and its record
(state, steps, cost, result) is mirrored to the `jobs` table of the shared database.

- Any replica finds a job by id (`find`) and waits on it without polling: the running replica
  sends `NOTIFY imagegen_job` with the id after each change it writes, and every replica LISTENs
  and refreshes the copies its callers are waiting on.
- A cancel on another replica is a `NOTIFY imagegen_cancel`; the running replica cancels the job,
  which closes its provider connection, and the change comes back as above.
- Each replica stamps `heartbeat_at` on its running jobs every few seconds; any replica marks a
  running job whose stamp is older than `STALE_S` as failed ("the server running it stopped"), so
  a replica killed mid-job leaves no job that hangs.

Writes go through one writer task that coalesces changes (a job with many progress steps costs one
UPDATE per batch), so a job never waits for the database.
"""

from __future__ import annotations

import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import anyio
import psycopg
from anyio.abc import TaskGroup
from mcp.types import CallToolResult, ImageContent
from psycopg.types.json import Jsonb

from mcp_imagegen.database import Database
from mcp_imagegen.errors import StoreError
from mcp_imagegen.images import b64
from mcp_imagegen.images.preview import Preview
from mcp_imagegen.server.jobs.core import Job, JobState, JobStep, rendered_outcome
from mcp_imagegen.server.principals import Principal
from mcp_imagegen.usage.prices import Estimate

logger = logging.getLogger(__name__)

CHANGED = "imagegen_job"
CANCEL = "imagegen_cancel"
HEARTBEAT_S = 5.0
STALE_S = 15.0
"""A running job not stamped for this long belongs to a replica that stopped: with stamps every
`HEARTBEAT_S` and checks as often, it is reported failed within `STALE_S + HEARTBEAT_S` (20 s)."""
STOPPED = "the server running it stopped; nothing was stored"
RECONNECT_S = 1.0
GATHER_S = 0.1
"""How long the writer lets a running job's progress steps gather before writing them: a call's
steps come in bursts, and one write per burst instead of one per step keeps the database (and
the CPU the calls need) free. A finished job is written at once."""
COLUMNS = (
    "id, owner, tool, provider, model, state, crashed, error, steps, result, cost, created_at, updated_at,"
    " finished_at"
)
INSERT = (
    "INSERT INTO jobs (id, owner, tool, provider, model, state, steps, cost, replica, created_at,"
    " updated_at, heartbeat_at, ledger_row) VALUES (%s,%s,%s,%s,%s,'running',%s,%s,%s,%s,%s,%s,%s)"
)
UPDATE = (
    "WITH changed AS (UPDATE jobs SET state = %s, crashed = %s, error = %s, steps = %s, result = %s,"
    " cost = %s, updated_at = %s, finished_at = %s WHERE id = %s AND state = 'running' RETURNING id)"
    " SELECT pg_notify(%s, id) FROM changed"
)
"""A job that the reaper already failed stays failed: its replica was presumed gone (and the reaper
said so). The change and its notification are one statement: one round trip per job."""
REAP = (
    "UPDATE jobs SET state = 'failed', error = %s, updated_at = %s, finished_at = %s"
    " WHERE state = 'running' AND heartbeat_at < %s RETURNING id"
)

INTERRUPTED = (
    "UPDATE calls SET outcome = 'interrupted', cost_usd = estimate_usd, ended_at = %s, job_id = jobs.id"
    " FROM jobs WHERE calls.id = jobs.ledger_row AND jobs.id = ANY(%s) AND calls.outcome = 'pending'"
)
"""The usage of a stopped replica's jobs: interrupted, their estimate standing (the provider may have
charged), as the ledger settles calls left pending at start-up."""
FORGET = "DELETE FROM jobs WHERE state <> 'running' AND finished_at < %s"


class JobBoard:
    """This replica's view of the shared jobs table; run it with `JobBoard.running`."""

    def __init__(self, database: Database, retention_s: float, previews: PreviewMaker) -> None:
        self.replica = secrets.token_hex(6)
        self.previews = previews
        self._database = database
        self._retention_s = retention_s
        self._local: dict[str, Job] = {}
        self._dirty: dict[str, Job] = {}
        self._wake = anyio.Event()
        self._finished = anyio.Event()
        """Set when a job finishes: the writer then stops gathering and writes at once."""
        self._watchers: dict[str, weakref.WeakSet[MirroredJob]] = {}
        self._tasks: TaskGroup | None = None

    @classmethod
    @asynccontextmanager
    async def running(
        cls, database: Database, retention_s: float, previews: PreviewMaker
    ) -> AsyncIterator[JobBoard]:
        """The board with its writer, listener and heartbeat running; on exit the last changes
        (jobs ended by the shutdown) are written before it stops."""
        board = cls(database, retention_s, previews)
        async with anyio.create_task_group() as tasks:
            board._tasks = tasks
            tasks.start_soon(board._write_changes)
            tasks.start_soon(board._listen)
            tasks.start_soon(board._keep_alive)
            try:
                yield board
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await board._flush()
                tasks.cancel_scope.cancel()

    async def publish(self, job: Job) -> None:
        """Record a new job before its id is given to anyone, and follow its changes from then on."""
        now = time.time()
        row = (
            job.id, job.owner.name, job.tool, job.provider, job.model, Jsonb(_steps(job)), _cost(job),
            self.replica, now, now, now, job.ledger_row,
        )  # fmt: skip
        try:
            async with self._database.connection() as connection:
                await connection.execute(INSERT, row)
        except psycopg.Error as exc:
            raise StoreError(f"could not record the job in {self._database.where}: {exc}") from None
        self._local[job.id] = job
        job.on_change = self._changed

    async def find(self, job_id: str, owner: str) -> MirroredJob | None:
        """The owner's job as the database has it, kept up to date while the caller holds it."""
        row = await self._row(job_id, owner)
        if row is None:
            return None
        mirrored = MirroredJob(self, row)
        self._watchers.setdefault(job_id, weakref.WeakSet()).add(mirrored)
        again = await self._row(job_id, owner)  # a change between the two reads is not missed
        if again is not None:
            mirrored.refresh(again)
        return mirrored

    def request_cancel(self, job_id: str) -> None:
        """Ask whichever replica runs the job to cancel it."""
        assert self._tasks is not None
        self._tasks.start_soon(self._notify, CANCEL, job_id)

    def _changed(self, job: Job) -> None:
        self._dirty[job.id] = job
        self._wake.set()
        if job.done:
            self._finished.set()

    async def _write_changes(self) -> None:
        while True:
            await self._wake.wait()
            with anyio.move_on_after(GATHER_S):
                await self._finished.wait()
            self._wake, self._finished = anyio.Event(), anyio.Event()
            try:
                await self._flush()
            except StoreError as exc:
                logger.warning("job changes not written yet: %s", exc)
                await anyio.sleep(RECONNECT_S)
                self._wake.set()

    async def _flush(self) -> None:
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            rows = [await self._update_row(job) for job in batch.values()]
            try:
                async with self._database.connection() as connection, connection.cursor() as cursor:
                    await cursor.executemany(UPDATE, rows)  # pipelined: one round trip per batch
            except (StoreError, psycopg.Error):
                self._dirty = {**batch, **self._dirty}
                raise
            for job in batch.values():
                if job.done:
                    self._local.pop(job.id, None)
                    job.rendered = None  # stored: a later get_job here renders it again

    async def _update_row(self, job: Job) -> tuple[object, ...]:
        result = None
        if job.state == "succeeded" and job.outcome is not None:
            try:
                outcome = await rendered_outcome(job)
            except Exception:  # the caller on this replica still gets its answer; others get an error
                logger.exception("job %s: its result could not be rendered for other replicas", job.id)
            else:
                result = compact(outcome)
        now = time.time()
        return (
            job.state, job.crashed, job.error, Jsonb(_steps(job)), result, _cost(job), now,
            now if job.done else None, job.id, CHANGED,
        )  # fmt: skip

    async def _listen(self) -> None:
        """Follow both channels on a connection of its own; after a lost connection, reconnect and
        refresh every watched job, since notifications sent meanwhile were missed."""
        while True:
            try:
                connection = await self._database.dedicated()
                async with connection:
                    await connection.execute(f"LISTEN {CHANGED}")
                    await connection.execute(f"LISTEN {CANCEL}")
                    await self._refresh_all()
                    async for notice in connection.notifies():
                        if notice.channel == CANCEL:
                            job = self._local.get(notice.payload)
                            if job is not None:
                                job.cancel()
                        else:
                            await self._refresh(notice.payload)
            except (StoreError, psycopg.Error) as exc:
                logger.warning("job notifications interrupted (%s); reconnecting", exc)
            except Exception:  # never let one bad notification stop every replica-wide wait here
                logger.exception("job notifications failed; reconnecting")
            await anyio.sleep(RECONNECT_S)

    async def _refresh_all(self) -> None:
        for job_id in list(self._watchers):
            await self._refresh(job_id)

    async def _refresh(self, job_id: str) -> None:
        watchers = self._watchers.get(job_id)
        if not watchers:
            self._watchers.pop(job_id, None)
            return
        row = await self._row(job_id, None)
        if row is not None:
            for mirrored in list(watchers):
                mirrored.refresh(row)

    async def _keep_alive(self) -> None:
        """Stamp this replica's running jobs, fail the stale ones of stopped replicas, and forget
        finished jobs past their retention."""
        while True:
            now = time.time()
            try:
                async with self._database.connection() as connection:
                    await connection.execute(
                        "UPDATE jobs SET heartbeat_at = %s WHERE replica = %s AND state = 'running'",
                        (now, self.replica),
                    )
                    cursor = await connection.execute(REAP, (STOPPED, now, now, now - STALE_S))
                    reaped = [job_id for (job_id,) in await cursor.fetchall()]
                    if reaped:
                        await connection.execute(INTERRUPTED, (now, reaped))
                    for job_id in reaped:
                        logger.warning("job %s failed: %s", job_id, STOPPED)
                        await connection.execute("SELECT pg_notify(%s, %s)", (CHANGED, job_id))
                    await connection.execute(
                        "DELETE FROM jobs WHERE state <> 'running' AND finished_at < %s",
                        (now - self._retention_s,),
                    )
            except (StoreError, psycopg.Error) as exc:
                logger.warning("job heartbeat skipped: %s", exc)
            await anyio.sleep(HEARTBEAT_S)

    async def _notify(self, channel: str, payload: str) -> None:
        try:
            async with self._database.connection() as connection:
                await connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))
        except (StoreError, psycopg.Error) as exc:
            logger.warning("could not send %s for %s: %s", channel, payload, exc)

    async def _row(self, job_id: str, owner: str | None) -> tuple[Any, ...] | None:
        query = f"SELECT {COLUMNS} FROM jobs WHERE id = %s"  # noqa: S608 - constant columns
        async with self._database.connection() as connection:
            if owner is None:
                cursor = await connection.execute(query, (job_id,))
            else:
                cursor = await connection.execute(f"{query} AND owner = %s", (job_id, owner))
            return await cursor.fetchone()


PreviewMaker = Callable[[list[str], str], Awaitable[list[Preview]]]
"""Previews of the owner's stored images, by id, within the inline budget (`results.stored_previews`)."""


def compact(result: CallToolResult) -> str:
    """A result as the jobs table keeps it: the preview bytes left out (another replica makes them
    again from the store when asked), so a finished job writes a few kilobytes, not a megabyte."""
    content = [
        ImageContent(data="", mime_type=block.mime_type) if isinstance(block, ImageContent) else block
        for block in result.content
    ]
    return result.model_copy(update={"content": content}).model_dump_json(by_alias=True, exclude_none=True)


class StoredOutcome:
    """A finished job's result as the running replica rendered it, its previews made again here."""

    def __init__(self, text: str, owner: str, previews: PreviewMaker) -> None:
        self._text = text
        self._owner = owner
        self._previews = previews

    async def result(self) -> CallToolResult:
        result = CallToolResult.model_validate_json(self._text)
        blanks = [index for index, block in enumerate(result.content) if isinstance(block, ImageContent)]
        images = (result.structured_content or {}).get("images")
        if not blanks or not isinstance(images, list) or len(images) != len(blanks):
            return result
        made = await self._previews([str(image["id"]) for image in images], self._owner)
        content = list(result.content)
        for index, preview in zip(blanks, made, strict=True):
            content[index] = ImageContent(data=b64.encode(preview.data), mime_type=preview.mime_type)
        return result.model_copy(update={"content": content})


class MirroredJob(Job):
    """A job running on another replica, as its record says; `changed` fires when it changes."""

    def __init__(self, board: JobBoard, row: tuple[Any, ...]) -> None:
        job_id, owner, tool, provider, model = row[:5]
        super().__init__(tool, provider, model, Principal(owner, admin=False, remote=True))
        self.id = job_id
        self._board = board
        self._created_ts = float(row[11])
        self._finished_ts: float | None = None
        self.created_at = datetime.fromtimestamp(self._created_ts, timezone.utc)
        self._apply(row)

    @property
    def elapsed_s(self) -> float:
        end = self._finished_ts if self._finished_ts is not None else time.time()
        return max(0.0, end - self._created_ts)

    def cancel(self) -> None:
        self._board.request_cancel(self.id)

    def refresh(self, row: tuple[Any, ...]) -> None:
        if self._apply(row):
            self._notify()
            self.updated_at = datetime.fromtimestamp(float(row[12]), timezone.utc)

    def _apply(self, row: tuple[Any, ...]) -> bool:
        """Take the record's state; whether anything changed."""
        state: JobState = row[5]
        steps = [JobStep(float(step["elapsed_s"]), str(step["message"])) for step in row[8]]
        changed = state != self.state or len(steps) != len(self.steps)
        self.state, self.crashed, self.error = state, bool(row[6]), row[7]
        self.steps = steps
        self.outcome = (
            StoredOutcome(row[9], self.owner.name, self._board.previews) if row[9] is not None else None
        )
        if state == "succeeded" and self.outcome is None:
            self.error = (
                f"{self.tool} finished, but its result could not be passed on from the server that ran "
                "it; its images are in the store (see resources/list)"
            )
        cost = row[10]
        self.cost = Estimate(cost["estimated_usd"], cost["basis"]) if cost else None
        self._finished_ts = float(row[13]) if row[13] is not None else None
        self.updated_at = datetime.fromtimestamp(float(row[12]), timezone.utc)
        return changed


def _steps(job: Job) -> list[dict[str, object]]:
    return [{"elapsed_s": round(step.elapsed_s, 3), "message": step.message} for step in job.steps]


def _cost(job: Job) -> Jsonb | None:
    return Jsonb(job.cost.facts()) if job.cost is not None else None
