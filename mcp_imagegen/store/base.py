"""The store contract: every image made or received is kept here and addressed by id."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import JsonValue

ImageKind = Literal[
    "generated", "edited", "input", "mask", "partial", "upscaled", "segment_mask", "cutout", "recontexted"
]
"""`partial`: an intermediate image streamed during a call; readable by URI, left out of
listings, and removed when its call ends unless the caller asked to keep it."""
URI_PREFIX = "imagegen://images/"
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
    """An image in the store; `path` is the full-size file on disk."""

    id: str
    path: Path
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

    async def page(self, cursor: str | None, limit: int, *, owner: str | None) -> Page:
        """Newest first, partial images left out; `cursor` is opaque and comes from a previous
        page. Raises InputError for a cursor that did not."""
        ...

    async def delete(self, image_id: str) -> None:
        """Remove the index row, then the file; an unknown id is not an error."""
        ...

    async def count(self) -> int: ...

    def close(self) -> None: ...
