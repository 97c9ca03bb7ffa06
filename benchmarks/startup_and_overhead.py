"""Print cold-start and per-call figures (ARCHITECTURE.md, performance budget).

1. Cold start: spawn `python -m mcp_imagegen` over stdio and time until the `tools/list`
   answer arrives (median of several runs), next to spawning `python -c "import mcp.server"`.
2. Per-call overhead of `generate_image` at 1024x1024 through an in-memory MCP client,
   against a zero-latency loopback fake that answers with a precomputed reply. The raw
   HTTP round trip to the fake is measured too and subtracted. Three images are used: a
   flat one that fits the inline budget as it is, and noisy ones (like real photo PNGs) at
   1024x1024 and 3840x2160 whose previews must be re-encoded. Each prints the overhead next
   to a floor measured in the same run (one base64 decode, one PNG decode, one JPEG encode
   of the same image) and the server's peak memory, measured in a server process of its own over
   stdio (issue "Performance at realistic sizes").

Run: `python benchmarks/startup_and_overhead.py [--runs 25] [--calls 40]`
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.reply_server import ReplyServer
from tests.connect import LEGACY_HANDSHAKE, exchange_until

LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
MEMORY_CALLS = 8
"""Enough calls in a row for memory that one call frees but does not give back to show in the peak."""


@contextmanager
def stdio_server(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`python -m mcp_imagegen` over stdio for the length of the block; closing its stdin ends it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_imagegen"],
        env={**os.environ, "IMAGEGEN_LOG_LEVEL": "WARNING", **env},
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def spawn_to_tools_list(store: str) -> float:
    start = time.perf_counter()
    with stdio_server({"IMAGEGEN_STORE_DIR": store}) as process:
        exchange_until(process, [*LEGACY_HANDSHAKE, LIST_TOOLS], reply_id=2)
        return time.perf_counter() - start


def spawn_import_baseline() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp.server"], check=True)
    return time.perf_counter() - start


def cold_start(runs: int) -> tuple[float, float, float]:
    """Median seconds of our start and of the baseline's, and the median of their ratios, taken
    in pairs one after the other: on a shared machine the load drifts between runs, and a pair
    sees the same load, where two separate series do not."""
    with tempfile.TemporaryDirectory() as store:
        spawn_to_tools_list(store)  # warm the OS file cache
        spawn_import_baseline()
        pairs = [(spawn_to_tools_list(store), spawn_import_baseline()) for _ in range(runs)]
    ours = statistics.median(mine for mine, _ in pairs)
    baseline = statistics.median(base for _, base in pairs)
    return ours, baseline, statistics.median(mine / base for mine, base in pairs)


def server_memory_mb(reply: bytes, calls: int) -> tuple[float, float]:
    """The server's own memory, in a process of its own over stdio (the fake and the client live
    here): its resident size once ready, and its peak (VmHWM) after `calls` generate_image calls."""
    with ReplyServer(reply) as server, tempfile.TemporaryDirectory() as store:
        env = {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{server.url}/v1",
            "IMAGEGEN_STORE_DIR": store,
        }
        with stdio_server(env) as process:
            exchange_until(process, [*LEGACY_HANDSHAKE, LIST_TOOLS], reply_id=2)
            ready = process_memory_mb(process.pid, "VmRSS")
            for index in range(calls):
                call = {
                    "jsonrpc": "2.0",
                    "id": 10 + index,
                    "method": "tools/call",
                    "params": {"name": "generate_image", "arguments": {"prompt": f"call {index}"}},
                }
                answer = exchange_until(process, [call], reply_id=10 + index)[-1]
                assert not answer["result"].get("isError"), answer
            return ready, process_memory_mb(process.pid, "VmHWM")


def process_memory_mb(pid: int, field: str) -> float:
    """A memory figure of a running process from /proc (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


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


def noisy_image(size: tuple[int, int] = (1024, 1024)) -> Image.Image:
    """High entropy, like a real photo: a PNG of it is megabytes, as providers' images are."""
    return Image.merge("RGB", [Image.effect_noise(size, 30).convert("L") for _ in range(3)])


def codec_floor_ms(reply: bytes, max_side: int) -> float:
    """The issue's floor for one image: one base64 decode, one PNG decode (and the resize a preview
    of it needs), one JPEG encode, each with the fastest call the standard stack offers."""
    from mcp_imagegen.images import b64

    encoded = json.loads(reply)["data"][0]["b64_json"]
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        png = b64.decode(encoded)
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            scale = min(1.0, max_side / max(image.size))
            shown = (
                image
                if scale == 1.0
                else image.resize((round(image.width * scale), round(image.height * scale)), reducing_gap=2.0)
            )
            shown.save(io.BytesIO(), format="JPEG", quality=85)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


async def per_call_ms(reply: bytes, calls: int) -> tuple[float, float, int]:
    """Median ms of a generate_image call, median ms of the raw fake round trip, image bytes."""
    from mcp import Client

    from mcp_imagegen.config import load_settings
    from mcp_imagegen.server.app import build_server

    with ReplyServer(reply) as server, tempfile.TemporaryDirectory() as store:
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
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    ours, baseline, ratio = cold_start(args.runs)
    print(f"cold start, spawn to tools/list (stdio), median of {args.runs}: {ours * 1000:.0f} ms")
    print(f"baseline, spawn python -c 'import mcp.server', median of {args.runs}: {baseline * 1000:.0f} ms")
    print(
        f"cold start over baseline (median of {args.runs} pairs run back to back): {(ratio - 1) * 100:+.1f}%"
    )
    cases = (
        ("flat 1024x1024 PNG", flat_image(), args.calls),
        ("noisy 1024x1024 PNG", noisy_image(), args.calls),
        ("noisy 3840x2160 PNG", noisy_image((3840, 2160)), max(5, args.calls // 8)),
    )
    for label, image, calls in cases:
        reply = reply_with(image)
        call_ms, raw_ms, size = anyio.run(per_call_ms, reply, calls)
        overhead = call_ms - raw_ms
        floor = codec_floor_ms(reply, 1568)
        print(f"generate_image, {label} ({size / 1e6:.2f} MB), {calls} calls: median {call_ms:.1f} ms")
        print(
            f"    fake round trip {raw_ms:.1f} ms; server overhead {overhead:.1f} ms; floor (one base64 "
            f"decode, one PNG decode, one JPEG encode) {floor:.1f} ms; overhead/floor {overhead / floor:.2f}"
        )
        ready, peak = server_memory_mb(reply, MEMORY_CALLS)
        print(
            f"    server process (stdio), {MEMORY_CALLS} calls: {ready:.0f} MiB when ready, "
            f"peak {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
