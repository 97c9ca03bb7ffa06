"""Full-size download links for hosts that cannot read resources (`IMAGEGEN_PUBLIC_URL` set):
one time-limited link per image, valid for `IMAGEGEN_LINK_TTL_SECONDS`, good for that image only.

On an object store the link is the store's own presigned GET. On the local store it is this
server's `/files/{id}?expires=…&signature=…`, signed with HMAC-SHA256 under a key kept in the store
folder (`link.key`, created once, readable by its owner only), so links survive a restart. Anyone
holding a link can fetch that one image until it expires, as with any presigned URL; nothing else
is reachable with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from mcp_imagegen.errors import StoreError
from mcp_imagegen.store.base import StoredImage

FILES_PATH = "/files/"
KEY_FILE = "link.key"


class LinkSigner:
    """Signs and checks `/files/{id}` links."""

    def __init__(self, base_url: str, key: bytes, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url
        self._key = key
        self.ttl_s = ttl_s
        self._clock = clock

    def url(self, image_id: str) -> str:
        expires = int(self._clock()) + self.ttl_s
        query = urlencode({"expires": expires, "signature": self._signature(image_id, expires)})
        return f"{self.base_url}{FILES_PATH}{image_id}?{query}"

    def check(self, image_id: str, expires: str, signature: str) -> str | None:
        """None for a good link, or why it is refused."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            return "this link is malformed"
        deadline = int(expires)
        # As bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, once a 500).
        if not hmac.compare_digest(signature.encode(), self._signature(image_id, deadline).encode()):
            return "this link's signature does not match: copy the whole link from the tool result"
        if self._clock() > deadline:
            return "this link has expired: call the tool again, or read the image's resource"
        return None

    def _signature(self, image_id: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{image_id}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def site_of(public_url: str) -> str:
    """`https://img.example.com/mcp` → `https://img.example.com`: where `/files/` is served."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"


def link_key(store_dir: Path) -> bytes:
    """The signing key in the store folder, made on first use (0600)."""
    path = store_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot read the link key {path}: {exc.strerror}") from None
    key = secrets.token_bytes(32)
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot write the link key {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


class DownloadLinks:
    """The link for a stored image: the store's presigned URL where it makes one, else ours."""

    def __init__(self, signer: LinkSigner, presign: Callable[[StoredImage, int], str | None]) -> None:
        self.signer = signer
        self._presign = presign

    def url(self, image: StoredImage) -> str:
        return self._presign(image, self.signer.ttl_s) or self.signer.url(image.id)
