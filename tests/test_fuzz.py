"""A seeded fuzz run against a running shared server over Streamable HTTP: a few thousand tool calls
with mangled arguments and resource reads of mangled URIs. Whatever arrives, the server must answer
with an ordinary error (never an internal error, never a 5xx, never a crash's bare message), keep
serving, log no secret, and store nothing for a call it refused.

Seeded (20261207), so a failure repeats; FUZZ_CALLS changes the number of calls.
"""

from __future__ import annotations

import os
import random
import string
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from tests.fakes.openai_images import FakeOpenAIImages
from tests.test_hardening import TOKENS, as_user, shared_server, text_of

pytestmark = pytest.mark.anyio
SEED = 20261207
CALLS = int(os.environ.get("FUZZ_CALLS", "2000"))
READS = 600
CALL_LIMIT_S = 20.0
"""No fuzzed call may take longer (the slowest valid one here waits a few seconds at most)."""
NAMES = [*string.ascii_letters, "_", "-", ".", "é", "☃", "\u202e", "\x00", " "]


def fuzz_text(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return ""
    if kind == 1:
        return "".join(rng.choice(NAMES) for _ in range(rng.randrange(1, 40)))
    if kind == 2:
        return "imagegen://images/" + "".join(
            rng.choice("0123456789abcdef/.%") for _ in range(rng.randrange(24))
        )
    if kind == 3:
        return rng.choice(["/etc/passwd", "../../store", "file:///", "http://169.254.169.254/", "data:,x"])
    if kind == 4:
        return "A" * rng.choice([1, 1000, 40_000])
    return rng.choice(["auto", "high", "xhigh", "1024x1024", "16:9", "png", "svg", "transparent", "x4"])


def fuzz_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 3, 10**30, -(10**30), 2**63])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, 3.14])
    if kind in (4, 5):
        return fuzz_text(rng)
    if kind in (6, 7):
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {fuzz_text(rng)[:20]: fuzz_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def fuzz_arguments(rng: random.Random, schema: dict[str, Any]) -> dict[str, Any]:
    properties = list(schema.get("properties", {}))
    arguments: dict[str, Any] = {}
    for _ in range(rng.randrange(5)):
        name = rng.choice(properties) if properties and rng.random() < 0.7 else fuzz_text(rng)[:30]
        arguments[name] = fuzz_value(rng)
    return arguments


async def test_fuzzed_calls_and_uris_get_ordinary_errors_and_store_nothing(
    fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    fake_openai.output_size = (16, 16)
    crashes: list[str] = []
    internal: list[str] = []
    hung: list[str] = []
    made = 0
    with shared_server(fake_openai, tmp_path, IMAGEGEN_RATE_LIMIT_PER_MINUTE="0") as server:
        async with as_user(server, "bob") as bob:
            tools = {tool.name: tool for tool in (await bob.list_tools()).tools}
            names = sorted(tools)
            for _ in range(CALLS):
                name = rng.choice(names)
                arguments = fuzz_arguments(rng, tools[name].input_schema)
                try:
                    with anyio.fail_after(CALL_LIMIT_S):
                        result = await bob.call_tool(name, arguments)
                except TimeoutError:
                    hung.append(f"{name} {arguments!r:.300}")
                    break
                except MCPError as exc:
                    if exc.error.code == INTERNAL_ERROR:
                        internal.append(f"{name} {arguments!r:.200}: {exc.error.message}")
                    continue
                if result.is_error and text_of(result).strip() == f"Error executing tool {name}":
                    crashes.append(f"{name} {arguments!r:.200}")
                elif not result.is_error:
                    made += len((result.structured_content or {}).get("images", []) or [])
            for _ in range(READS):
                uri = fuzz_text(rng) if rng.random() < 0.5 else "imagegen://images/" + fuzz_text(rng)
                try:
                    with anyio.fail_after(CALL_LIMIT_S):
                        await bob.read_resource(uri)
                except TimeoutError:
                    hung.append(f"read {uri!r:.300}")
                    break
                except MCPError as exc:
                    if exc.error.code == INTERNAL_ERROR:
                        internal.append(f"read {uri!r:.200}: {exc.error.message}")
                except (ValueError, TypeError):
                    pass  # the client itself refuses a string that is not a URI
            assert httpx2.get(f"{server.url}/healthz").status_code == 200
        stored = [path for path in server.store.rglob("*") if path.is_file() and path.parent.name != "store"]
        images = [path for path in stored if path.suffix in (".png", ".jpeg", ".webp", ".gif")]
        log = server.stop()
    assert not hung, hung
    assert not internal, internal[:5]
    assert not crashes, crashes[:5]
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
    assert all(token not in log for token in TOKENS.values())
    assert fake_openai.api_key not in log
    # Inputs a successful edit stored are images too; only calls that succeeded stored anything.
    assert made <= len(images) <= 3 * made + 1, (made, len(images))
