"""Full-size download links for hosts that cannot read resources: with IMAGEGEN_PUBLIC_URL set,
each image in a result carries a time-limited signed link to that image alone. The local store's
links are this server's /files/ route; an object store's are its own presigned URLs."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.types import BlobResourceContents

from mcp_imagegen.config import load_settings
from mcp_imagegen.server.app import build_server
from mcp_imagegen.server.links import LinkSigner
from tests.connect import http_server
from tests.fakes.loopback import free_port
from tests.test_remote_serving import authed_client, base_env

pytestmark = pytest.mark.anyio
TOKEN = "links-token-0123456789abcdef"


def images_of(result: Any) -> list[dict[str, Any]]:
    assert not result.is_error, result.content
    images: list[dict[str, Any]] = result.structured_content["images"]
    return images


async def test_local_links_download_the_full_image_and_nothing_else(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(
        tmp_path,
        IMAGEGEN_AUTH_TOKENS=f"alice:{TOKEN}",
        IMAGEGEN_PUBLIC_URL=f"http://127.0.0.1:{port}/mcp",
        IMAGEGEN_LINK_TTL_SECONDS="120",
    )
    with http_server("http", env, port=port) as url:
        async with authed_client(url, "http", TOKEN) as client:
            first, second = images_of(
                await client.call_tool("generate_image", {"prompt": "two", "n": 2, "size": "512x512"})
            )
            blob = (await client.read_resource(first["uri"])).contents[0]
        assert isinstance(blob, BlobResourceContents)
        link = first["download_url"]
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{url}/files/{first['id']}"
        expires = int(parse_qs(parts.query)["expires"][0])
        assert 110 <= expires - time.time() <= 121, "valid for IMAGEGEN_LINK_TTL_SECONDS"

        response = httpx2.get(link, timeout=10)  # no bearer token: the signature is the authorisation
        assert response.status_code == 200, response.text
        assert response.content == base64.b64decode(blob.blob), "the full-size file, not the preview"
        assert response.headers["content-type"] == "image/png"

        other = link.replace(first["id"], second["id"])
        assert httpx2.get(other, timeout=10).status_code == 403, "a link opens its own image only"
        tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
        refused = httpx2.get(tampered, timeout=10)
        assert refused.status_code == 403 and "signature does not match" in refused.text
        later = link.replace(f"expires={expires}", f"expires={expires + 3600}")
        assert httpx2.get(later, timeout=10).status_code == 403, "the expiry is signed too"
        assert httpx2.get(second["download_url"], timeout=10).status_code == 200


def test_an_expired_link_is_refused_with_a_reason() -> None:
    now = [1000.0]
    signer = LinkSigner("https://img.example.com", b"k" * 32, 60, clock=lambda: now[0])
    query = parse_qs(urlsplit(signer.url("abc")).query)
    expires, signature = query["expires"][0], query["signature"][0]
    assert signer.check("abc", expires, signature) is None
    now[0] += 61
    assert "expired" in (signer.check("abc", expires, signature) or "")
    assert "malformed" in (signer.check("abc", "soon", signature) or "")


async def test_no_links_without_a_public_url() -> None:
    async with Client(build_server(load_settings())) as client:
        (image,) = images_of(
            await client.call_tool(
                "generate_image", {"prompt": "x", "provider": "placeholder", "size": "64x64"}
            )
        )
    assert "download_url" not in image


async def test_object_store_links_are_presigned_urls_of_that_object(
    shared_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_PUBLIC_URL", "https://img.example.com/mcp")
    monkeypatch.setenv("IMAGEGEN_LINK_TTL_SECONDS", "300")
    async with Client(build_server(load_settings())) as client:
        (image,) = images_of(
            await client.call_tool(
                "generate_image", {"prompt": "x", "provider": "placeholder", "size": "128x128"}
            )
        )
        blob = (await client.read_resource(image["uri"])).contents[0]
    link = image["download_url"]
    query = parse_qs(urlsplit(link).query)
    assert query["X-Amz-Expires"] == ["300"] and urlsplit(link).path.endswith(f"/{image['id']}.png")
    assert isinstance(blob, BlobResourceContents)
    assert httpx2.get(link, timeout=10).content == base64.b64decode(blob.blob)
    forged = link.replace(f"{image['id']}.png", "0000000000000000.png")
    assert httpx2.get(forged, timeout=10).status_code == 403, "the signature covers the object"
