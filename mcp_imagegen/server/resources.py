"""Images as MCP resources: `imagegen://images/{id}` (the file) and `.../metadata` (JSON).

`resources/list` pages through the store newest first with opaque cursors; each page
costs one index range scan, however large the store grows.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import Annotations, Resource, ResourceTemplate

from mcp_imagegen.errors import ImageNotFoundError, StoreError
from mcp_imagegen.server.principals import Principal
from mcp_imagegen.store.base import URI_PREFIX, Store, StoredImage, image_uri, metadata_uri

PAGE_SIZE = 50
METADATA_SUFFIX = "/metadata"

TEMPLATES = [
    ResourceTemplate(
        name="image",
        title="Stored image",
        uri_template=f"{URI_PREFIX}{{id}}",
        description="A full-size image from the store, as a blob with its own mime type.",
    ),
    ResourceTemplate(
        name="image-metadata",
        title="Stored image metadata",
        uri_template=f"{URI_PREFIX}{{id}}{METADATA_SUFFIX}",
        description="Prompt, provider, model, parameters, parent images, size and sha256 of a stored image.",
        mime_type="application/json",
    ),
]


def is_image_uri(uri: str) -> bool:
    return uri.startswith(URI_PREFIX)


async def list_page(store: Store, cursor: str | None, caller: Principal) -> tuple[list[Resource], str | None]:
    """The caller's images (everyone's for an admin), newest first."""
    page = await store.page(cursor, PAGE_SIZE, owner=caller.sees)
    return [_resource(image) for image in page.images], page.next_cursor


def _resource(image: StoredImage) -> Resource:
    prompt = (image.prompt or "").strip()
    source = f" by {image.provider}/{image.model}" if image.provider else ""
    return Resource(
        uri=image.uri,
        name=image.name,
        title=prompt[:80] or f"{image.kind} image",
        description=f"{image.kind} {image.width}x{image.height}{source}"
        + (f": {prompt[:200]}" if prompt else ""),
        mime_type=image.mime_type,
        size=image.bytes,
        annotations=Annotations(
            audience=["user", "assistant"],
            priority=0.2 if image.kind in ("partial", "input", "mask") else 0.8,
            last_modified=iso_time(image.created_at),
        ),
    )


async def read(store: Store, uri: str, caller: Principal) -> list[ReadResourceContents]:
    """The file (blob) or its metadata (JSON) for an `imagegen://images/...` URI; someone else's
    image is not found, exactly like one that does not exist."""
    rest = uri[len(URI_PREFIX) :]
    wants_metadata = rest.endswith(METADATA_SUFFIX)
    image_id = rest.removesuffix(METADATA_SUFFIX) if wants_metadata else rest
    if not image_id or "/" in image_id:
        raise ResourceNotFoundError(f"Unknown resource: {uri}")
    try:
        if wants_metadata:
            image = await store.get(image_id, owner=caller.sees)
            document = metadata_json(image, show_path=not caller.remote)
            return [ReadResourceContents(content=document, mime_type="application/json")]
        image, data = await store.read(image_id, owner=caller.sees)
    except ImageNotFoundError:
        raise ResourceNotFoundError(f"Unknown resource: {uri} (no such image in the store)") from None
    except StoreError as exc:
        raise ResourceError(str(exc)) from None
    return [ReadResourceContents(content=data, mime_type=image.mime_type)]


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def metadata_json(image: StoredImage, *, show_path: bool) -> str:
    """The metadata document; the file's path only where the caller is on this machine."""
    created = iso_time(image.created_at)
    document = {
        "id": image.id,
        "uri": image_uri(image.id),
        "metadata_uri": metadata_uri(image.id),
        **({"path": str(image.path)} if show_path and image.path else {}),
        "owner": image.owner,
        "kind": image.kind,
        "mime_type": image.mime_type,
        "width": image.width,
        "height": image.height,
        "bytes": image.bytes,
        "sha256": image.sha256,
        "created_at": created,
        "provider": image.provider,
        "model": image.model,
        "prompt": image.prompt,
        "parent_ids": list(image.parent_ids),
        "parent_uris": [image_uri(parent) for parent in image.parent_ids],
        **image.metadata,
    }
    return json.dumps(document, indent=2)
