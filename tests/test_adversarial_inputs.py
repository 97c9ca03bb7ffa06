"""Hostile and broken inputs through the MCP tool interface.

Each case must give a clear error naming the problem, write nothing (no file, no temp
file, no index row), send nothing to the provider, and leave the server answering the
next call. URL inputs are on for this suite, with only 127.0.0.1 (where the test's image
server listens) allowed among non-public networks; DNS names are answered by a fake
resolver so that "a public name resolving to a private address" can be staged offline.
"""

from __future__ import annotations

import base64
import ipaddress
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mcp_imagegen.config import load_settings
from mcp_imagegen.errors import InputError
from mcp_imagegen.images import fetch
from mcp_imagegen.server.app import build_server
from tests.conftest import png_bytes
from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio
MAX_INPUT_BYTES = 2_000_000
FAKE_DNS = {
    "images.example.test": ["127.0.0.1"],
    "intranet.example.test": ["10.20.30.40"],
    "metadata.example.test": ["169.254.169.254"],
    "rebind.example.test": ["127.0.0.1", "192.168.1.20"],
    "six.example.test": ["::1"],
}


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims to be `width` x `height` but carries almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_server() -> Starlette:
    async def cat(request: Request) -> Response:
        return Response(png_bytes((40, 30)), media_type="image/png")

    async def page(request: Request) -> Response:
        return Response(b"<html><body>not an image</body></html>", media_type="text/html")

    async def declared_huge(request: Request) -> Response:
        return Response(b"\0" * (MAX_INPUT_BYTES + 1), media_type="image/png")

    async def streamed_huge(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"\0" * 100_000

        return StreamingResponse(body(), media_type="image/png")

    async def slow(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"\0" * 10
                await anyio.sleep(0.2)

        return StreamingResponse(body(), media_type="image/png")

    async def not_found(request: Request) -> Response:
        return Response(b"gone", status_code=404)

    def redirect(target: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return RedirectResponse(target, status_code=302)

        return endpoint

    return Starlette(
        routes=[
            Route("/cat.png", cat),
            Route("/page.png", page),
            Route("/declared-huge.png", declared_huge),
            Route("/streamed-huge.png", streamed_huge),
            Route("/slow.png", slow),
            Route("/missing.png", not_found),
            Route("/to-private", redirect("http://10.0.0.5/x.png")),
            Route("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/")),
            Route("/to-ftp", redirect("ftp://files.example.test/x.png")),
            Route("/loop", redirect("/loop")),
            Route("/to-cat", redirect("/cat.png")),
        ]
    )


@pytest.fixture
def images_url() -> Iterator[str]:
    with LoopbackServer(image_server()) as server:
        yield server.url


@pytest.fixture
def hostile_env(
    fake_openai: FakeOpenAIImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes())
    (allowed / "escape.png").symlink_to(outside / "secret.png")
    (allowed / "dir-link").symlink_to(outside, target_is_directory=True)
    (allowed / "page.png").write_text("<html>hello</html>")
    (allowed / "truncated.png").write_bytes(png_bytes((300, 300), (10, 200, 90))[:150])
    (allowed / "bomb.png").write_bytes(png_header(40_000, 40_000))
    (allowed / "good.png").write_bytes(png_bytes((64, 48)))
    for name, value in {
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "IMAGEGEN_ALLOWED_DIRS": str(allowed),
        "IMAGEGEN_ALLOW_URL_INPUTS": "true",
        "IMAGEGEN_URL_ALLOWED_NETWORKS": "127.0.0.1/32",
        "IMAGEGEN_URL_TIMEOUT_SECONDS": "1",
        "IMAGEGEN_MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
        "IMAGEGEN_MAX_PIXELS": str(4096 * 4096),
    }.items():
        monkeypatch.setenv(name, value)
    real_resolve = fetch.resolve_host

    async def fake_resolve(host: str, port: int) -> list[fetch.IPAddress]:
        if host in FAKE_DNS:
            return [ipaddress.ip_address(address) for address in FAKE_DNS[host]]
        if host.endswith(".test"):
            raise InputError(f"the image URL's host {host!r} could not be resolved")
        return await real_resolve(host, port)

    monkeypatch.setattr(fetch, "resolve_host", fake_resolve)
    return {"allowed": allowed, "outside": outside, "store": tmp_path / "store"}


def cases(paths: dict[str, Path], images: str) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, expected error text): at least 40 of them."""
    allowed, outside = paths["allowed"], paths["outside"]
    port = images.rsplit(":", 1)[1]
    outside_folder = "outside the folders this server may read"
    edit = "edit_image"

    def image(reference: str) -> tuple[str, dict[str, Any]]:
        return edit, {"image": reference, "prompt": "make it blue"}

    table: list[tuple[tuple[str, dict[str, Any]], str]] = [
        # Local paths
        (image(str(outside / "secret.png")), outside_folder),
        (image(str(allowed / ".." / "outside" / "secret.png")), outside_folder),
        (image(str(allowed / "escape.png")), outside_folder),
        (image(str(allowed / "dir-link" / "secret.png")), outside_folder),
        (image("/etc/passwd"), outside_folder),
        (image("~/.ssh/id_rsa"), outside_folder),  # existence outside the folders is not told
        (image("/proc/self/environ"), outside_folder),
        (image(str(allowed / "missing.png")), "does not exist"),
        (image(str(allowed)), "is not a file"),
        (image("./relative.png"), "is relative; give an absolute path"),
        (image(str(allowed / "nul\0.png")), "contains a NUL character"),
        (image("C:\\Windows\\win.ini"), "is a Windows path"),
        (image("\\\\fileserver\\share\\cat.png"), "network paths"),
        # file:// URIs
        (image("file:///etc/passwd"), outside_folder),
        (image("file://localhost/etc/shadow"), outside_folder),
        (image("file://fileserver/share/cat.png"), "must point at this machine"),
        (image((outside / "secret.png").as_uri()), outside_folder),
        (image(f"file://{allowed}/..%2F..%2Foutside/secret.png"), outside_folder),
        # URLs
        (image(f"http://127.1.2.3:{port}/cat.png"), "a loopback address"),
        (image(f"http://[::1]:{port}/cat.png"), "a loopback address"),
        (image(f"http://[::ffff:127.0.0.2]:{port}/cat.png"), "a loopback address"),
        (image("http://2130706434/cat.png"), "a loopback address"),
        (image("http://0.0.0.0/cat.png"), "a private or reserved address"),
        (image("http://10.1.2.3/cat.png"), "a private or reserved address"),
        (image("http://192.168.0.1/router.png"), "a private or reserved address"),
        (image("http://100.100.100.200/latest/meta-data"), "a private or reserved address"),
        (image("http://169.254.169.254/latest/meta-data/"), "a link-local address"),
        (image("http://[fd00:ec2::254]/latest/meta-data/"), "a private or reserved address"),
        (image("http://224.0.0.1/x.png"), "a multicast address"),
        # IPv6 forms that carry an IPv4 address are judged by it; forms that hide it are refused
        (image(f"http://[64:ff9b::7f00:1]:{port}/cat.png"), "a loopback address"),
        (image("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"), "a link-local address"),
        (image("http://[2002:a9fe:a9fe::1]/latest/meta-data/"), "a link-local address"),
        (image(f"http://[::127.0.0.1]:{port}/cat.png"), "a loopback address"),
        (image("http://[::ffff:0:a00:5]/x.png"), "a private or reserved address"),
        (image("http://[64:ff9b:1::a00:5]/x.png"), "a local-use NAT64 address, whose IPv4 destination"),
        (image("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x.png"), "a Teredo address"),
        (image("http://intranet.example.test/x.png"), "resolves to 10.20.30.40"),
        (image("http://metadata.example.test/x.png"), "resolves to 169.254.169.254, a link-local"),
        (image("http://rebind.example.test/x.png"), "resolves to 192.168.1.20"),
        (image("http://six.example.test/x.png"), "resolves to ::1, a loopback address"),
        (image("http://nowhere.example.test/x.png"), "could not be resolved"),
        (image(f"{images}/to-private"), "resolves to 10.0.0.5"),
        (image(f"{images}/to-metadata"), "resolves to 169.254.169.254"),
        (image(f"{images}/to-ftp"), "only http and https URLs are fetched"),
        (image(f"{images}/loop"), "redirected more than 3 times"),
        (image(f"{images}/page.png"), "sent text/html, not an image"),
        (image(f"{images}/missing.png"), "answered HTTP 404"),
        (image(f"{images}/declared-huge.png"), "over the 2,000,000-byte input limit"),
        (image(f"{images}/streamed-huge.png"), "over the 2,000,000-byte input limit"),
        (image(f"{images}/slow.png"), "took longer than 1 s"),
        (image(f"http://user:pass@images.example.test:{port}/cat.png"), "user name or password"),
        # data URIs and base64
        (image("data:image/png;base64,!!!!"), "not valid base64"),
        (image("data:image/png,not-base64"), "must be base64-encoded"),
        (image("data:image/png;base64,"), "not a readable image"),
        (image(data_uri(b"<html>hi</html>", "text/html")), "not a readable image"),
        (
            image("data:image/png;base64," + "A" * (MAX_INPUT_BYTES * 2)),
            "over the 2,000,000-byte input limit",
        ),
        (
            image("iVBORw0KGgo=garbage=="),
            "is not an imagegen:// URI, an absolute file path, a data URI or base64",
        ),
        (image(base64.b64encode(b"GIF89a" + b"\0" * 50).decode()), "not a readable image"),
        # Decoding
        (image(str(allowed / "page.png")), "not a readable image"),
        (image(str(allowed / "truncated.png")), "damaged or truncated"),
        (image(str(allowed / "bomb.png")), "over the"),
        (image(data_uri(png_header(100_000, 100_000))), "over the"),
        # Masks
        (
            (
                edit,
                {"image": str(allowed / "good.png"), "prompt": "x", "mask": data_uri(png_bytes((10, 30)))},
            ),
            "the mask is 10x30 but the image is 64x48",
        ),
        (
            (
                edit,
                {"image": str(allowed / "good.png"), "prompt": "x", "mask": data_uri(png_header(9000, 9000))},
            ),
            "over the",
        ),
        ((edit, {"image": str(allowed / "good.png"), "prompt": "x", "mask": "/etc/hosts"}), outside_folder),
        # Invalid arguments of every type
        (("generate_image", {"prompt": ""}), "at least 1 character"),
        (("generate_image", {"prompt": 5}), "valid string"),
        (("generate_image", {"prompt": "x" * 32001}), "at most 32000 characters"),
        (("generate_image", {"prompt": "x", "n": 0}), "greater than or equal to 1"),
        (("generate_image", {"prompt": "x", "n": "two"}), "valid integer"),
        (("generate_image", {"prompt": "x", "n": 1.5}), "valid integer"),
        (("generate_image", {"prompt": "x", "quality": "ultra"}), "Input should be"),
        (("generate_image", {"prompt": "x", "output_compression": 101}), "less than or equal to 100"),
        (("generate_image", {"prompt": "x", "partial_images": 7}), "less than or equal to 3"),
        (("generate_image", {"prompt": "x", "wait_seconds": -1}), "greater than or equal to 0"),
        (("generate_image", {"prompt": "x", "provider": ["openai"]}), "valid string"),
        (("generate_image", {"prompt": "x", "aspect_ratio": "wide"}), "aspect_ratio must look like 16:9"),
        ((edit, {"image": ["a", "b"], "prompt": "x"}), "valid string"),
        ((edit, {"image": str(allowed / "good.png"), "prompt": "x", "images": "not-a-list"}), "valid list"),
        ((edit, {"prompt": "x"}), "Field required"),
        (("get_job", {"job_id": ""}), "at least 1 character"),
        (("get_job", {"job_id": "job_" + "x" * 200}), "at most 100 characters"),
        (("cancel_job", {"job_id": "job_doesnotexist"}), "no job 'job_doesnotexist'"),
    ]
    return [(tool, arguments, expected) for (tool, arguments), expected in table]


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.content
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def written(store: Path) -> list[Path]:
    """Files in the store other than its two databases (the image index and the usage ledger)."""
    databases = ("index.sqlite3", "usage.sqlite3")
    return sorted(path for path in store.rglob("*") if path.is_file() and path.name not in databases)


async def test_adversarial_inputs_are_refused_and_change_nothing(
    hostile_env: dict[str, Path],
    images_url: str,
    fake_openai: FakeOpenAIImages,
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = cases(hostile_env, images_url)
    assert len(table) >= 40
    store = hostile_env["store"]
    async with Client(build_server(load_settings())) as client:
        for tool, arguments, expected in table:
            text = error_text(await client.call_tool(tool, arguments))
            assert expected in text, (arguments, text)
            assert fake_openai.requests == [], arguments
            assert [p for p in written(store) if not p.name.endswith(("-wal", "-shm"))] == [], arguments
            assert not (await client.call_tool("list_providers", {})).is_error
        assert (await client.list_resources()).resources == []
        # The same server, right after all of that, still does real work from a URL input.
        good = await client.call_tool(
            "edit_image", {"image": f"{images_url}/to-cat", "prompt": "make it blue"}
        )
        assert not good.is_error, good.content
    with capsys.disabled():  # shown in every run's output, not only on failure
        print(f"\nadversarial input cases run: {len(table)}, all refused cleanly")


async def test_url_input_connects_to_the_checked_address_with_the_original_host(
    hostile_env: dict[str, Path], fake_openai: FakeOpenAIImages
) -> None:
    seen: list[str] = []

    async def cat(request: Request) -> Response:
        seen.append(request.headers["host"])
        return Response(png_bytes((40, 30)), media_type="image/png")

    with LoopbackServer(Starlette(routes=[Route("/cat.png", cat)])) as server:
        url = f"http://images.example.test:{server.port}/cat.png"
        async with Client(build_server(load_settings())) as client:
            result = await client.call_tool("edit_image", {"image": url, "prompt": "make it blue"})
    assert not result.is_error, result.content
    assert seen == [f"images.example.test:{server.port}"]
    sent = fake_openai.last.files()[0]
    assert sent.filename == "cat.png" and sent.data == png_bytes((40, 30))
