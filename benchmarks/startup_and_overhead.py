"""Print cold-start and per-call figures (ARCHITECTURE.md, performance budget).

1. Cold start: spawn `python -m mcp_imagegen` over stdio and time until the `tools/list`
   answer arrives (median of several runs), next to spawning `python -c "import mcp.server"`.
2. Per-call overhead of `generate_image` at 1024x1024 through an in-memory MCP client,
   against a zero-latency loopback fake that answers with a precomputed reply. The raw
   HTTP round trip to the fake is measured too and subtracted. Two images are used: a
   flat one that fits the inline budget as it is, and a noisy one (about the size of a
   real photo PNG) whose preview must be re-encoded.

Run: `python benchmarks/startup_and_overhead.py [--runs 7] [--calls 40]`
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import anyio
import httpx2
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.connect import LEGACY_HANDSHAKE, exchange_until
from tests.fakes.loopback import LoopbackServer

LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def spawn_to_tools_list(store: str) -> float:
    env = {**os.environ, "IMAGEGEN_STORE_DIR": store, "IMAGEGEN_LOG_LEVEL": "WARNING"}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_imagegen"],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    exchange_until(process, [*LEGACY_HANDSHAKE, LIST_TOOLS], reply_id=2)
    elapsed = time.perf_counter() - start
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=10)
    return elapsed


def spawn_import_baseline() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp.server"], check=True)
    return time.perf_counter() - start


def median_of(runs: int, measure: Callable[[], float]) -> float:
    measure()  # warm the OS file cache
    return statistics.median(measure() for _ in range(runs))


def reply_with(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    body = {
        "created": 1,
        "data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}],
        "usage": {"total_tokens": 1, "input_tokens": 1, "output_tokens": 1},
    }
    return json.dumps(body).encode()


def flat_image() -> Image.Image:
    image = Image.new("RGB", (1024, 1024), (30, 90, 160))
    ImageDraw.Draw(image).ellipse((256, 256, 768, 768), fill=(240, 200, 40))
    return image


def noisy_image() -> Image.Image:
    return Image.merge("RGB", [Image.effect_noise((1024, 1024), 30).convert("L") for _ in range(3)])


async def per_call_ms(reply: bytes, calls: int) -> tuple[float, float, int]:
    """Median ms of a generate_image call, median ms of the raw fake round trip, image bytes."""
    from mcp import Client

    from mcp_imagegen.config import load_settings
    from mcp_imagegen.server.app import build_server

    async def images(request: Request) -> Response:
        await request.body()
        return Response(reply, media_type="application/json")

    fake = Starlette(routes=[Route("/v1/images/generations", images, methods=["POST"])])
    with LoopbackServer(fake) as server, tempfile.TemporaryDirectory() as store:
        os.environ.update(
            OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"{server.url}/v1", IMAGEGEN_STORE_DIR=store
        )
        async with httpx2.AsyncClient() as http:
            raw = []
            for _ in range(calls):
                start = time.perf_counter()
                await http.post(f"{server.url}/v1/images/generations", json={"model": "m", "prompt": "p"})
                raw.append(time.perf_counter() - start)
        async with Client(build_server(load_settings())) as client:
            await client.call_tool("generate_image", {"prompt": "warm up"})
            timings = []
            for _ in range(calls):
                start = time.perf_counter()
                result = await client.call_tool("generate_image", {"prompt": "bench", "size": "1024x1024"})
                timings.append(time.perf_counter() - start)
                assert not result.is_error, result.content
    image_bytes = len(base64.b64decode(json.loads(reply)["data"][0]["b64_json"]))
    return statistics.median(timings) * 1000, statistics.median(raw) * 1000, image_bytes


def main() -> None:
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        ours = median_of(args.runs, lambda: spawn_to_tools_list(store))
    baseline = median_of(args.runs, spawn_import_baseline)
    print(f"cold start, spawn to tools/list (stdio), median of {args.runs}: {ours * 1000:.0f} ms")
    print(f"baseline, spawn python -c 'import mcp.server', median of {args.runs}: {baseline * 1000:.0f} ms")
    print(f"cold start over baseline: {(ours / baseline - 1) * 100:+.0f}%")
    for label, image in (("flat 1024x1024 PNG", flat_image()), ("noisy 1024x1024 PNG", noisy_image())):
        call_ms, raw_ms, size = anyio.run(per_call_ms, reply_with(image), args.calls)
        overhead = call_ms - raw_ms
        print(f"generate_image, {label} ({size / 1e6:.2f} MB), {args.calls} calls: median {call_ms:.1f} ms")
        print(f"    fake round trip {raw_ms:.1f} ms; server overhead {overhead:.1f} ms")


if __name__ == "__main__":
    main()
