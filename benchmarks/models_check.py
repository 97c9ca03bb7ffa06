"""Print the wall time of `mcp-imagegen models check` against loopback fakes of every provider with
a live list (OpenAI, Gemini, Vertex, Mistral, Scaleway), each answering after `--delay` seconds as
a distant service would, next to its floors measured in the same run: one provider alone, and the
sum of all of them asked one after another. Target: under 2 s with four providers and more, which
holds only if they are asked at once.

Also: what loading the model data adds to a cold start (importing `providers/model_data.py` and
parsing every vendor's `models.toml`), next to a bare `import mcp.server` (the floor the whole
server's cold start is held to: within +10%, measured by `startup_and_overhead.py`).

Run: `python benchmarks/models_check.py [--delay 0.5] [--runs 5]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import anyio
import httpx2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mcp_imagegen.config import load_settings
from mcp_imagegen.server import model_check
from tests.conftest import served
from tests.fakes.google_genai import FakeGoogle
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_images import FakeOpenAIImages


@contextmanager
def every_provider(delay_s: float, folder: str) -> Iterator[None]:
    with ExitStack() as stack:
        openai = stack.enter_context(served(FakeOpenAIImages(list_delay_s=delay_s)))
        google = stack.enter_context(served(FakeGoogle(list_delay_s=delay_s)))
        mistral = stack.enter_context(served(FakeMistral(list_delay_s=delay_s)))
        chat = stack.enter_context(served(FakeChat(list_delay_s=delay_s)))
        env = {
            "OPENAI_API_KEY": openai.api_key,
            "OPENAI_BASE_URL": f"{openai.url}/v1",
            "GEMINI_API_KEY": google.api_key,
            "GOOGLE_GEMINI_BASE_URL": google.url,
            "GOOGLE_CLOUD_PROJECT": google.project,
            "GOOGLE_OAUTH_ACCESS_TOKEN": google.access_token,
            "GOOGLE_VERTEX_BASE_URL": google.url,
            "MISTRAL_API_KEY": mistral.api_key,
            "MISTRAL_BASE_URL": mistral.url,
            "SCW_SECRET_KEY": chat.api_key,
            "SCALEWAY_BASE_URL": chat.url,
            "IMAGEGEN_STORE_DIR": folder,
        }
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


async def timed_check() -> tuple[float, int]:
    settings = load_settings()
    start = time.perf_counter()
    async with httpx2.AsyncClient(timeout=30) as client:
        findings = await model_check.check(settings, client)
    return time.perf_counter() - start, len(findings)


async def timed_one_by_one() -> float:
    """Each provider's list alone, one after another: the floor a sequential check would cost."""
    settings = load_settings()
    total = 0.0
    async with httpx2.AsyncClient(timeout=30) as client:
        from mcp_imagegen.providers.registry import ProviderRegistry

        registry = ProviderRegistry(settings, client)
        for spec in registry.specs:
            if spec.live_models is None or not registry.is_configured(spec.name):
                continue
            start = time.perf_counter()
            await spec.live_models(settings, client)
            total += time.perf_counter() - start
    return total


def cold_starts(codes: list[str], runs: int) -> list[float]:
    """The median seconds a fresh interpreter takes to run each of `codes` (start-up included),
    taken in turns so that the machine's drift falls on all of them alike."""
    timings: list[list[float]] = [[] for _ in codes]
    for _ in range(runs):
        for index, code in enumerate(codes):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            timings[index].append(time.perf_counter() - start)
    return [statistics.median(each) for each in timings]


WITHOUT_DATA = "import mcp.server, pydantic, mcp_imagegen.operations"
"""What every server imports anyway (the operation table and the provider seam's types)."""
WITH_DATA = WITHOUT_DATA + "; from mcp_imagegen.providers.model_data import shipped; shipped()"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--delay", type=float, default=0.5, help="each fake's answer delay, in seconds")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with TemporaryDirectory() as folder, every_provider(args.delay, str(Path(folder) / "store")):
        checks = [anyio.run(timed_check) for _ in range(args.runs)]
        sequential = anyio.run(timed_one_by_one)
    wall = statistics.median(seconds for seconds, _ in checks)
    providers = checks[0][1]
    print(
        f"models check, {providers} providers, each answering after {args.delay:.1f} s: median {wall:.2f} s "
        f"(floor: one provider {args.delay:.2f} s; asked one after another {sequential:.2f} s); target < 2 s"
    )
    bare, without, loaded = cold_starts(["import mcp.server", WITHOUT_DATA, WITH_DATA], args.runs * 3)
    print(
        f"model data: {(loaded - without) * 1000:.0f} ms to import and parse (on top of the seam types, "
        f"{(without - bare) * 1000:.0f} ms), next to a bare `import mcp.server` of {bare * 1000:.0f} ms "
        f"(+{(loaded - without) / bare * 100:.1f}%)"
    )


if __name__ == "__main__":
    main()
