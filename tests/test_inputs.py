"""Every accepted form of image reference, and the limits on each."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mcp_imagegen.errors import InputError
from mcp_imagegen.images.inputs import InputResolver
from mcp_imagegen.store.base import NewImage
from mcp_imagegen.store.local import LocalStore
from tests.conftest import png_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed pictures"
    folder.mkdir()
    return folder


@pytest.fixture
def resolver(tmp_path: Path, allowed: Path) -> InputResolver:
    store = LocalStore(tmp_path / "store")
    return InputResolver(store, tmp_path / "store", [allowed], max_bytes=100_000)


async def test_store_uri(tmp_path: Path, resolver: InputResolver) -> None:
    store = LocalStore(tmp_path / "store")
    data = png_bytes()
    stored = await store.put(NewImage(data, "image/png", 64, 48, "generated"))
    raw = await resolver.resolve(stored.uri, "image")
    assert (raw.data, raw.store_id) == (data, stored.id)
    assert (await resolver.resolve(str(stored.path), "image")).data == data


async def test_paths_and_file_uris(allowed: Path, resolver: InputResolver) -> None:
    data = png_bytes()
    (allowed / "cat photo.png").write_bytes(data)
    assert (await resolver.resolve(str(allowed / "cat photo.png"), "image")).data == data
    assert (await resolver.resolve((allowed / "cat photo.png").as_uri(), "image")).filename == "cat photo.png"
    with pytest.raises(InputError, match="must point at this machine"):
        await resolver.resolve("file://server/share/x.png", "image")


async def test_data_uri_and_raw_base64(resolver: InputResolver) -> None:
    data = png_bytes()
    encoded = base64.b64encode(data).decode()
    assert (await resolver.resolve(f"data:image/png;base64,{encoded}", "image")).data == data
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
    assert (await resolver.resolve(wrapped, "image")).data == data
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert (await resolver.resolve(urlsafe, "image")).data == data
    with pytest.raises(InputError, match="must be base64-encoded"):
        await resolver.resolve("data:image/png,rawbytes", "image")


async def test_size_cap_applies_before_decoding(allowed: Path, resolver: InputResolver) -> None:
    big = b"\x89PNG" + b"\0" * 200_000
    with pytest.raises(InputError, match="over the 100,000-byte input limit"):
        await resolver.resolve(base64.b64encode(big).decode(), "image")
    (allowed / "big.png").write_bytes(big)
    with pytest.raises(InputError, match="200,004 bytes, over the 100,000-byte input limit"):
        await resolver.resolve(str(allowed / "big.png"), "image")


async def test_error_names_the_allowed_folders(
    tmp_path: Path, allowed: Path, resolver: InputResolver
) -> None:
    (tmp_path / "x.png").write_bytes(png_bytes())
    with pytest.raises(InputError) as caught:
        await resolver.resolve(str(tmp_path / "x.png"), "mask")
    assert str(allowed) in str(caught.value) and "IMAGEGEN_ALLOWED_DIRS" in str(caught.value)
    assert str(caught.value).startswith("mask:")
