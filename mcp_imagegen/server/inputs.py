"""Where a caller's image references are read: a store URI names one of the caller's own images
(or, for an admin, anyone's) and is read from the store with the caller as owner; every other
form goes to the reader (`images/inputs.py`), which knows neither the store nor the caller."""

from __future__ import annotations

from mcp_imagegen.errors import ImageNotFoundError, InputError
from mcp_imagegen.images.inputs import RawInput, ReferenceReader
from mcp_imagegen.server.principals import Principal
from mcp_imagegen.store.base import URI_PREFIX, Store


class InputResolver:
    """Every accepted form of image reference, read for one caller at a time."""

    def __init__(self, store: Store, reader: ReferenceReader) -> None:
        self._store = store
        self._reader = reader

    async def resolve(self, reference: str, what: str, caller: Principal) -> RawInput:
        """Read the image `reference` names for `caller`; InputError says what is wrong and how to
        fix it."""
        text = reference.strip()
        if text[:16].lower().startswith(URI_PREFIX[:11]):
            return await self._from_store(text, what, caller)
        return await self._reader.read(text, what, remote=caller.remote)

    async def _from_store(self, uri: str, what: str, caller: Principal) -> RawInput:
        image_id = uri[len(URI_PREFIX) :] if uri.startswith(URI_PREFIX) else ""
        if not image_id or "/" in image_id:
            raise InputError(f"{what} {uri!r} is not an image URI; use imagegen://images/<id>")
        try:
            stored, data = await self._store.read(image_id, owner=caller.sees)
        except ImageNotFoundError:
            raise InputError(f"{what}: no image {image_id!r} in the store (see resources/list)") from None
        return RawInput(data, stored.name, stored.id)
