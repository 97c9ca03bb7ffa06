"""Two replicas behind HAProxy (round robin, no sticky sessions) on one SeaweedFS bucket and one
PostgreSQL database, all real servers on loopback: they behave as one server. Every response
says which replica served it (X-Replica), so each test checks that the second half of what it
does really happened on the other replica."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client import ClientExtension
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ImageContent, TextContent
from PIL import Image

from mcp_imagegen.server.jobs.board import STOPPED
from tests.conftest import served
from tests.connect import child_env, wait_healthy
from tests.fakes.loopback import free_port
from tests.fakes.openai_images import FakeOpenAIImages
from tests.services import BUCKET, HAProxy, Postgres, SeaweedFS
from tests.tasks_client import TasksClient
from tests.test_shared_store import bucket_objects, rows

pytestmark = pytest.mark.anyio
ALICE, BOB = "alice-token-0123456789", "bob-token-9876543210"


@dataclass
class Cluster:
    url: str
    database_url: str
    fake: FakeOpenAIImages
    replicas: dict[str, subprocess.Popen[bytes]]
    served: list[tuple[str, str]] = field(default_factory=list)
    """What each HTTP request was (its JSON-RPC method, or the HTTP method) and which replica (r0,
    r1) answered it, in order."""

    @asynccontextmanager
    async def client(
        self, token: str = ALICE, mode: str = "auto", extensions: list[ClientExtension] | None = None
    ) -> AsyncIterator[Client]:
        async def record(response: httpx2.Response) -> None:
            request = response.request
            what = request.method
            if request.method == "POST":
                body = json.loads(request.content or b"{}")
                what = body.get("method", "reply") if isinstance(body, dict) else "batch"
            self.served.append((what, response.headers.get("x-replica", "?")))

        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx2.Timeout(30, read=120),
            event_hooks={"response": [record]},
        )
        async with (
            http,
            Client(
                streamable_http_client(f"{self.url}/mcp", http_client=http), mode=mode, extensions=extensions
            ) as client,
        ):
            yield client

    @property
    def last(self) -> str:
        """The replica that answered the latest tool call or resource request (the client also
        sends requests of its own, such as tools/list)."""
        return next(
            replica
            for what, replica in reversed(self.served)
            if what.startswith(("tools/call", "resources/"))
        )

    async def start_job(self, client: Client, prompt: str) -> tuple[dict[str, Any], str]:
        """A generate_image call on the OpenAI fake answered at once with its job handle, and the
        replica that runs the job."""
        arguments = {"prompt": prompt, "provider": "openai", "wait_seconds": 0}
        handle = structured(await client.call_tool("generate_image", arguments))
        assert handle["status"] == "running"
        return handle, self.last

    async def next_goes_to_other_than(self, client: Client, replica: str) -> None:
        """Ping until `replica` answered the latest request: round robin then sends the next one to
        the other replica."""
        while self.served[-1][1] != replica:
            await client.list_resources()

    @property
    def replicas_seen(self) -> set[str]:
        return {replica for _, replica in self.served}


def start_replica(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_imagegen", "--transport", "http", "--port", str(port)],
            env=child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    wait_healthy(f"http://127.0.0.1:{port}", process)
    return process


@pytest.fixture
def cluster(
    postgres: Postgres, seaweedfs: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    database_url = postgres.new_database()
    prefix = secrets.token_hex(6)
    with served(FakeOpenAIImages()) as fake:
        env = {
            **seaweedfs.environment(),
            "IMAGEGEN_STORE_URL": f"s3://{BUCKET}/{prefix}",
            "IMAGEGEN_DATABASE_URL": database_url,
            "IMAGEGEN_STORE_DIR": str(tmp_path / "unused-store"),
            "IMAGEGEN_AUTH_TOKENS": f"alice:{ALICE},bob:{BOB}",
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
            "IMAGEGEN_DEFAULT_PROVIDER": "placeholder",
            "OPENAI_API_KEY": fake.api_key,
            "OPENAI_BASE_URL": f"{fake.url}/v1",
        }
        ports = [free_port(), free_port()]
        replicas = {
            f"r{index}": start_replica(port, env, tmp_path / f"r{index}.log")
            for index, port in enumerate(ports)
        }
        balancer = HAProxy(tmp_path, ports)
        balancer.start()
        monkeypatch.setenv("IMAGEGEN_STORE_URL", env["IMAGEGEN_STORE_URL"])  # for bucket_objects()
        for name, value in seaweedfs.environment().items():
            monkeypatch.setenv(name, value)
        try:
            wait_until_up(balancer.url)
            yield Cluster(balancer.url, database_url, fake, replicas)
        finally:
            balancer.stop()
            for process in replicas.values():
                if process.poll() is None:
                    process.terminate()
                    process.wait(15)


def wait_until_up(url: str, replicas: int = 2) -> None:
    """HAProxy marks a server up after its first good health check."""
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    while seen != {f"r{index}" for index in range(replicas)}:
        assert time.monotonic() < deadline, f"only {seen} came up behind the balancer"
        response = httpx2.get(f"{url}/healthz", timeout=5)
        if response.status_code == 200:
            seen.add(response.headers.get("x-replica", "?"))
        time.sleep(0.1)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    facts: dict[str, Any] | None = result.structured_content
    assert facts is not None
    return facts


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_made_on_one_replica_read_and_edited_on_the_other(cluster: Cluster, mode: str) -> None:
    async with cluster.client(mode=mode) as client:
        made = structured(
            await client.call_tool("generate_image", {"prompt": "a red card", "size": "256x256"})
        )
        maker = cluster.last
        image = made["images"][0]
        await cluster.next_goes_to_other_than(client, maker)
        blob = (await client.read_resource(image["uri"])).contents[0]
        assert cluster.last != maker
        await cluster.next_goes_to_other_than(client, maker)
        edited = structured(
            await client.call_tool(
                "edit_image", {"image": image["uri"], "prompt": "make it green", "size": "256x256"}
            )
        )
        assert cluster.last != maker, "edited on the other replica"
        listings = []
        for _ in range(2):
            listings.append([str(r.uri) for r in (await client.list_resources()).resources])
            listings[-1].append(cluster.last)
    assert getattr(blob, "mime_type", None) == "image/png"
    new_uri = edited["images"][0]["uri"]
    assert {listing[-1] for listing in listings} == {"r0", "r1"}, "listed on both replicas"
    assert all(listing[:-1] == [new_uri, image["uri"]] for listing in listings)
    (parents,) = rows(
        cluster.database_url, f"SELECT parent_ids FROM images WHERE id = '{edited['images'][0]['id']}'"
    )
    assert parents == ([image["id"]],)


async def test_a_job_started_on_one_replica_is_collected_and_cancelled_on_the_other(cluster: Cluster) -> None:
    cluster.fake.delay_s = 2.0
    async with cluster.client() as client:
        handle, starter = await cluster.start_job(client, "slow")
        await cluster.next_goes_to_other_than(client, starter)
        answer = await client.call_tool("get_job", {"job_id": handle["job_id"], "wait_seconds": 30})
        collected = structured(answer)
        assert cluster.last != starter, "get_job ran on the other replica"
        assert collected["images"][0]["width"] > 0
        # The preview was made again on this replica: the jobs table keeps results without their bytes.
        [preview] = [block for block in answer.content if isinstance(block, ImageContent)]
        assert preview.mime_type == collected["images"][0]["preview"]["mime_type"]
        with Image.open(io.BytesIO(base64.b64decode(preview.data))) as shown:
            assert shown.size == (
                collected["images"][0]["preview"]["width"],
                collected["images"][0]["preview"]["height"],
            )
        [(kept,)] = rows(
            cluster.database_url, f"SELECT length(result) FROM jobs WHERE id = '{handle['job_id']}'"
        )
        assert isinstance(kept, int) and kept < 5_000, kept

        cluster.fake.delay_s = 60.0
        handle, starter = await cluster.start_job(client, "long")
        await anyio.sleep(0.5)  # the request has reached the provider
        await cluster.next_goes_to_other_than(client, starter)
        started = time.monotonic()
        cancelled = structured(await client.call_tool("cancel_job", {"job_id": handle["job_id"]}))
        assert cluster.last != starter, "cancel_job ran on the other replica"
        assert cancelled["status"] == "cancelled"
        assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while not cluster.fake.disconnects:
        assert time.monotonic() < deadline, "the provider never saw the running replica's connection close"
        await anyio.sleep(0.05)
    assert cluster.fake.disconnects == ["/v1/images/generations"]


async def test_a_replica_killed_mid_job_leaves_a_failed_job_and_the_other_serves(cluster: Cluster) -> None:
    cluster.fake.delay_s = 120.0
    async with cluster.client() as client:
        handle, victim = await cluster.start_job(client, "doomed")
        await anyio.sleep(0.5)
        cluster.replicas[victim].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await anyio.sleep(1.5)  # the balancer's health checks (every 0.5 s, down after 2) take it out
        error = None
        while error is None:  # each get_job waits up to 25 s for the job to change
            result = await client.call_tool("get_job", {"job_id": handle["job_id"], "wait_seconds": 25})
            assert time.monotonic() - killed < 30, "the job was not reported failed within 30 s"
            if result.is_error:
                error = " ".join(block.text for block in result.content if isinstance(block, TextContent))
        assert STOPPED in error
        assert time.monotonic() - killed < 30
        survivor = structured(
            await client.call_tool("generate_image", {"prompt": "still here", "size": "64x64"})
        )
        assert cluster.last != victim
    deadline = time.monotonic() + 5  # the survivor's own job is written as finished just after it answers
    while rows(cluster.database_url, "SELECT COUNT(*) FROM jobs WHERE state = 'running'") != [(0,)]:
        assert time.monotonic() < deadline, "a job was left running"
        await anyio.sleep(0.1)
    assert rows(cluster.database_url, "SELECT id FROM images") == [(survivor["images"][0]["id"],)]
    assert rows(cluster.database_url, f"SELECT outcome FROM calls WHERE job_id = '{handle['job_id']}'") == [
        ("interrupted",)
    ], "its usage is settled as interrupted, not left pending"
    assert len(bucket_objects()) == 1


async def test_200_concurrent_calls_through_the_balancer_lose_nothing(cluster: Cluster) -> None:
    results: list[dict[str, Any]] = []
    async with cluster.client() as client:

        async def one(index: int) -> None:
            arguments = {"prompt": f"call {index}", "size": "64x64", "seed": index}
            results.append(structured(await client.call_tool("generate_image", arguments)))

        async with anyio.create_task_group() as group:
            for index in range(200):
                group.start_soon(one, index)
    assert cluster.replicas_seen == {"r0", "r1"}
    indexed = {row[0]: row[1] for row in rows(cluster.database_url, "SELECT id, sha256 FROM images")}
    assert len(indexed) == 200 == len({r["images"][0]["id"] for r in results})
    objects = bucket_objects()
    assert len(objects) == 200
    for key, data in objects.items():
        image_id = key.rsplit("/", 1)[-1].split(".")[0]
        assert indexed[image_id] == hashlib.sha256(data).hexdigest()


async def test_isolation_holds_across_replicas(cluster: Cluster) -> None:
    async with cluster.client(ALICE) as alice, cluster.client(BOB) as bob:
        made = structured(await alice.call_tool("generate_image", {"prompt": "alice's", "size": "64x64"}))
        uri = made["images"][0]["uri"]
        refused_on: set[str] = set()
        listed_on: set[str] = set()
        read_on: set[str] = set()
        for turn in range(8):  # until each request has been answered by both replicas
            if turn % 2:
                await bob.list_resources()  # shift the round robin by one
            with pytest.raises(MCPError, match="no such image in the store"):
                await bob.read_resource(uri)
            refused_on.add(cluster.last)
            assert [r.uri for r in (await bob.list_resources()).resources] == []
            listed_on.add(cluster.last)
            async with cluster.client(ALICE) as fresh:  # a client caches what it read (cache hints)
                assert (await fresh.read_resource(uri)).contents
            read_on.add(cluster.last)
    assert refused_on == listed_on == read_on == {"r0", "r1"}


async def test_a_postgres_restart_is_survived_by_both_replicas(cluster: Cluster, postgres: Postgres) -> None:
    postgres.stop()
    postgres.start()
    cluster.fake.delay_s = 1.0
    async with cluster.client() as client:
        runners: set[str] = set()
        jobs_run = 0
        for _ in range(4):  # until a job has run on each replica, collected on the other
            if runners:
                await cluster.next_goes_to_other_than(client, next(iter(runners)))
            handle, runner = await cluster.start_job(client, "after")
            jobs_run += 1
            runners.add(runner)
            await cluster.next_goes_to_other_than(client, runner)
            done = structured(
                await client.call_tool("get_job", {"job_id": handle["job_id"], "wait_seconds": 30})
            )
            assert cluster.last != runner
            assert done["images"], "the job board reconnected and the result came through"
            if runners == {"r0", "r1"}:
                break
    assert runners == {"r0", "r1"}
    assert rows(cluster.database_url, "SELECT COUNT(*) FROM images") == [(jobs_run,)]


async def test_the_rate_limit_is_exact_across_replicas(postgres: Postgres) -> None:
    from mcp_imagegen import database
    from mcp_imagegen.errors import LimitError
    from mcp_imagegen.server.shared_limits import SharedRateLimiter

    url = postgres.new_database()
    pools = [await database.connect(url), await database.connect(url)]
    limiters = [SharedRateLimiter(pool, 6) for pool in pools]
    outcomes: list[bool] = []

    async def call(index: int) -> None:
        try:
            await limiters[index % 2].admit("alice")
        except LimitError:
            outcomes.append(False)
        else:
            outcomes.append(True)

    async with anyio.create_task_group() as group:
        for index in range(20):
            group.start_soon(call, index)
    assert outcomes.count(True) == 6
    # Both replicas see how long alice waits (her oldest call in the window frees in about 60 s).
    waits = [await limiter.wait_s("alice") for limiter in limiters]
    assert all(55 < wait <= 60 for wait in waits), waits
    assert await limiters[1].wait_s("bob") == 0.0
    await limiters[0].admit("bob")  # someone else is not limited by alice's calls
    for pool in pools:
        await pool.close()


async def test_tasks_and_usage_are_the_same_on_both_replicas(cluster: Cluster) -> None:
    """A task created on one replica is polled with tasks/get on both until it completes; usage
    reads the same ledger everywhere."""
    cluster.fake.delay_s = 2.0
    tasks = TasksClient()
    async with cluster.client(extensions=[tasks]) as client:
        result = await client.call_tool("generate_image", {"prompt": "as a task", "provider": "openai"})
        assert structured(result)["images"], result.content
        assert len(tasks.created) == 1
        polled_on = {replica for what, replica in cluster.served if what == "tasks/get"}
        assert polled_on == {"r0", "r1"}, cluster.served
        reports = []
        for _ in range(4):
            report = structured(await client.call_tool("get_usage", {}))
            reports.append((cluster.last, report["principal"], report["calls"], report["lines"][0]["images"]))
    assert {replica for replica, *_ in reports} == {"r0", "r1"}
    assert {tuple(facts) for _, *facts in reports} == {("alice", 1, 1)}, "one call, one image, on both"
