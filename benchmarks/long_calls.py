"""Print figures for long calls (ARCHITECTURE.md performance budget; issue: long-running calls).

1. Concurrency: N `generate_image` calls at once through one in-memory MCP client, against
   a loopback fake that takes `--delay` seconds per request and answers with a precomputed
   1024x1024 PNG. Budget: 64 calls to a 1 s provider finish in about 1 s. Peak RSS growth
   is printed next to it.
2. Handle latency: how long `generate_image(wait_seconds=0)` takes to answer with a job id
   while the provider is still working, and how long `get_job` then takes once it is done.
3. Heartbeat cadence: the largest gap between progress notifications during one slow call
   with the default heartbeat.
4. Bursts over Streamable HTTP with default settings but the rate limit (issue "Performance at
   realistic sizes": 64 calls to a 1 s provider in <= 1.5 s, 256 in <= 2.5 s), each next to its
   floor measured in the same run: the same number of requests sent straight to the fake at once.
5. The first burst again with high-entropy 1024x1024 images (2.9 MB of PNG each, like photos):
   wall time and the server's peak memory over its size once warm (issue: <= 300 MiB of growth).

Run: `python benchmarks/long_calls.py [--calls 64] [--delay 1.0] [--bursts 64,256]`
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import anyio
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fakes.loopback import LoopbackServer


def png_reply() -> bytes:
    image = Image.new("RGB", (1024, 1024), (30, 90, 160))
    ImageDraw.Draw(image).ellipse((256, 256, 768, 768), fill=(240, 200, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    body = {"created": 1, "data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]}
    return json.dumps(body).encode()


def slow_fake(reply: bytes, delay: list[float]) -> Starlette:
    async def images(request: Request) -> Response:
        await request.body()
        await anyio.sleep(delay[0])
        return Response(reply, media_type="application/json")

    return Starlette(routes=[Route("/v1/images/generations", images, methods=["POST"])])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(calls: int, delay_s: float) -> None:
    from mcp import Client

    from mcp_imagegen.config import load_settings
    from mcp_imagegen.server.app import build_server

    delay = [delay_s]
    with LoopbackServer(slow_fake(png_reply(), delay)) as server, tempfile.TemporaryDirectory() as store:
        os.environ.update(
            OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"{server.url}/v1", IMAGEGEN_STORE_DIR=store
        )
        async with Client(build_server(load_settings())) as client:
            delay[0] = 0
            await client.call_tool("generate_image", {"prompt": "warm up"})
            delay[0] = delay_s
            rss_before = peak_rss_mb()
            wall = await burst(client, calls)
            print(f"{calls} concurrent calls to a {delay_s:g} s provider: {wall:.2f} s wall")
            print(f"    peak RSS growth {peak_rss_mb() - rss_before:.0f} MB (peak {peak_rss_mb():.0f} MB)")

            handle_ms, collect_ms = [], []
            for _ in range(5):
                start = time.perf_counter()
                handle = await client.call_tool("generate_image", {"prompt": "handle", "wait_seconds": 0})
                handle_ms.append((time.perf_counter() - start) * 1000)
                job_id = (handle.structured_content or {})["job_id"]
                await anyio.sleep(delay_s + 0.2)
                start = time.perf_counter()
                done = await client.call_tool("get_job", {"job_id": job_id})
                collect_ms.append((time.perf_counter() - start) * 1000)
                assert (done.structured_content or {})["status"] == "succeeded", done.content
            print(f"wait_seconds=0 handle: median {statistics.median(handle_ms):.1f} ms")
            print(f"get_job of a finished job: median {statistics.median(collect_ms):.1f} ms")

            delay[0] = 9.0
            stamps: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                stamps.append(time.perf_counter())

            start = time.perf_counter()
            await client.call_tool("generate_image", {"prompt": "slow"}, progress_callback=on_progress)
            gaps = [later - earlier for earlier, later in zip([start, *stamps], stamps, strict=False)]
            print(f"one 9 s call: {len(stamps)} progress notifications, largest gap {max(gaps):.2f} s")


async def http_bursts(sizes: list[int], delay_s: float) -> None:
    """Bursts of `generate_image` through a real server process over Streamable HTTP, defaults only."""
    import httpx2

    from tests.connect import http_server

    delay = [delay_s]
    with LoopbackServer(slow_fake(png_reply(), delay)) as fake, tempfile.TemporaryDirectory() as store:
        env = {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "IMAGEGEN_STORE_DIR": store,
            # The one setting changed: HTTP's default of 60 calls a minute per principal is a policy
            # against runaway agents, not a concurrency limit, and a burst of 64 would hit it.
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        }
        async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=None)) as raw:
            for size in sizes:
                post = functools.partial(raw.post, f"{fake.url}/v1/images/generations", json={"p": 1})
                start = time.perf_counter()
                async with anyio.create_task_group() as group:
                    for _ in range(size):
                        group.start_soon(post)
                floor = time.perf_counter() - start
                with http_server("http", env) as url:
                    wall = await burst_over_http(url, size)
                print(
                    f"{size} concurrent calls over Streamable HTTP, {delay_s:g} s provider, defaults: "
                    f"{wall:.2f} s wall; floor (the fake alone) {floor:.2f} s; ratio {wall / floor:.2f}"
                )


def detailed_burst(size: int, delay_s: float) -> None:
    """`size` calls at once over Streamable HTTP whose provider answers with a high-entropy
    1024x1024 PNG (2.9 MB, like a photo): wall time, and how much the server process's peak memory
    (VmHWM) grows over its size once warm. The fake runs in a process of its own."""
    from benchmarks.reply_server import ReplyServer
    from benchmarks.startup_and_overhead import noisy_image, process_memory_mb, reply_with
    from tests.connect import http_server_process

    with ReplyServer(reply_with(noisy_image()), delay_s) as fake, tempfile.TemporaryDirectory() as store:
        env = {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "IMAGEGEN_STORE_DIR": store,
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",  # as in http_bursts
        }
        with http_server_process("http", env) as (url, server):
            warm: list[float] = []
            memory = functools.partial(process_memory_mb, server.pid, "VmRSS")
            wall = anyio.run(burst_over_http, url, size, lambda: warm.append(memory()))
            peak = process_memory_mb(server.pid, "VmHWM")
    print(
        f"{size} concurrent calls over Streamable HTTP returning high-entropy 1024x1024 PNGs (2.9 MB), "
        f"{delay_s:g} s provider: {wall:.2f} s wall; server peak memory {peak:.0f} MiB, "
        f"{peak - warm[0]:+.0f} MiB over its {warm[0]:.0f} MiB once warm"
    )


async def burst_over_http(url: str, size: int, warmed: Callable[[], object] = lambda: None) -> float:
    """Seconds for `size` concurrent generate_image calls through one client, after a warm-up call
    (and `warmed()`, called between the two)."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(timeout=120, limits=httpx2.Limits(max_connections=None))
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        await client.call_tool("generate_image", {"prompt": "warm up"})
        warmed()
        return await burst(client, size)


async def burst(client: Any, size: int) -> float:
    """Seconds for `size` generate_image calls made at once through `client`; all must succeed."""
    results: list[Any] = []

    async def one(index: int) -> None:
        results.append(await client.call_tool("generate_image", {"prompt": f"call {index}"}))

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for index in range(size):
            group.start_soon(one, index)
    wall = time.perf_counter() - start
    assert all(not result.is_error for result in results), results[0].content
    return wall


def main() -> None:
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--bursts", default="64,256", help="burst sizes over HTTP; empty to skip")
    args = parser.parse_args()
    anyio.run(run, args.calls, args.delay)
    sizes = [int(size) for size in args.bursts.split(",") if size.strip()]
    if sizes:
        anyio.run(http_bursts, sizes, args.delay)
        detailed_burst(sizes[0], args.delay)


if __name__ == "__main__":
    main()
