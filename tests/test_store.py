"""The local store: atomic writes, lineage, keyset pagination, failures that leave nothing behind."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from mcp_imagegen.errors import ImageNotFoundError, InputError, StoreError
from mcp_imagegen.store.base import NewImage
from mcp_imagegen.store.local import LocalStore
from tests.conftest import png_bytes

pytestmark = pytest.mark.anyio


def new(data: bytes, **kwargs: object) -> NewImage:
    return NewImage(data=data, mime_type="image/png", width=64, height=48, kind="generated", **kwargs)  # type: ignore[arg-type]


async def test_put_writes_file_and_index(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = png_bytes()
    stored = await store.put(
        new(
            data,
            prompt="p",
            provider="placeholder",
            parent_ids=("abc",),
            metadata={"usage": {"total_tokens": 3}},
        )
    )
    assert stored.path.read_bytes() == data
    assert stored.path.is_relative_to(tmp_path / "images")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    again = await store.get(stored.id)
    assert again == stored
    assert (await store.read(stored.id))[1] == data
    assert (await store.find_by_sha256(stored.sha256)) == stored
    assert not list((tmp_path / "tmp").iterdir())
    store.close()
    reopened = LocalStore(tmp_path)
    assert (await reopened.get(stored.id)).parent_ids == ("abc",)
    assert (await reopened.get(stored.id)).metadata == {"usage": {"total_tokens": 3}}


async def test_pages_are_newest_first_with_opaque_cursors(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ids = [(await store.put(new(png_bytes(colour=(i, 0, 0))))).id for i in range(7)]
    page = await store.page(None, 3)
    seen = [image.id for image in page.images]
    while page.next_cursor:
        assert not page.next_cursor.isdigit()
        page = await store.page(page.next_cursor, 3)
        seen.extend(image.id for image in page.images)
    assert seen == list(reversed(ids))
    with pytest.raises(InputError, match="invalid cursor"):
        await store.page("not-a-cursor", 3)


async def test_unknown_id(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError):
        await LocalStore(tmp_path).get("feedfacefeedface")


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


async def test_partial_images_are_readable_but_not_listed_or_matched(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = png_bytes()
    final = await store.put(new(png_bytes(colour=(9, 9, 9))))
    partial = await store.put(
        NewImage(
            data=data, mime_type="image/png", width=64, height=48, kind="partial", metadata={"job_id": "j"}
        )
    )
    assert (await store.read(partial.id))[1] == data
    assert [image.id for image in (await store.page(None, 10)).images] == [final.id]
    assert await store.find_by_sha256(partial.sha256) is None, "an input never dedups onto a partial"
    kept = await store.put(new(data))
    assert await store.find_by_sha256(partial.sha256) == kept


async def test_delete_removes_row_and_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    stored = await store.put(new(png_bytes()))
    other = await store.put(new(png_bytes(colour=(1, 1, 1))))
    await store.delete(stored.id)
    assert not stored.path.exists()
    with pytest.raises(ImageNotFoundError):
        await store.get(stored.id)
    await store.delete(stored.id)  # already gone: not an error
    await store.delete("feedfacefeedface")
    assert (await store.read(other.id))[0] == other
