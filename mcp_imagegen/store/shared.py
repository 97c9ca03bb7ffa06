"""The store of a scaled-out server: image bytes in object storage, the index in PostgreSQL.

A write uploads the object (checksummed) and only then inserts its index row, so a crash can leave
a stray object but never a row without an object; an insert that fails removes the object again.
A delete removes the row first, so a reader gets "not found" rather than a row whose object is
gone. Keyset pages on `seq` read `limit + 1` rows from a partial index, whatever the store holds.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import anyio
import anyio.to_thread
import psycopg
from psycopg.types.json import Jsonb

from mcp_imagegen.database import Database
from mcp_imagegen.errors import ImageNotFoundError, StoreError, first_line
from mcp_imagegen.images.codec import EXTENSION_BY_MIME
from mcp_imagegen.store.base import (
    NewImage,
    Page,
    StoredImage,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
    stored_image,
)
from mcp_imagegen.store.objects import ObjectStore

logger = logging.getLogger(__name__)

COLUMNS = (
    "seq, id, object_key, mime_type, width, height, bytes, sha256, created_at, kind, provider, model, prompt,"
    " parent_ids, metadata, owner"
)
"""In the order `store.base.stored_image` reads."""
INSERT = (
    "INSERT INTO images (id, object_key, mime_type, width, height, bytes, sha256, created_at, kind, owner,"
    " provider, model, prompt, parent_ids, metadata) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    " RETURNING seq"
)
BY_ID = f"SELECT {COLUMNS} FROM images WHERE id = %s"  # noqa: S608 - constant column list
BY_ID_OF = f"{BY_ID} AND owner = %s"
BY_SHA256 = (
    f"SELECT {COLUMNS} FROM images WHERE owner = %s AND sha256 = %s AND kind <> 'partial'"  # noqa: S608
    " ORDER BY seq LIMIT 1"
)
LISTED = f"SELECT {COLUMNS} FROM images WHERE kind <> 'partial'"  # noqa: S608
NEWEST = f"{LISTED} ORDER BY seq DESC LIMIT %s"
NEWEST_OF = f"{LISTED} AND owner = %s ORDER BY seq DESC LIMIT %s"
SEQ = "SELECT seq FROM images WHERE kind <> 'partial' AND id = %s"
SEQ_OF = "SELECT seq FROM images WHERE kind <> 'partial' AND id = %s AND owner = %s"
OLDER = f"{LISTED} AND seq < %s ORDER BY seq DESC LIMIT %s"
OLDER_OF = f"{LISTED} AND seq < %s AND owner = %s ORDER BY seq DESC LIMIT %s"
"""Two statements per lookup, the owner's and everyone's (admin), so each one's plan uses its own
partial index."""
CHILDREN = f"{LISTED} AND parent_ids @> %s ORDER BY seq DESC LIMIT %s"
CHILDREN_OF = f"{LISTED} AND parent_ids @> %s AND owner = %s ORDER BY seq DESC LIMIT %s"
ID_BYTES = 8


def object_key(image_id: str, mime_type: str, created_at: float) -> str:
    """`images/<UTC day>/<id>.<ext>`: where an image's bytes are, from its record alone."""
    day = time.strftime("%Y-%m-%d", time.gmtime(created_at))
    return f"images/{day}/{image_id}.{EXTENSION_BY_MIME.get(mime_type, 'bin')}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SharedStore:
    """The `Store` contract on an `ObjectStore` and a `Database`; every method is async I/O."""

    def __init__(self, objects: ObjectStore, database: Database) -> None:
        self.objects = objects
        self.database = database

    def close(self) -> None:
        """The pool is the server's, closed by its lifespan; objects need no closing."""

    def download_url(self, image: StoredImage, ttl_s: int) -> str | None:
        return self.objects.signed_url(object_key(image.id, image.mime_type, image.created_at), ttl_s)

    async def put(self, image: NewImage) -> StoredImage:
        image_id = secrets.token_hex(ID_BYTES)
        created_at = time.time()
        key = object_key(image_id, image.mime_type, created_at)
        failed: StoreError | None = None

        async def upload() -> None:
            nonlocal failed
            try:
                await self.objects.put(key, image.data, image.mime_type)
            except StoreError as exc:
                failed = exc

        async with anyio.create_task_group() as group:  # our hash for the index while the upload runs
            group.start_soon(upload)
            digest = await anyio.to_thread.run_sync(sha256_hex, image.data)
        if failed is not None:
            raise failed
        row = (
            image_id, key, image.mime_type, image.width, image.height, len(image.data), digest, created_at,
            image.kind, image.owner, image.provider, image.model, image.prompt,
            Jsonb(list(image.parent_ids)), Jsonb(image.metadata),
        )  # fmt: skip
        try:
            async with self.database.connection() as connection:
                await connection.execute(INSERT, row)
        except (StoreError, psycopg.Error) as exc:
            await self._forget_object(key)
            reason = exc if isinstance(exc, StoreError) else first_line(exc)
            raise StoreError(
                f"could not index the image in {self.database.where}: {reason}. Nothing was stored."
            ) from None
        return StoredImage(
            id=image_id,
            path=None,
            mime_type=image.mime_type,
            width=image.width,
            height=image.height,
            bytes=len(image.data),
            sha256=digest,
            created_at=created_at,
            kind=image.kind,
            owner=image.owner,
            provider=image.provider,
            model=image.model,
            prompt=image.prompt,
            parent_ids=image.parent_ids,
            metadata=image.metadata,
        )

    async def get(self, image_id: str, *, owner: str | None) -> StoredImage:
        return stored_image(await self._row(image_id, owner), None)

    async def read(self, image_id: str, *, owner: str | None) -> tuple[StoredImage, bytes]:
        row = await self._row(image_id, owner)
        return stored_image(row, None), await self.objects.get(str(row[2]))

    async def stream(self, image_id: str, *, owner: str | None) -> tuple[StoredImage, AsyncIterator[bytes]]:
        """The record and the object in chunks: for downloads of any size."""
        row = await self._row(image_id, owner)
        return stored_image(row, None), self.objects.stream(str(row[2]))

    async def find_by_sha256(self, sha256: str, *, owner: str) -> StoredImage | None:
        rows = await self._query(BY_SHA256, (owner, sha256))
        return stored_image(rows[0], None) if rows else None

    async def page(self, cursor: str | None, limit: int, *, owner: str | None) -> Page:
        after = decode_cursor(cursor) if cursor else None
        before = None
        if after is not None:
            anchor = await self._query(
                SEQ if owner is None else SEQ_OF, (after,) if owner is None else (after, owner)
            )
            if not anchor:
                raise invalid_cursor()
            before = int(anchor[0][0])
        if before is None:
            rows = (
                await self._query(NEWEST, (limit + 1,))
                if owner is None
                else await self._query(NEWEST_OF, (owner, limit + 1))
            )
        elif owner is None:
            rows = await self._query(OLDER, (before, limit + 1))
        else:
            rows = await self._query(OLDER_OF, (before, owner, limit + 1))
        next_cursor = encode_cursor(str(rows[limit - 1][1])) if len(rows) > limit else None
        return Page([stored_image(row, None) for row in rows[:limit]], next_cursor)

    async def children(self, image_id: str, limit: int, *, owner: str | None) -> list[StoredImage]:
        parent = Jsonb([image_id])
        rows = await (
            self._query(CHILDREN, (parent, limit))
            if owner is None
            else self._query(CHILDREN_OF, (parent, owner, limit))
        )
        return [stored_image(row, None) for row in rows]

    async def delete(self, image_id: str) -> None:
        rows = await self._query("DELETE FROM images WHERE id = %s RETURNING object_key", (image_id,))
        if rows:
            await self.objects.delete(str(rows[0][0]))

    async def count(self) -> int:
        rows = await self._query("SELECT COUNT(*) FROM images", ())
        return int(rows[0][0])

    async def _row(self, image_id: str, owner: str | None) -> Sequence[Any]:
        rows = await (
            self._query(BY_ID, (image_id,)) if owner is None else self._query(BY_ID_OF, (image_id, owner))
        )
        if not rows:
            raise ImageNotFoundError(f"no image {image_id!r} in the store")
        return rows[0]

    async def _query(self, statement: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            async with self.database.connection() as connection:
                cursor = await connection.execute(cast("Any", statement), parameters)
                return await cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise StoreError(f"the image index at {self.database.where} failed: {first_line(exc)}") from None

    async def _forget_object(self, key: str) -> None:
        """Best effort inside an error path: the original error is the one to report, and a stray
        object without a row is invisible."""
        try:
            await self.objects.delete(key)
        except StoreError as exc:
            logger.warning("left a stray object %s after a failed write: %s", key, exc)
