"""Print figures for a shared server under one person's abuse (issue 28), each next to its floor
measured in the same run, on a real `mcp-imagegen --transport http` process with two tokens.

1. `/healthz` latency (p50, p99, max over `--probes` sequential probes): idle (the floor), then
   while bob floods the server from `--flooders` concurrent sessions (in a process of their own)
   with calls that are refused: every other one holds 100,000 unknown argument names, under a
   rate limit. Target: p99 under 50 ms.
2. Peak memory during a burst of `--burst` concurrent edits, each a maximum-size input (an
   8192x8192 PNG, 67 M pixels, about 0.3 MB to send), over the server's idle size (VmHWM and VmRSS
   from /proc), next to the size of one decoded input (the floor: 192 MiB as RGB).

Run: `python benchmarks/shared_server_abuse.py [--probes 300] [--flooders 8] [--burst 8] [--rate-limit 30]`
"""

from __future__ import annotations

import argparse
import base64
import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.conftest import served
from tests.connect import http_server_process
from tests.fakes.openai_images import FakeOpenAIImages

TOKENS = {name: f"{name}-token-0123456789abcdef" for name in ("alice", "bob")}


def drain(process: subprocess.Popen[bytes]) -> None:
    """Read the server's stderr as it comes (an undrained pipe fills and blocks the server)."""
    stream = process.stderr
    assert stream is not None
    threading.Thread(target=lambda: [None for _ in iter(stream.readline, b"")], daemon=True).start()


def proc_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


async def probe(url: str, count: int) -> list[float]:
    timings: list[float] = []
    async with httpx2.AsyncClient(timeout=120) as client:
        for _ in range(count):
            start = time.perf_counter()
            reply = await client.get(url + "/healthz")
            timings.append((time.perf_counter() - start) * 1000)
            assert reply.status_code == 200
            await anyio.sleep(0.01)
    return timings


def summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.1f} ms  p99 {p99:6.1f} ms  max {ordered[-1]:6.1f} ms"


async def session_call(url: str, token: str, name: str, arguments: dict[str, Any]) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60, read=600)
    )
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        await client.call_tool(name, arguments)


async def flood(url: str, counts: Any) -> None:
    """One flooding session after another: each call counts in `counts[0]`, each refused unread at
    the door (a JSON-RPC error at HTTP 429 or 400, raised by the client) in `counts[1]`."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    garbage: dict[str, Any] = {"prompt": "a cat", **{f"unknown_{i}": i for i in range(100_000)}}
    headers = {"Authorization": f"Bearer {TOKENS['bob']}"}
    while True:
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=600))
        try:
            async with http, Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
                while True:
                    counts[0] += 1
                    await client.call_tool("generate_image", garbage if counts[0] % 2 else {"prompt": "x"})
        except Exception:  # noqa: BLE001 - refused at the door: the client raised; start another session
            counts[1] += 1


def flooder(url: str, sessions: int, counts: Any) -> None:
    """A process of its own: building 2 MB calls would otherwise stall the probe's own loop."""

    async def all_sessions() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(sessions):
                group.start_soon(flood, url, counts)

    anyio.run(all_sessions)


async def run(probes: int, flooders: int, burst: int, rate_limit: int) -> None:
    with served(FakeOpenAIImages()) as fake, tempfile.TemporaryDirectory() as folder:
        fake.output_size = (64, 64)
        env = {
            "IMAGEGEN_STORE_DIR": str(Path(folder) / "store"),
            "OPENAI_API_KEY": fake.api_key,
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "IMAGEGEN_AUTH_TOKENS": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": str(rate_limit),
        }
        with http_server_process("http", env) as (url, process):
            drain(process)
            await probe(url, 20)  # warm
            idle = await probe(url, probes)
            print(f"1. /healthz idle (floor):            {summary(idle)}")
            spawn = multiprocessing.get_context("spawn")
            counts = spawn.Array("q", 2)
            attacker = spawn.Process(target=flooder, args=(url, flooders, counts), daemon=True)
            attacker.start()
            await anyio.sleep(3.0)
            flooded = await probe(url, probes)
            attacker.terminate()
            attacker.join()
            print(
                f"   /healthz while bob floods ({flooders} sessions, rate limit {rate_limit or 'none'}, "
                f"{counts[0]} calls, "
                f"{counts[1]} of them refused unread at the door): "
                f"{summary(flooded)}"
            )

        buffer = io.BytesIO()
        Image.new("RGB", (8192, 8192), (12, 80, 140)).save(buffer, format="PNG")
        image = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        env["IMAGEGEN_RATE_LIMIT_PER_MINUTE"] = "0"
        env["IMAGEGEN_STORE_DIR"] = str(Path(folder) / "store2")
        with http_server_process("http", env) as (url, process):
            drain(process)
            await probe(url, 5)
            rest = proc_mib(process.pid, "VmRSS")
            start = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(burst):
                    group.start_soon(
                        session_call, url, TOKENS["bob"], "edit_image", {"image": image, "prompt": "red"}
                    )
            wall = time.perf_counter() - start
            peak = proc_mib(process.pid, "VmHWM")
            print(
                f"2. {burst} concurrent edits of an 8192x8192 input "
                f"({len(buffer.getvalue()) / 1e6:.2f} MB each) "
                f"in {wall:.1f} s: peak {peak:.0f} MiB, {peak - rest:.0f} MiB over idle {rest:.0f} MiB; "
                f"floor: one decoded input is {8192 * 8192 * 3 / 2**20:.0f} MiB, all {burst} at once "
                f"{burst * 8192 * 8192 * 3 / 2**20:.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--flooders", type=int, default=8)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--rate-limit", type=int, default=30, help="calls a minute; 0: none")
    args = parser.parse_args()
    anyio.run(run, args.probes, args.flooders, args.burst, args.rate_limit)


if __name__ == "__main__":
    main()
