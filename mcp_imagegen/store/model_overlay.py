"""Where `mcp-imagegen models check` keeps what it learned (`model_data.Overlay`): a JSON file in
the store folder, or one row of the shared database, so that every replica reads the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
from pydantic import ValidationError

from mcp_imagegen.errors import StoreError, first_line
from mcp_imagegen.providers.model_data import Overlay

if TYPE_CHECKING:
    from mcp_imagegen.database import Database

OVERLAY_FILE = "model-overlay.json"


class ModelOverlay(Protocol):
    async def read(self) -> Overlay | None:
        """The latest check's overlay; None before any (or where it cannot be read: the shipped
        data alone then holds)."""
        ...

    async def write(self, overlay: Overlay) -> None: ...


class FileOverlay:
    """`model-overlay.json` in the store folder, replaced whole (write, then rename)."""

    def __init__(self, store_dir: Path) -> None:
        self._path = store_dir / OVERLAY_FILE

    async def read(self) -> Overlay | None:
        return await anyio.to_thread.run_sync(self._read)

    def _read(self) -> Overlay | None:
        try:
            return Overlay.model_validate_json(self._path.read_bytes())
        except (OSError, ValidationError, ValueError):
            return None

    async def write(self, overlay: Overlay) -> None:
        await anyio.to_thread.run_sync(self._write, overlay)

    def _write(self, overlay: Overlay) -> None:
        partial = self._path.with_suffix(".partial")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(overlay.model_dump_json(indent=1), encoding="utf-8")
            os.replace(partial, self._path)
        except OSError as exc:
            raise StoreError(f"cannot write the model overlay {self._path}: {exc.strerror}") from None


class DatabaseOverlay:
    """The `model_overlay` row of the shared database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def read(self) -> Overlay | None:
        try:
            async with self._database.connection() as connection:
                cursor = await connection.execute("SELECT document FROM model_overlay WHERE id = 1")
                row = await cursor.fetchone()
        except Exception as exc:  # noqa: BLE001 - psycopg is imported lazily; any failure reads as none
            raise StoreError(
                f"the model overlay at {self._database.where} failed: {first_line(exc)}"
            ) from None
        if row is None:
            return None
        try:
            return Overlay.model_validate(row[0])
        except ValidationError:
            return None

    async def write(self, overlay: Overlay) -> None:
        from psycopg.types.json import Jsonb

        async with self._database.connection() as connection:
            await connection.execute(
                "INSERT INTO model_overlay (id, document, checked_at) VALUES (1, %s, %s) ON CONFLICT (id) "
                "DO UPDATE SET document = EXCLUDED.document, checked_at = EXCLUDED.checked_at",
                (Jsonb(overlay.model_dump(mode="json")), overlay.checked_at.timestamp()),
            )
