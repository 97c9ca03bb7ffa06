"""Jobs: every provider call runs as a job owned by the server process.

A tool call starts a job and waits for it up to `wait_seconds`; if the job is not done by
then the call answers with the job's id and the work goes on, to be collected with
`get_job`. Whoever is waiting (the original call, or a `get_job` later) receives the
job's steps as they happen plus a heartbeat when nothing has happened for a while, so a
host sees progress for the whole life of the job.

Jobs run in the server's task group, not in the request that started them: a request
that ends, or a client that goes away, does not end its job unless that request was the
job's owner and was cancelled while waiting (see `server.jobs.delivery`).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskGroup
from mcp.types import CallToolResult, TextContent
from pydantic import JsonValue

from mcp_imagegen.errors import ImagegenError, InputError, LimitError
from mcp_imagegen.server.principals import LOCAL, Principal
from mcp_imagegen.usage.prices import Estimate

if TYPE_CHECKING:
    from mcp_imagegen.server.jobs.board import JobBoard

logger = logging.getLogger(__name__)

JobState = Literal["running", "succeeded", "failed", "cancelled"]
JOB_ID_PREFIX = "job_"
JOB_ID_BYTES = 18
"""144 random bits: a job id is a capability, so it must not be guessable."""
CANCEL_GRACE_S = 10.0
"""How long `cancel` waits for a job's cleanup (closing the connection, removing partials)."""


class JobOutcome(Protocol):
    """What a successful job leaves behind; rendered again for every `get_job`."""

    async def result(self) -> CallToolResult: ...


@dataclass(frozen=True)
class JobStep:
    elapsed_s: float
    message: str


Work = Callable[["Job"], Awaitable[JobOutcome]]


@runtime_checkable
class Abandonable(Protocol):
    """Work that must hear about it when its job ends before it ever ran (cancelled or timed out
    while queued for a provider slot), e.g. to release what it reserved."""

    async def abandoned(self, job: Job) -> None: ...


class Job:
    """One call's work: its state, the steps it went through, its outcome or error."""

    def __init__(self, tool: str, provider: str, model: str, owner: Principal = LOCAL) -> None:
        self.id = JOB_ID_PREFIX + secrets.token_urlsafe(JOB_ID_BYTES)
        self.owner = owner
        """Who started it: only they can wait on it, cancel it or see it, and what it stores is theirs."""
        self.tool = tool
        self.provider = provider
        self.model = model
        self.state: JobState = "running"
        self.crashed = False
        """Failed with an unexpected exception (a server fault), not an anticipated error."""
        self.error: str | None = None
        self.outcome: JobOutcome | None = None
        self.cost: Estimate | None = None
        """The call's cost: its estimate while it runs, then what it settled at."""
        self.ledger_row: int | None = None
        """The usage ledger row the job settles (a paid call)."""
        self.steps: list[JobStep] = []
        self._started = time.monotonic()
        self.created_at = datetime.now(timezone.utc)
        self.updated_at = self.created_at
        self._finished: float | None = None
        self._changed = anyio.Event()
        self._scope = anyio.CancelScope()
        self.on_change: Callable[[Job], None] | None = None
        """Told of every step and of the end (the shared job board mirrors them)."""
        self.rendered: CallToolResult | None = None
        """The outcome's result, kept from its first rendering until the board has stored it, so
        that the caller's answer and the board's copy cost one rendering (previews are the cost)."""
        self._render_lock = anyio.Lock()

    @property
    def done(self) -> bool:
        return self.state != "running"

    @property
    def elapsed_s(self) -> float:
        end = self._finished if self._finished is not None else time.monotonic()
        return end - self._started

    @property
    def latest(self) -> str:
        return self.steps[-1].message if self.steps else "starting"

    @property
    def changed(self) -> anyio.Event:
        """Set at the next step or when the job ends; fetch it before reading `steps`."""
        return self._changed

    def step(self, message: str) -> None:
        """Record a step and wake everyone waiting on this job."""
        self.steps.append(JobStep(self.elapsed_s, message))
        self._notify()

    def cancel(self) -> None:
        """Ask the job to stop; the provider request is aborted at its next await."""
        self._scope.cancel()

    async def wait(self, timeout_s: float) -> bool:
        """Wait until the job ends or `timeout_s` passes; whether it ended."""
        with anyio.move_on_after(timeout_s):
            while not self.done:
                await self.changed.wait()
        return self.done

    @asynccontextmanager
    async def _slot(self, limiter: anyio.CapacityLimiter, whose: str) -> AsyncIterator[None]:
        """Hold a slot of `limiter`; a job that has to wait for it says so first."""
        await take_slot(
            limiter, self, f"queued: all {limiter.total_tokens:.0f} {whose}provider slots are busy"
        )
        try:
            yield
        finally:
            limiter.release_on_behalf_of(self)

    async def run(self, work: Work, timeout_s: float, slots: Slots) -> None:
        """Do the work once a slot of its provider and an overall slot are free, and record how it
        ended; never raises except to cancel its task. The time limit counts the wait for slots too."""
        started = False
        try:
            with self._scope, anyio.move_on_after(timeout_s) as limit:
                async with self._slot(slots.provider, f"{self.provider} "), self._slot(slots.overall, ""):
                    started = True
                    outcome = await work(self)
                self._finish("succeeded", outcome=outcome)
            if limit.cancelled_caught:
                self._finish(
                    "failed",
                    f"{self.tool} took longer than {timeout_s:.0f} s, the limit for one call "
                    "(IMAGEGEN_JOB_TIMEOUT_SECONDS), and was stopped. Nothing more was stored.",
                )
        except ImagegenError as exc:
            self._finish("failed", str(exc))
        except Exception:
            logger.exception("job %s (%s) failed unexpectedly", self.id, self.tool)
            self.crashed = True
            self._finish(
                "failed", f"{self.tool} failed with an internal error; the server log has the details."
            )
        finally:
            if not self.done:
                self._finish("cancelled", f"{self.tool} was cancelled before it finished.")
            plain: object = work  # a Work is any callable; some can also be abandoned
            if not started and isinstance(plain, Abandonable):
                with anyio.CancelScope(shield=True):
                    await plain.abandoned(self)

    def finished_before(self, moment: float) -> bool:
        return self._finished is not None and self._finished < moment

    def _finish(self, state: JobState, error: str | None = None, outcome: JobOutcome | None = None) -> None:
        self.state, self.error, self.outcome = state, error, outcome
        self._finished = time.monotonic()
        self._notify()

    def _notify(self) -> None:
        self.updated_at = datetime.now(timezone.utc)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        if self.on_change is not None:
            self.on_change(self)


async def take_slot(limiter: anyio.CapacityLimiter, job: Job, waiting: str) -> None:
    """Take a slot of `limiter` for `job`, which reports `waiting` as a step if it has to wait.

    Taking a free slot does not yield, so jobs started in the same instant cannot all see one free
    slot, then wait without saying so.
    """
    try:
        limiter.acquire_on_behalf_of_nowait(job)
    except anyio.WouldBlock:
        job.step(waiting)
        await limiter.acquire_on_behalf_of(job)


@dataclass(frozen=True)
class Slots:
    """What a job waits for before its provider call: a slot of its provider, and an overall one."""

    provider: anyio.CapacityLimiter
    overall: anyio.CapacityLimiter


@dataclass(frozen=True)
class JobLimits:
    """How many jobs the server holds, per principal and overall, so that one person's flood
    neither crowds out another's calls nor evicts another's finished results."""

    kept: int = 1000
    """Finished jobs kept for get_job, over everyone; past it, the heaviest holder's oldest go."""
    kept_per_principal: int = 200
    """Finished jobs kept per principal; past it, that principal's oldest go."""
    active: int = 4096
    """Unfinished jobs (running or queued) over everyone; past it, only a principal below its fair
    share (this over the principals with unfinished jobs) may start one."""
    active_per_principal: int = 256
    """Unfinished jobs per principal; one more is refused until one ends."""


class Seat:
    """A principal's place among the unfinished jobs, from admission until its job ends (or the
    call fails before its job starts); released once."""

    def __init__(self, seats: dict[str, int], owner: str) -> None:
        self._seats = seats
        self._owner = owner
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            left = self._seats[self._owner] - 1
            if left:
                self._seats[self._owner] = left
            else:
                del self._seats[self._owner]


class JobManager:
    """Starts jobs in the server's task group, finds them by id, forgets finished ones."""

    def __init__(
        self,
        task_group: TaskGroup,
        *,
        timeout_s: float,
        retention_s: float,
        max_concurrent: int = 1024,
        in_flight: Callable[[str], int] = lambda provider: 1024,
        board: JobBoard | None = None,
        limits: JobLimits = JobLimits(),
    ) -> None:
        """`board`: the shared jobs table of replicas, where jobs are also published and looked up."""
        self._limits = limits
        self._seats: dict[str, int] = {}
        self._task_group = task_group
        self._timeout_s = timeout_s
        self._retention_s = retention_s
        self._overall = anyio.CapacityLimiter(max_concurrent)
        self._in_flight = in_flight
        self._per_provider: dict[str, anyio.CapacityLimiter] = {}
        self._jobs: dict[str, Job] = {}
        self._board = board

    def _slots(self, provider: str) -> Slots:
        limiter = self._per_provider.get(provider)
        if limiter is None:
            limiter = self._per_provider[provider] = anyio.CapacityLimiter(self._in_flight(provider))
        return Slots(limiter, self._overall)

    def take_seat(self, owner: Principal) -> Seat:
        """Admit one more unfinished call of `owner`, or LimitError (nothing is sent) when they
        hold their share: their own limit, or, with the server full, no less than anyone's fair
        share, so the heaviest user is refused first and a light one still gets in."""
        limits, name = self._limits, owner.name
        mine = self._seats.get(name, 0)
        if mine >= limits.active_per_principal:
            raise LimitError(
                f"you have {mine} calls running or queued, the most one person may have at once "
                f"(IMAGEGEN_MAX_JOBS_PER_PRINCIPAL); wait for one to finish (get_job) and try again"
            )
        total = sum(self._seats.values())
        if total >= limits.active and mine >= limits.active / max(1, len(self._seats)):
            raise LimitError(
                f"the server is full ({total} calls running or queued) and you hold {mine} of them, "
                "at least your share; wait for one of yours to finish (get_job) and try again"
            )
        self._seats[name] = mine + 1
        return Seat(self._seats, name)

    async def start(
        self,
        tool: str,
        provider: str,
        model: str,
        work: Work,
        first_step: str,
        owner: Principal = LOCAL,
        cost: Estimate | None = None,
        ledger_row: int | None = None,
        seat: Seat | None = None,
    ) -> Job:
        """Start the work as the owner's job; `cost` is its estimate, shown until it settles, and
        `seat` its place among the owner's unfinished jobs, given back when it ends."""
        self._forget_old()
        job = Job(tool, provider, model, owner)
        job.cost, job.ledger_row = cost, ledger_row
        job.step(first_step)
        if self._board is not None:
            await self._board.publish(job)
        self._jobs[job.id] = job
        slots = self._slots(provider)
        self._task_group.start_soon(self._run, job, work, slots, seat, name=f"{tool} {job.id}")
        return job

    async def _run(self, job: Job, work: Work, slots: Slots, seat: Seat | None) -> None:
        try:
            await job.run(work, self._timeout_s, slots)
        finally:
            if seat is not None:
                seat.release()

    async def get(self, job_id: str, owner: Principal = LOCAL) -> Job:
        """The caller's job, or InputError saying why it cannot be found. Someone else's job is
        answered exactly like one that does not exist. With a board, a job of another replica is
        found there."""
        self._forget_old()
        job: Job | None = self._jobs.get(job_id.strip())
        if job is not None and not secrets.compare_digest(job.owner.name, owner.name):
            job = None
        elif job is None and self._board is not None:
            job = await self._board.find(job_id.strip(), owner.name)
        if job is None:
            raise InputError(
                f"no job {job_id!r} on this server. Job ids come from a tool result with status "
                f"'running'; finished jobs are kept {self._retention_s / 60:.0f} min, and jobs do not "
                "survive a server restart (their finished images stay in the store: see resources/list)."
            )
        return job

    def _forget_old(self) -> None:
        """Drop jobs finished longer ago than the retention period; then each principal's oldest
        beyond their own cap; then, while over the overall cap, the oldest of whoever holds most."""
        cutoff = time.monotonic() - self._retention_s
        for job_id in [job.id for job in self._jobs.values() if job.finished_before(cutoff)]:
            del self._jobs[job_id]
        held: dict[str, deque[Job]] = {}
        for job in self._jobs.values():  # in start order: oldest first
            if job.done:
                held.setdefault(job.owner.name, deque()).append(job)
        limits = self._limits
        for jobs in held.values():
            while len(jobs) > limits.kept_per_principal:
                del self._jobs[jobs.popleft().id]
        total = sum(len(jobs) for jobs in held.values())
        while total > limits.kept:
            del self._jobs[max(held.values(), key=len).popleft().id]
            total -= 1


async def rendered_outcome(job: Job) -> CallToolResult:
    """The succeeded job's outcome as a tool result, rendered once while a board still has to
    store it (a job without a board keeps nothing: its result is made again when asked)."""
    assert job.outcome is not None
    async with job._render_lock:
        if job.rendered is not None:
            return job.rendered
        result = await job.outcome.result()
        if job.on_change is not None:
            job.rendered = result
        return result


async def job_result(job: Job) -> CallToolResult:
    """A succeeded job's tool result, with its cost in the structured content (and in the JSON text
    block that mirrors it, for hosts that ignore structured content)."""
    result = await rendered_outcome(job)
    if job.cost is None:
        return result
    return with_facts(result, {"cost": job.cost.facts()})


def with_facts(result: CallToolResult, added: dict[str, JsonValue]) -> CallToolResult:
    """`result` with `added` in its structured content and in the JSON text block that mirrors it
    (for hosts that ignore structured content); itself where it has no structured content."""
    if result.structured_content is None:
        return result
    before = json.dumps(result.structured_content, separators=(",", ":"), sort_keys=True)
    facts = {**result.structured_content, **added}
    content = list(result.content)
    for index, block in enumerate(content):
        if isinstance(block, TextContent) and _same_json(block.text, before):
            content[index] = TextContent(text=json.dumps(facts))
    return result.model_copy(update={"structured_content": facts, "content": content})


def _same_json(text: str, canonical: str) -> bool:
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True) == canonical
    except ValueError:
        return False


Report = Callable[[str], Awaitable[None]]


async def follow(job: Job, report: Report, *, wait_s: float, heartbeat_s: float, from_step: int) -> bool:
    """Pass the job's steps (from `from_step` on) to `report` until the job ends or `wait_s`
    passes; whether it ended.

    Whenever `heartbeat_s` goes by with nothing reported, a heartbeat says what is being
    waited for and for how long ("waiting for gpt-image-2, 23 s").
    """
    now = anyio.current_time()
    deadline = now + wait_s
    last_report = now
    seen = from_step
    while True:
        changed = job.changed
        while seen < len(job.steps):  # steps may be added while a report is being sent
            await report(job.steps[seen].message)
            seen += 1
            last_report = anyio.current_time()
        if job.done:
            return True
        now = anyio.current_time()
        if now >= deadline:
            return False
        with anyio.move_on_after(min(deadline, last_report + heartbeat_s) - now):
            await changed.wait()
        now = anyio.current_time()
        if not changed.is_set() and now < deadline and now - last_report >= heartbeat_s * 0.999:
            await report(f"waiting for {job.model}, {job.elapsed_s:.0f} s")
            last_report = now
