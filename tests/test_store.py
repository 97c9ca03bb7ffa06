"""The local store: atomic writes, lineage, keyset pagination, failures that leave nothing behind."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from mcp import Client

from mcp_imagegen.config import load_settings
from mcp_imagegen.errors import ImageNotFoundError, StoreError
from mcp_imagegen.server.app import build_server
from mcp_imagegen.store.base import StoredImage
from mcp_imagegen.store.local import LocalStore, RepairReport, Retention
from tests.conftest import png_bytes
from tests.test_store_contract import new


def file_of(image: StoredImage) -> Path:
    """The image's file: the local store always has one."""
    assert image.path is not None
    return image.path


pytestmark = pytest.mark.anyio


async def test_put_writes_the_file_before_the_row_and_survives_a_reopen(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = png_bytes()
    stored = await store.put(new(data, parent_ids=("abc",), metadata={"usage": {"total_tokens": 3}}))
    assert file_of(stored).read_bytes() == data
    assert file_of(stored).is_relative_to(tmp_path / "images")
    assert not list((tmp_path / "tmp").iterdir())
    store.close()
    reopened = LocalStore(tmp_path)
    assert (await reopened.get(stored.id, owner="local")).parent_ids == ("abc",)
    assert (await reopened.get(stored.id, owner="local")).metadata == {"usage": {"total_tokens": 3}}


async def test_failed_index_write_removes_the_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put(new(png_bytes()))
    blocker = sqlite3.connect(tmp_path / "index.sqlite3", timeout=0.1)
    blocker.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON images BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    )
    blocker.commit()
    blocker.close()
    with pytest.raises(StoreError, match="Nothing was stored"):
        await store.put(new(png_bytes(colour=(1, 2, 3))))
    assert len([p for p in (tmp_path / "images").rglob("*") if p.is_file()]) == 1
    assert not list((tmp_path / "tmp").iterdir())


async def test_failed_file_write_leaves_no_partial_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "tmp").rmdir()
    (tmp_path / "tmp").write_text("not a folder")
    with pytest.raises(StoreError, match="could not write an image"):
        await store.put(new(png_bytes()))
    assert await store.count() == 0
    assert not [p for p in (tmp_path / "images").rglob("*") if p.is_file()]


def test_unusable_store_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(StoreError, match="IMAGEGEN_STORE_DIR"):
        LocalStore(blocked)


async def test_delete_removes_row_and_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    stored = await store.put(new(png_bytes()))
    other = await store.put(new(png_bytes(colour=(1, 1, 1))))
    await store.delete(stored.id)
    assert not file_of(stored).exists()
    with pytest.raises(ImageNotFoundError):
        await store.get(stored.id, owner="local")
    await store.delete(stored.id)  # already gone: not an error
    await store.delete("feedfacefeedface")
    assert (await store.read(other.id, owner="local"))[0] == other


def age(path: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


async def test_repair_after_a_crash_makes_index_and_files_agree(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    kept = await store.put(new(png_bytes(colour=(1, 2, 3))))
    lost = await store.put(new(png_bytes(colour=(4, 5, 6))))
    file_of(lost).unlink()  # the file went away (by hand, or a crash before the disk flushed it)
    orphan = tmp_path / "images" / "2026-01-01" / "0123456789abcdef.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(png_bytes((30, 20)))  # renamed into place, then the crash: no index row
    age(orphan)
    unfinished = tmp_path / "tmp" / "fedcba9876543210.part"
    unfinished.write_bytes(b"\x89PNG half a file")
    age(unfinished)
    young = tmp_path / "images" / "2026-01-01" / "aaaaaaaaaaaaaaaa.png"
    young.write_bytes(png_bytes((8, 8)))  # may be another process's write in progress
    store.close()

    reopened = LocalStore(tmp_path)
    report = await reopened.repair()
    assert (report.recovered, report.dropped_rows, report.removed_temp) == (1, 1, 1)
    recovered, data = await reopened.read("0123456789abcdef", owner="local")
    assert (recovered.width, recovered.height, recovered.mime_type) == (30, 20, "image/png")
    assert recovered.sha256 == hashlib.sha256(data).hexdigest()
    assert "recovered" in recovered.metadata
    with pytest.raises(ImageNotFoundError):
        await reopened.get(lost.id, owner="local")
    assert not unfinished.exists() and young.exists()
    assert (await reopened.read(kept.id, owner="local"))[0] == kept
    assert await reopened.repair() == RepairReport(), "a second check finds nothing to do"


async def test_server_start_repairs_the_store_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = tmp_path / "store" / "images" / "2026-01-01" / "0123456789abcdef.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(png_bytes())
    age(orphan)
    async with Client(build_server(load_settings())) as client:

        async def listed() -> list[str]:
            return [str(resource.uri) for resource in (await client.list_resources()).resources]

        deadline = time.monotonic() + 5
        while "imagegen://images/0123456789abcdef" not in await listed():
            assert time.monotonic() < deadline, "the orphan was not indexed"
            await anyio.sleep(0.05)


async def test_size_limit_deletes_oldest_first_but_never_a_file_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = [png_bytes((256, 256), colour=(i, 0, 0)) for i in range(10, 16)]
    size = max(len(data) for data in images)
    assert min(len(data) for data in images) > size * 0.9
    store = LocalStore(tmp_path, Retention(max_bytes=3 * size + size // 2))
    stored = [await store.put(new(data)) for data in images[:3]]
    assert all(file_of(image).exists() for image in stored)

    reading, release = threading.Event(), threading.Event()
    real_read_bytes = Path.read_bytes

    def slow_read(path: Path) -> bytes:
        if path == file_of(stored[0]):
            reading.set()
            release.wait(5)
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", slow_read)
    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(store.read, stored[0].id, owner="local"))
        await anyio.to_thread.run_sync(reading.wait, 5)
        fourth = await store.put(new(images[3]))  # over the limit: the oldest is being read
        assert file_of(stored[0]).exists() and not file_of(stored[1]).exists()
        release.set()
    fifth = await store.put(new(images[4]))
    assert not file_of(stored[0]).exists()
    assert [image.id for image in (await store.page(None, 10, owner="local")).images] == [
        fifth.id,
        fourth.id,
        stored[2].id,
    ]


async def test_age_limit_deletes_old_images(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, Retention(max_age_s=86400))
    old = await store.put(new(png_bytes(colour=(1, 1, 1))))
    recent = await store.put(new(png_bytes(colour=(2, 2, 2))))
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        db.execute("UPDATE images SET created_at = created_at - 2 * 86400 WHERE id = ?", (old.id,))
    assert await store.enforce_retention() == 1
    assert not file_of(old).exists() and file_of(recent).exists()
    with pytest.raises(ImageNotFoundError):
        await store.get(old.id, owner="local")


async def test_full_disk_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(
        StoreError, match=r"could not write an image to .*: the disk is full\. Nothing was stored"
    ):
        await store.put(new(png_bytes()))
    assert await store.count() == 0
    assert not list((tmp_path / "tmp").iterdir())
    assert not [p for p in (tmp_path / "images").rglob("*") if p.is_file()]


async def test_200_concurrent_calls_leave_index_and_files_consistent(tmp_path: Path) -> None:
    async with Client(build_server(load_settings())) as client:
        results = []

        async def one(index: int) -> None:
            arguments = {"prompt": f"call {index}", "provider": "placeholder", "size": "64x64", "seed": index}
            results.append(await client.call_tool("generate_image", arguments))

        async with anyio.create_task_group() as group:
            for index in range(200):
                group.start_soon(one, index)
    assert all(not result.is_error for result in results)
    root = tmp_path / "store"
    store = LocalStore(root)
    page = await store.page(None, 500, owner="local")
    assert len(page.images) == 200 and await store.count() == 200
    files = sorted(p for p in (root / "images").rglob("*") if p.is_file())
    assert sorted(file_of(image) for image in page.images) == files
    assert all(
        hashlib.sha256(file_of(image).read_bytes()).hexdigest() == image.sha256 for image in page.images
    )
    assert not list((root / "tmp").iterdir())
    assert await store.repair(grace_s=0) == RepairReport()


FIXTURE_STORE = Path(__file__).parent / "fixtures" / "store-0.1.0"
"""A store written by release 0.1.0 (before images had owners): a generated image, an input,
and an edit of that input."""


async def test_a_store_written_by_the_previous_release_migrates_in_place(tmp_path: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(FIXTURE_STORE, root)
    files = {path.name: path.read_bytes() for path in (root / "images").rglob("*.png")}
    stores: list[LocalStore] = []
    async with anyio.create_task_group() as group:  # two servers starting at once migrate it once
        for _ in range(2):
            group.start_soon(anyio.to_thread.run_sync, lambda: stores.append(LocalStore(root)))
    store = stores[0]
    listed = (await store.page(None, 10, owner="local")).images
    assert [(image.kind, image.prompt) for image in listed] == [
        ("edited", "make it green"),
        ("input", None),
        ("generated", "a red card"),
    ]
    assert all(image.owner == "local" for image in listed)
    edited, source = listed[0], listed[1]
    assert edited.parent_ids == (source.id,)
    for image in listed:
        assert (await store.read(image.id, owner="local"))[1] == files[file_of(image).name]
    assert (await store.page(None, 10, owner="alice")).images == []
    for other in stores:
        other.close()
    assert [image.id for image in (await LocalStore(root).page(None, 10, owner="local")).images] == [
        image.id for image in listed
    ]
