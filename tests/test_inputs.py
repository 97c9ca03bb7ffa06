"""Every accepted form of image reference, and the limits on each."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mcp_imagegen.errors import InputError
from mcp_imagegen.images.inputs import ReferenceReader
from mcp_imagegen.server.inputs import InputResolver
from mcp_imagegen.server.principals import LOCAL, Principal
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
    return InputResolver(store, ReferenceReader(tmp_path / "store", [allowed], max_bytes=100_000))


async def test_store_uri(tmp_path: Path, resolver: InputResolver) -> None:
    store = LocalStore(tmp_path / "store")
    data = png_bytes()
    stored = await store.put(NewImage(data, "image/png", 64, 48, "generated", "local"))
    raw = await resolver.resolve(stored.uri, "image", LOCAL)
    assert (raw.data, raw.store_id) == (data, stored.id)
    assert (await resolver.resolve(str(stored.path), "image", LOCAL)).data == data


async def test_paths_and_file_uris(allowed: Path, resolver: InputResolver) -> None:
    data = png_bytes()
    (allowed / "cat photo.png").write_bytes(data)
    assert (await resolver.resolve(str(allowed / "cat photo.png"), "image", LOCAL)).data == data
    assert (
        await resolver.resolve((allowed / "cat photo.png").as_uri(), "image", LOCAL)
    ).filename == "cat photo.png"
    with pytest.raises(InputError, match="must point at this machine"):
        await resolver.resolve("file://server/share/x.png", "image", LOCAL)


async def test_data_uri_and_raw_base64(resolver: InputResolver) -> None:
    data = png_bytes()
    encoded = base64.b64encode(data).decode()
    assert (await resolver.resolve(f"data:image/png;base64,{encoded}", "image", LOCAL)).data == data
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
    assert (await resolver.resolve(wrapped, "image", LOCAL)).data == data
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert (await resolver.resolve(urlsafe, "image", LOCAL)).data == data
    with pytest.raises(InputError, match="must be base64-encoded"):
        await resolver.resolve("data:image/png,rawbytes", "image", LOCAL)


async def test_size_cap_applies_before_decoding(allowed: Path, resolver: InputResolver) -> None:
    big = b"\x89PNG" + b"\0" * 200_000
    with pytest.raises(InputError, match="over the 100,000-byte input limit"):
        await resolver.resolve(base64.b64encode(big).decode(), "image", LOCAL)
    (allowed / "big.png").write_bytes(big)
    with pytest.raises(InputError, match="200,004 bytes, over the 100,000-byte input limit"):
        await resolver.resolve(str(allowed / "big.png"), "image", LOCAL)


async def test_error_names_the_allowed_folders(
    tmp_path: Path, allowed: Path, resolver: InputResolver
) -> None:
    (tmp_path / "x.png").write_bytes(png_bytes())
    with pytest.raises(InputError) as caught:
        await resolver.resolve(str(tmp_path / "x.png"), "mask", LOCAL)
    assert str(allowed) in str(caught.value) and "IMAGEGEN_ALLOWED_DIRS" in str(caught.value)
    assert str(caught.value).startswith("mask:")


ALICE = Principal("alice", remote=True)
BOB = Principal("bob", remote=True)


async def test_a_store_uri_names_only_the_callers_own_image(tmp_path: Path, resolver: InputResolver) -> None:
    store = LocalStore(tmp_path / "store")
    data = png_bytes()
    alices = await store.put(NewImage(data, "image/png", 64, 48, "generated", "alice"))
    assert (await resolver.resolve(alices.uri, "image", ALICE)).data == data
    with pytest.raises(InputError) as theirs:
        await resolver.resolve(alices.uri, "image", BOB)
    with pytest.raises(InputError) as nobodys:
        await resolver.resolve(alices.uri[:-4] + "0000", "image", BOB)
    assert str(theirs.value) == str(nobodys.value).replace(alices.id[:-4] + "0000", alices.id)
    admin = Principal("root", admin=True, remote=True)
    assert (await resolver.resolve(alices.uri, "image", admin)).data == data


async def test_remote_callers_name_no_server_files_unless_allowed(tmp_path: Path, allowed: Path) -> None:
    store = LocalStore(tmp_path / "store")
    stored = await store.put(NewImage(png_bytes(), "image/png", 64, 48, "generated", "alice"))
    (allowed / "cat.png").write_bytes(png_bytes())
    closed = InputResolver(store, ReferenceReader(tmp_path / "store", [allowed], max_bytes=100_000))
    for reference in (str(allowed / "cat.png"), (allowed / "cat.png").as_uri(), str(stored.path)):
        with pytest.raises(InputError, match="file paths are not read for callers over the network"):
            await closed.resolve(reference, "image", ALICE)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "logo.png").write_bytes(png_bytes())
    opened = InputResolver(
        store, ReferenceReader(tmp_path / "store", [allowed], max_bytes=100_000, remote_roots=[shared])
    )
    assert (await opened.resolve(str(shared / "logo.png"), "image", ALICE)).filename == "logo.png"
    # The store's own files (everyone's images) and the local allowed folders stay closed.
    for reference in (str(stored.path), str(allowed / "cat.png")):
        with pytest.raises(InputError, match="IMAGEGEN_REMOTE_ALLOW_PATHS"):
            await opened.resolve(reference, "image", ALICE)
    # Whether a file exists outside the folders is not told.
    with pytest.raises(InputError, match="outside the folders"):
        await opened.resolve("/etc/no-such-file.png", "image", ALICE)
    with pytest.raises(InputError, match="does not exist"):
        await opened.resolve(str(shared / "missing.png"), "image", ALICE)
