"""The store contract, on every store: the local one (files plus SQLite) and the shared one
(SeaweedFS's S3 gateway plus PostgreSQL, both real servers started by the tests)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from mcp_imagegen.config import load_settings
from mcp_imagegen.errors import ImageNotFoundError, InputError
from mcp_imagegen.store.base import NewImage, Store
from mcp_imagegen.store.selection import opened
from tests.conftest import png_bytes

pytestmark = pytest.mark.anyio


def new(data: bytes, **kwargs: object) -> NewImage:
    return NewImage(
        data=data,
        mime_type="image/png",
        width=64,
        height=48,
        **{"owner": "local", "kind": "generated", **kwargs},  # type: ignore[arg-type]
    )


@pytest.fixture(params=["local", "shared"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "shared":
        request.getfixturevalue("shared_env")
    async with opened(load_settings()) as backing:
        assert (backing.local is None) == (request.param == "shared")
        yield backing.store


async def test_put_keeps_bytes_record_and_lineage(store: Store) -> None:
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
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.name == f"{stored.id}.png" and stored.bytes == len(data)
    again = await store.get(stored.id, owner="local")
    assert again == stored
    assert again.parent_ids == ("abc",) and again.metadata == {"usage": {"total_tokens": 3}}
    assert (await store.read(stored.id, owner="local"))[1] == data
    assert (await store.find_by_sha256(stored.sha256, owner="local")) == stored
    assert await store.count() == 1


async def test_pages_are_newest_first_with_opaque_cursors(store: Store) -> None:
    ids = [(await store.put(new(png_bytes(colour=(i, 0, 0))))).id for i in range(7)]
    page = await store.page(None, 3, owner="local")
    seen = [image.id for image in page.images]
    while page.next_cursor:
        assert not page.next_cursor.isdigit()
        page = await store.page(page.next_cursor, 3, owner="local")
        seen.extend(image.id for image in page.images)
    assert seen == list(reversed(ids))
    with pytest.raises(InputError, match="invalid cursor"):
        await store.page("not-a-cursor", 3, owner="local")


async def test_unknown_id(store: Store) -> None:
    with pytest.raises(ImageNotFoundError):
        await store.get("feedfacefeedface", owner="local")


async def test_partial_images_are_readable_but_not_listed_or_matched(store: Store) -> None:
    data = png_bytes()
    final = await store.put(new(png_bytes(colour=(9, 9, 9))))
    partial = await store.put(
        NewImage(
            data=data,
            mime_type="image/png",
            width=64,
            height=48,
            kind="partial",
            owner="local",
            metadata={"job_id": "j"},
        )
    )
    assert (await store.read(partial.id, owner="local"))[1] == data
    assert [image.id for image in (await store.page(None, 10, owner="local")).images] == [final.id]
    assert await store.find_by_sha256(partial.sha256, owner="local") is None, (
        "an input never dedups onto a partial"
    )
    kept = await store.put(new(data))
    assert await store.find_by_sha256(partial.sha256, owner="local") == kept


async def test_owners_scope_every_lookup_and_the_same_bytes_are_two_images(store: Store) -> None:
    data = png_bytes()
    alices = await store.put(new(data, owner="alice"))
    bobs = await store.put(new(data, owner="bob"))
    assert alices.id != bobs.id
    assert await store.find_by_sha256(alices.sha256, owner="alice") == alices
    assert await store.find_by_sha256(alices.sha256, owner="bob") == bobs
    assert await store.find_by_sha256(alices.sha256, owner="carol") is None
    for lookup in (store.get, store.read):
        with pytest.raises(ImageNotFoundError) as theirs:
            await lookup(alices.id, owner="bob")
        with pytest.raises(ImageNotFoundError) as nobodys:
            await lookup("feedfacefeedface", owner="bob")
        assert str(theirs.value) == str(nobodys.value).replace("feedfacefeedface", alices.id)
    assert [image.id for image in (await store.page(None, 10, owner="bob")).images] == [bobs.id]
    everyone = await store.page(None, 10, owner=None)
    assert [image.id for image in everyone.images] == [bobs.id, alices.id]
    assert (await store.read(alices.id, owner=None))[1] == data


async def test_delete_removes_the_image(store: Store) -> None:
    stored = await store.put(new(png_bytes()))
    other = await store.put(new(png_bytes(colour=(1, 1, 1))))
    await store.delete(stored.id)
    with pytest.raises(ImageNotFoundError):
        await store.read(stored.id, owner="local")
    await store.delete(stored.id)  # already gone: not an error
    await store.delete("feedfacefeedface")
    assert (await store.read(other.id, owner="local"))[0] == other
    assert await store.count() == 1


async def test_children_are_the_images_made_from_one(store: Store) -> None:
    parent = await store.put(new(png_bytes(colour=(1, 2, 3))))
    other = await store.put(new(png_bytes(colour=(4, 5, 6))))
    first = await store.put(new(png_bytes(colour=(7, 8, 9)), parent_ids=(parent.id,)))
    both = await store.put(new(png_bytes(colour=(9, 8, 7)), parent_ids=(other.id, parent.id)))
    await store.put(new(png_bytes(colour=(6, 6, 6)), parent_ids=(parent.id,), kind="partial"))
    await store.put(new(png_bytes(colour=(5, 5, 5)), parent_ids=(parent.id,), owner="bob"))
    children = await store.children(parent.id, 10, owner="local")
    assert [image.id for image in children] == [both.id, first.id]  # newest first, no partial, not bob's
    assert [image.id for image in await store.children(parent.id, 1, owner="local")] == [both.id]
    assert len(await store.children(parent.id, 10, owner=None)) == 3  # the admin sees bob's too
    assert await store.children(first.id, 10, owner="local") == []
