"""Bursts of concurrent `generate_image` calls against a provider that takes 1 s, through HAProxy
in front of 1 and then 2 replicas on SeaweedFS + PostgreSQL (all real, on loopback): wall time
and p95 per call. The floor is the provider's own second: a burst can finish no sooner.

Run: `python -m benchmarks.replicas [--bursts 64,256]`.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import served
from tests.fakes.loopback import free_port
from tests.fakes.openai_images import FakeOpenAIImages
from tests.services import BUCKET, HAProxy, scratch_servers
from tests.test_replicas import start_replica, wait_until_up

PROVIDER_S = 1.0
TOKEN = "bench-token-0123456789"


async def burst(url: str, calls: int) -> tuple[float, float, int]:
    """Wall seconds, p95 seconds per call, and how many failed."""
    latencies: list[float] = []
    failed = 0
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(60, read=300)
    )
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:

        async def one(index: int) -> None:
            nonlocal failed
            started = time.perf_counter()
            result = await client.call_tool(
                "generate_image", {"prompt": f"call {index}", "size": "1024x1024"}
            )
            latencies.append(time.perf_counter() - started)
            failed += bool(result.is_error)

        await client.call_tool("generate_image", {"prompt": "warm-up", "size": "1024x1024"})
        latencies.clear()
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for index in range(calls):
                group.start_soon(one, index)
        wall = time.perf_counter() - started
    return wall, statistics.quantiles(latencies, n=20)[-1], failed


async def main(bursts: list[int]) -> None:
    with (
        scratch_servers() as (root, postgres, seaweedfs),
        served(FakeOpenAIImages(delay_s=PROVIDER_S)) as fake,
    ):
        env = {
            **seaweedfs.environment(),
            "IMAGEGEN_STORE_URL": f"s3://{BUCKET}/{secrets.token_hex(4)}",
            "IMAGEGEN_DATABASE_URL": postgres.new_database(),
            "IMAGEGEN_STORE_DIR": str(root / "unused"),
            "IMAGEGEN_AUTH_TOKENS": f"bench:{TOKEN}",
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
            "IMAGEGEN_LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": fake.api_key,
            "OPENAI_BASE_URL": f"{fake.url}/v1",
        }
        print(f"provider: {PROVIDER_S:.1f} s per call (the floor of any burst)")
        for count in (1, 2):
            ports = [free_port() for _ in range(count)]
            processes = [start_replica(port, env, root / f"replica-{port}.log") for port in ports]
            (root / f"lb{count}").mkdir()
            balancer = HAProxy(root / f"lb{count}", ports)
            balancer.start()
            try:
                wait_until_up(balancer.url, count)
                for calls in bursts:
                    wall, p95, failed = await burst(balancer.url, calls)
                    figures = f"wall {wall:5.2f} s, p95 {p95:5.2f} s, failed {failed}"
                    print(f"{count} replica(s), {calls:>3} calls at once: {figures}")
            finally:
                balancer.stop()
                for process in processes:
                    process.terminate()
                    process.wait(15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bursts", default="64,256", help="calls per burst, comma-separated")
    arguments = parser.parse_args()
    anyio.run(main, [int(count) for count in arguments.bursts.split(",")])
