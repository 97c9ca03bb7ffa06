"""Files on disk under the store folder, indexed in SQLite (stdlib `sqlite3`).

Layout: `images/YYYY-MM-DD/<id>.<ext>` for the files, `index.sqlite3` for the index,
`tmp/` for writes in progress. A write goes to `tmp/`, is flushed to disk and renamed into
place, and only then gets its index row: a crash can leave a stray file but never a row
without a file. Several server processes may share one store (SQLite WAL + busy timeout).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from mcp_imagegen.errors import ImageNotFoundError, InputError, StoreError
from mcp_imagegen.images.codec import EXTENSION_BY_MIME
from mcp_imagegen.store.base import (
    LOCAL_OWNER,
    NewImage,
    Page,
    StoredImage,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
    stored_image,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    rel_path TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    prompt TEXT,
    parent_ids TEXT NOT NULL,
    metadata TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT 'local'
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS images_by_owner_sha256 ON images (owner, sha256);
CREATE INDEX IF NOT EXISTS images_by_owner ON images (owner, seq);
DROP INDEX IF EXISTS images_by_sha256;
"""
ADD_OWNER = "ALTER TABLE images ADD COLUMN owner TEXT NOT NULL DEFAULT 'local'"
"""The migration of a store written before images had owners: every old row is the local
principal's, which is who made it (a single-user server)."""
COLUMNS = (
    "seq, id, rel_path, mime_type, width, height, bytes, sha256, created_at, kind, provider, model, prompt,"
    " parent_ids, metadata, owner"
)
VISIBLE = "(? IS NULL OR owner = ?)"
"""The owner filter: the caller's rows, or everyone's for `None` (admin); the same query either way."""
SELECT_BY_ID = f"SELECT {COLUMNS} FROM images WHERE id = ? AND {VISIBLE}"  # noqa: S608 - constant column list
SELECT_BY_SHA256 = (
    f"SELECT {COLUMNS} FROM images WHERE owner = ? AND sha256 = ? AND kind != 'partial' ORDER BY seq LIMIT 1"  # noqa: S608
)
SELECT_NEWEST = (
    f"SELECT {COLUMNS} FROM images WHERE {VISIBLE} AND kind != 'partial' ORDER BY seq DESC LIMIT ?"  # noqa: S608
)
SELECT_SEQ = f"SELECT seq FROM images WHERE id = ? AND {VISIBLE} AND kind != 'partial'"  # noqa: S608
SELECT_OLDER = (
    f"SELECT {COLUMNS} FROM images WHERE seq < ? AND {VISIBLE} AND kind != 'partial'"  # noqa: S608
    " ORDER BY seq DESC LIMIT ?"
)
SELECT_CHILDREN = (
    f"SELECT {COLUMNS} FROM images WHERE parent_ids LIKE ? AND {VISIBLE} AND kind != 'partial'"  # noqa: S608
    " ORDER BY seq DESC LIMIT ?"
)
"""Ids are hex, so a quoted id matched inside the JSON list is exact."""
SELECT_PATH = "SELECT rel_path FROM images WHERE id = ?"
DELETE_BY_ID = "DELETE FROM images WHERE id = ?"
SELECT_ALL_PATHS = "SELECT id, rel_path FROM images"
SELECT_OLDEST = "SELECT id, rel_path, bytes, created_at FROM images ORDER BY seq"
SELECT_TOTAL_BYTES = "SELECT COALESCE(SUM(bytes), 0) FROM images"
ORPHAN_GRACE_S = 300.0
"""A file without an index row, or a temp file, younger than this may belong to a write in
progress in another process sharing the store: repair leaves it alone."""
INSERT = (
    "INSERT INTO images (id, rel_path, mime_type, width, height, bytes, sha256, created_at, kind, provider,"
    " model, prompt, parent_ids, metadata, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
ID_BYTES = 8

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairReport:
    recovered: int = 0
    """Complete files that had no index row (a crash after the rename): indexed again."""
    dropped_rows: int = 0
    """Index rows whose file was gone: removed."""
    removed_temp: int = 0
    """Unfinished writes left in tmp/: removed."""


@dataclass(frozen=True)
class Retention:
    """Optional limits; the oldest images go first, and never one that is being read."""

    max_bytes: int | None = None
    max_age_s: float | None = None


class LocalStore:
    """The default store. Public methods are async and run blocking work in a worker thread."""

    def __init__(self, root: Path, retention: Retention | None = None) -> None:
        self.root = root
        self._retention = retention or Retention()
        self._reading: Counter[str] = Counter()
        self._lock = threading.Lock()
        try:
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "tmp").mkdir(exist_ok=True)
            self._db = sqlite3.connect(
                root / "index.sqlite3", timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the image store at {root}: {exc} (set IMAGEGEN_STORE_DIR)"
            ) from None

    def _migrate(self) -> None:
        """Bring an older index up to date, in one write transaction, so that two processes
        opening the same store at once migrate it once."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
            if "owner" not in columns:
                self._db.execute(ADD_OWNER)
                logger.info("store index migrated: existing images belong to the local principal")
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise
        self._db.executescript(INDEXES)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def download_url(self, image: StoredImage, ttl_s: int) -> str | None:
        return None  # the server signs its own /files/ links for files on its disk

    async def put(self, image: NewImage) -> StoredImage:
        return await anyio.to_thread.run_sync(self._put, image)

    async def get(self, image_id: str, *, owner: str | None) -> StoredImage:
        return await anyio.to_thread.run_sync(self._get, image_id, owner)

    async def read(self, image_id: str, *, owner: str | None) -> tuple[StoredImage, bytes]:
        return await anyio.to_thread.run_sync(self._read, image_id, owner)

    async def find_by_sha256(self, sha256: str, *, owner: str) -> StoredImage | None:
        return await anyio.to_thread.run_sync(self._find_by_sha256, sha256, owner)

    async def page(self, cursor: str | None, limit: int, *, owner: str | None) -> Page:
        return await anyio.to_thread.run_sync(self._page, cursor, limit, owner)

    async def children(self, image_id: str, limit: int, *, owner: str | None) -> list[StoredImage]:
        return await anyio.to_thread.run_sync(self._children, image_id, limit, owner)

    async def count(self) -> int:
        return await anyio.to_thread.run_sync(self._count)

    async def delete(self, image_id: str) -> None:
        await anyio.to_thread.run_sync(self._delete, image_id)

    async def repair(self, grace_s: float = ORPHAN_GRACE_S) -> RepairReport:
        return await anyio.to_thread.run_sync(self._repair, grace_s)

    async def enforce_retention(self) -> int:
        return await anyio.to_thread.run_sync(self._enforce_retention, None)

    def _put(self, image: NewImage) -> StoredImage:
        image_id = secrets.token_hex(ID_BYTES)
        created_at = time.time()
        extension = EXTENSION_BY_MIME.get(image.mime_type, "bin")
        day = time.strftime("%Y-%m-%d", time.localtime(created_at))
        rel_path = f"images/{day}/{image_id}.{extension}"
        final_path = self.root / rel_path
        self._write_file(final_path, image.data, image_id)
        digest = hashlib.sha256(image.data).hexdigest()
        row = (
            image_id,
            rel_path,
            image.mime_type,
            image.width,
            image.height,
            len(image.data),
            digest,
            created_at,
            image.kind,
            image.provider,
            image.model,
            image.prompt,
            json.dumps(list(image.parent_ids)),
            json.dumps(image.metadata),
            image.owner,
        )
        try:
            with self._lock:
                self._db.execute(INSERT, row)
        except sqlite3.Error as exc:
            _remove_quietly(final_path)
            raise StoreError(
                f"could not index the image in {self.root}: {exc}. Nothing was stored."
            ) from None
        if self._retention.max_bytes is not None or self._retention.max_age_s is not None:
            self._enforce_retention(image_id)
        return self._from_row((0, *row))

    def _write_file(self, final_path: Path, data: bytes, image_id: str) -> None:
        """Write to tmp/, flush to disk, then rename: readers never see a partial file."""
        temp_path = self.root / "tmp" / f"{image_id}.part"
        try:
            final_path.parent.mkdir(parents=True, exist_ok=True)
            with open(temp_path, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_path, final_path)
        except OSError as exc:
            _remove_quietly(temp_path)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise StoreError(
                f"could not write an image to {self.root}: {reason}. Nothing was stored."
            ) from None

    def _get(self, image_id: str, owner: str | None) -> StoredImage:
        with self._lock:
            row = self._db.execute(SELECT_BY_ID, (image_id, owner, owner)).fetchone()
        if row is None:
            raise ImageNotFoundError(f"no image {image_id!r} in the store")
        return self._from_row(row)

    def _read(self, image_id: str, owner: str | None) -> tuple[StoredImage, bytes]:
        with self._lock:
            self._reading[image_id] += 1
        try:
            stored = self._get(image_id, owner)
            assert stored.path is not None  # always set by this store
            return stored, stored.path.read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"image {image_id} is indexed but its file is missing from {self.root}"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot read image {image_id} from {self.root}: {exc.strerror}") from None
        finally:
            with self._lock:
                self._reading[image_id] -= 1
                if not self._reading[image_id]:
                    del self._reading[image_id]

    def _find_by_sha256(self, sha256: str, owner: str) -> StoredImage | None:
        with self._lock:
            row = self._db.execute(SELECT_BY_SHA256, (owner, sha256)).fetchone()
        return None if row is None else self._from_row(row)

    def _children(self, image_id: str, limit: int, owner: str | None) -> list[StoredImage]:
        with self._lock:
            rows = self._db.execute(SELECT_CHILDREN, (f'%"{image_id}"%', owner, owner, limit)).fetchall()
        return [self._from_row(row) for row in rows]

    def _page(self, cursor: str | None, limit: int, owner: str | None) -> Page:
        """Keyset pagination on `seq`, continued after the cursor's image (which must be the
        caller's): one index lookup and one range scan of `limit + 1` rows."""
        after = decode_cursor(cursor) if cursor else None
        with self._lock:
            if after is None:
                rows = self._db.execute(SELECT_NEWEST, (owner, owner, limit + 1)).fetchall()
            else:
                anchor = self._db.execute(SELECT_SEQ, (after, owner, owner)).fetchone()
                if anchor is None:
                    raise invalid_cursor()
                rows = self._db.execute(SELECT_OLDER, (anchor[0], owner, owner, limit + 1)).fetchall()
        images = [self._from_row(row) for row in rows[:limit]]
        next_cursor = encode_cursor(images[-1].id) if len(rows) > limit else None
        return Page(images, next_cursor)

    def _delete(self, image_id: str) -> None:
        """Row first: a reader then gets "not found" rather than a row whose file is gone."""
        try:
            with self._lock:
                row = self._db.execute(SELECT_PATH, (image_id,)).fetchone()
                if row is None:
                    return
                self._db.execute(DELETE_BY_ID, (image_id,))
        except sqlite3.Error as exc:
            raise StoreError(f"could not remove image {image_id} from the index: {exc}") from None
        _remove_quietly(self.root / row[0])

    def _repair(self, grace_s: float) -> RepairReport:
        """Make the index and the files agree after a crash or outside meddling."""
        cutoff = time.time() - grace_s
        removed_temp = 0
        for temp in (self.root / "tmp").glob("*.part"):
            if _modified(temp) < cutoff:
                _remove_quietly(temp)
                removed_temp += 1
        with self._lock:
            indexed = dict(self._db.execute(SELECT_ALL_PATHS).fetchall())
        dropped = [image_id for image_id, rel_path in indexed.items() if not (self.root / rel_path).is_file()]
        with self._lock:
            for image_id in dropped:
                self._db.execute(DELETE_BY_ID, (image_id,))
        known = set(indexed.values())
        recovered = 0
        for path in sorted((self.root / "images").glob("*/*")):
            rel_path = path.relative_to(self.root).as_posix()
            if rel_path not in known and path.is_file() and _modified(path) < cutoff:
                recovered += self._recover(path, rel_path)
        return RepairReport(recovered=recovered, dropped_rows=len(dropped), removed_temp=removed_temp)

    def _recover(self, path: Path, rel_path: str) -> int:
        """Index a complete file that lost its row; a file that is not an image is left alone."""
        from mcp_imagegen.images import codec

        try:
            data = path.read_bytes()
            facts = codec.facts(data, max_pixels=2**40)
        except (OSError, InputError):
            return 0
        row = (
            path.stem,
            rel_path,
            facts.mime_type,
            facts.width,
            facts.height,
            len(data),
            hashlib.sha256(data).hexdigest(),
            _modified(path),
            "generated",
            None,
            None,
            None,
            "[]",
            json.dumps({"recovered": "indexed again at start-up after an interrupted write"}),
            LOCAL_OWNER,  # whose it was is not in the file; the local principal is the safe guess
        )
        try:
            with self._lock:
                self._db.execute(INSERT, row)
        except sqlite3.IntegrityError:
            return 0  # another process indexed it meanwhile
        return 1

    def _enforce_retention(self, keep_id: str | None) -> int:
        """Delete the oldest images while any is past the age limit or the store is over its
        size limit, skipping `keep_id` (the image just written) and images being read."""
        limits = self._retention
        cutoff = time.time() - limits.max_age_s if limits.max_age_s is not None else None
        doomed: list[tuple[str, str]] = []
        with self._lock:
            total = int(self._db.execute(SELECT_TOTAL_BYTES).fetchone()[0])
            for image_id, rel_path, size, created_at in self._db.execute(SELECT_OLDEST):
                expired = cutoff is not None and created_at < cutoff
                oversize = limits.max_bytes is not None and total > limits.max_bytes
                if not (expired or oversize):
                    break
                if image_id != keep_id and image_id not in self._reading:
                    doomed.append((image_id, rel_path))
                    total -= size
            for image_id, _ in doomed:
                self._db.execute(DELETE_BY_ID, (image_id,))
        for _, rel_path in doomed:
            _remove_quietly(self.root / rel_path)
        if doomed:
            logger.info("retention removed %d image(s) from %s", len(doomed), self.root)
        return len(doomed)

    def _count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def _from_row(self, row: Sequence[Any]) -> StoredImage:
        return stored_image(row, self.root / row[2])


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _remove_quietly(path: Path) -> None:
    """Best-effort cleanup inside an error path: the original error is the one to report."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
