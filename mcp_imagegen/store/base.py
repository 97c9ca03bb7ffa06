"""The store contract: every image made or received is kept here and addressed by id."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from pydantic import JsonValue

from mcp_imagegen.errors import InputError
from mcp_imagegen.images.codec import EXTENSION_BY_MIME
from mcp_imagegen.operations import MadeKind

ImageKind = Literal[MadeKind, "input", "mask", "partial", "cutout"]
"""What an image is: what an operation made (`operations.MadeKind`), an input or mask a call was
given, a cut-out a segmentation made beside its masks, or a `partial`: an intermediate image
streamed during a call, readable by URI, left out of listings, and removed when its call ends
unless the caller asked to keep it."""
URI_PREFIX = "imagegen://images/"
CURSOR_PREFIX = "v2:"
MAX_CURSOR = 128
IMAGE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
LOCAL_OWNER = "local"
"""The owner of everything made over stdio or unauthenticated HTTP, and of rows older than owners."""


def image_uri(image_id: str) -> str:
    return f"{URI_PREFIX}{image_id}"


def metadata_uri(image_id: str) -> str:
    return f"{URI_PREFIX}{image_id}/metadata"


@dataclass(frozen=True)
class NewImage:
    """What the caller knows about an image before it is stored."""

    data: bytes
    mime_type: str
    width: int
    height: int
    kind: ImageKind
    owner: str
    """The principal it belongs to (`server.principals`): only they (and an admin) can see it."""
    provider: str | None = None
    model: str | None = None
    prompt: str | None = None
    parent_ids: tuple[str, ...] = ()
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    """Parameters, usage, revised prompt: anything worth showing in the metadata resource."""


@dataclass(frozen=True)
class StoredImage:
    """An image in the store."""

    id: str
    path: Path | None
    """The full-size file, where the store keeps images on this machine's disk (the local
    store); None on an object store."""
    mime_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    created_at: float
    kind: ImageKind
    owner: str
    provider: str | None
    model: str | None
    prompt: str | None
    parent_ids: tuple[str, ...]
    metadata: dict[str, JsonValue]

    @property
    def uri(self) -> str:
        return image_uri(self.id)

    @property
    def name(self) -> str:
        """The file name a host shows and saves it under: `<id>.<ext>`."""
        return f"{self.id}.{EXTENSION_BY_MIME.get(self.mime_type, 'bin')}"


@dataclass(frozen=True)
class Page:
    images: list[StoredImage]
    next_cursor: str | None


class Store(Protocol):
    """Async facade; implementations do their blocking work off the event loop.

    Every lookup is scoped to an owner: an image of someone else is exactly as absent as one
    that never existed (the same error, the same query). `owner=None` means anyone's, for the
    admin scope only.
    """

    async def put(self, image: NewImage) -> StoredImage: ...

    async def get(self, image_id: str, *, owner: str | None) -> StoredImage:
        """Raises ImageNotFoundError."""
        ...

    async def read(self, image_id: str, *, owner: str | None) -> tuple[StoredImage, bytes]:
        """The record and the file's bytes; raises ImageNotFoundError."""
        ...

    async def find_by_sha256(self, sha256: str, *, owner: str) -> StoredImage | None:
        """The owner's oldest image with these bytes, partial images excepted."""
        ...

    async def children(self, image_id: str, limit: int, *, owner: str | None) -> list[StoredImage]:
        """The images made from this one (it is among their parents), newest first, partial
        images left out."""
        ...

    async def page(self, cursor: str | None, limit: int, *, owner: str | None) -> Page:
        """Newest first, partial images left out; `cursor` is opaque and comes from a previous
        page. Raises InputError for a cursor that did not."""
        ...

    async def delete(self, image_id: str) -> None:
        """Remove the index row, then the file; an unknown id is not an error."""
        ...

    async def count(self) -> int: ...

    def download_url(self, image: StoredImage, ttl_s: int) -> str | None:
        """A presigned URL for the full-size image, where the store can make one (object storage);
        None where the server serves downloads itself."""
        ...

    def close(self) -> None: ...


def encode_cursor(image_id: str) -> str:
    """A page cursor: the id of the last image shown. It says nothing a caller does not already
    know (their own image's id, not the store's global position), and only that image's owner
    (or an admin) can continue from it."""
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{image_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The image id a cursor continues after (InputError for anything else)."""
    if len(cursor) <= MAX_CURSOR:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
        image_id = text.removeprefix(CURSOR_PREFIX)
        if text.startswith(CURSOR_PREFIX) and IMAGE_ID.fullmatch(image_id):
            return image_id
    raise invalid_cursor()


def invalid_cursor() -> InputError:
    """The one answer to a cursor that is malformed, another person's, or past a deleted image."""
    return InputError(
        "invalid cursor: pass the nextCursor of a previous resources/list page (if the image that "
        "page ended with was deleted since, list again from the start)"
    )


def stored_image(row: Sequence[Any], path: Path | None) -> StoredImage:
    """A record from an index row in the order both stores select their columns; JSON
    columns come as text (SQLite) or already parsed (PostgreSQL's JSONB)."""
    (
        _seq, image_id, _where, mime_type, width, height, size, digest, created_at, kind, provider, model,
        prompt, parent_ids, metadata, owner,
    ) = row  # fmt: skip
    return StoredImage(
        id=image_id,
        path=path,
        mime_type=mime_type,
        width=width,
        height=height,
        bytes=size,
        sha256=digest,
        created_at=created_at,
        kind=cast(ImageKind, kind),
        owner=owner,
        provider=provider,
        model=model,
        prompt=prompt,
        parent_ids=tuple(json.loads(parent_ids) if isinstance(parent_ids, str) else parent_ids),
        metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
    )
