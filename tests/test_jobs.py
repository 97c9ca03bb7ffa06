"""The job core without MCP: how jobs end, what `follow` reports and when, and how long
finished jobs are kept."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio.abc import TaskGroup
from mcp.types import CallToolResult, TextContent

from mcp_imagegen.errors import InputError, LimitError, ProviderError
from mcp_imagegen.server.jobs.core import Job, JobLimits, JobManager, follow
from mcp_imagegen.server.principals import Principal

pytestmark = pytest.mark.anyio


class Done:
    async def result(self) -> CallToolResult:
        return CallToolResult(content=[TextContent(text="done")])


@pytest.fixture
async def task_group() -> AsyncIterator[TaskGroup]:
    async with anyio.create_task_group() as group:
        yield group
        group.cancel_scope.cancel()


def manager(group: TaskGroup, *, timeout_s: float = 30, retention_s: float = 60) -> JobManager:
    return JobManager(group, timeout_s=timeout_s, retention_s=retention_s)


async def test_job_ends_succeeded_failed_cancelled_or_timed_out(task_group: TaskGroup) -> None:
    jobs = manager(task_group, timeout_s=0.3)

    async def quick(job: Job) -> Done:
        job.step("working")
        return Done()

    async def refused(job: Job) -> Done:
        raise ProviderError("openai", "Invalid size.", status=400)

    async def broken(job: Job) -> Done:
        raise RuntimeError("secret internals")

    async def slow(job: Job) -> Done:
        await anyio.sleep(10)
        return Done()

    succeeded = await jobs.start("generate_image", "openai", "m", quick, "start")
    failed = await jobs.start("generate_image", "openai", "m", refused, "start")
    crashed = await jobs.start("generate_image", "openai", "m", broken, "start")
    timed_out = await jobs.start("generate_image", "openai", "m", slow, "start")
    cancelled = await jobs.start("edit_image", "openai", "m", slow, "start")
    cancelled.cancel()
    for job in (succeeded, failed, crashed, timed_out, cancelled):
        assert await job.wait(5)
    assert succeeded.state == "succeeded" and [step.message for step in succeeded.steps] == [
        "start",
        "working",
    ]
    assert failed.state == "failed" and "Invalid size." in (failed.error or "")
    assert crashed.state == "failed" and crashed.error == (
        "generate_image failed with an internal error; the server log has the details."
    )
    assert timed_out.state == "failed" and "took longer than 0 s" in (timed_out.error or "")
    assert (
        cancelled.state == "cancelled" and cancelled.error == "edit_image was cancelled before it finished."
    )
    assert cancelled.elapsed_s < 1


async def test_follow_reports_steps_then_heartbeats_and_stops_at_the_wait_limit(
    task_group: TaskGroup,
) -> None:
    jobs = manager(task_group)
    release = anyio.Event()

    async def waits(job: Job) -> Done:
        job.step("request sent")
        await release.wait()
        job.step("storing")
        return Done()

    job = await jobs.start("generate_image", "openai", "gpt-image-2", waits, "asking openai")
    reports: list[tuple[float, str]] = []

    async def report(message: str) -> None:
        reports.append((time.monotonic(), message))

    started = time.monotonic()
    ended = await follow(job, report, wait_s=0.65, heartbeat_s=0.1, from_step=0)
    assert not ended
    assert 0.6 < time.monotonic() - started < 1.5
    messages = [message for _, message in reports]
    assert messages[:2] == ["asking openai", "request sent"]
    beats = [message for message in messages if message.startswith("waiting for gpt-image-2, ")]
    assert 4 <= len(beats) <= 7, messages
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(reports)]
    assert max(gaps) < 0.5, "no silence much longer than the heartbeat"

    reports.clear()
    release.set()
    assert await follow(job, report, wait_s=5, heartbeat_s=0.1, from_step=len(job.steps) - 1)
    assert [message for _, message in reports] == ["request sent", "storing"]


async def test_finished_jobs_are_forgotten_after_the_retention_period(task_group: TaskGroup) -> None:
    jobs = manager(task_group, retention_s=0.2)

    async def quick(job: Job) -> Done:
        return Done()

    job = await jobs.start("generate_image", "openai", "m", quick, "start")
    assert await job.wait(5)
    assert await jobs.get(job.id) is job
    assert await jobs.get(f"  {job.id}\n") is job, "ids pasted with whitespace still work"
    await anyio.sleep(0.3)
    with pytest.raises(InputError, match=r"no job 'job_.*' on this server.*do not survive a server restart"):
        await jobs.get(job.id)


async def test_job_ids_are_long_random_and_distinct(task_group: TaskGroup) -> None:
    ids = {Job("t", "p", "m").id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(job_id.startswith("job_") and len(job_id) == 28 for job_id in ids)


async def test_every_job_that_waits_for_a_slot_says_so(task_group: TaskGroup) -> None:
    """Five jobs started in the same instant with two slots: the three that wait each say so,
    and the two that run at once do not."""
    jobs = JobManager(task_group, timeout_s=30, retention_s=60, max_concurrent=2)
    release = anyio.Event()

    async def held(job: Job) -> Done:
        await release.wait()
        return Done()

    started = [await jobs.start("generate_image", "openai", "m", held, "start") for _ in range(5)]
    await anyio.sleep(0.1)
    said = [[step.message for step in job.steps] for job in started]
    release.set()
    for job in started:
        assert await job.wait(5) and job.state == "succeeded"
    assert said == [["start"]] * 2 + [["start", "queued: all 2 provider slots are busy"]] * 3


async def test_a_full_server_refuses_the_heaviest_user_first(task_group: TaskGroup) -> None:
    """Four calls in all, ten each: bob fills the server and is refused; alice, holding less than
    her fair share, still gets in, up to that share; released seats make room again."""
    jobs = JobManager(
        task_group, timeout_s=30, retention_s=60, limits=JobLimits(active=4, active_per_principal=10)
    )
    bob, alice = Principal("bob", remote=True), Principal("alice", remote=True)
    bobs = [jobs.take_seat(bob) for _ in range(4)]
    with pytest.raises(LimitError, match="the server is full \\(4 calls running or queued\\) and you hold 4"):
        jobs.take_seat(bob)
    alices = [jobs.take_seat(alice), jobs.take_seat(alice)]  # her share: 4 over two people
    with pytest.raises(LimitError, match="you hold 2 of them"):
        jobs.take_seat(alice)
    bobs[0].release()
    bobs[0].release()  # once only: still over the ceiling (5 held)
    with pytest.raises(LimitError):
        jobs.take_seat(alice)
    bobs[1].release()
    bobs[2].release()  # three held: room again
    alices.append(jobs.take_seat(alice))
    with pytest.raises(LimitError):
        jobs.take_seat(alice)
