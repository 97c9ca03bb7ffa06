"""Image bytes in S3-compatible object storage (`IMAGEGEN_STORE_URL=s3://bucket/prefix`).

The client is obstore (the `[scale]` extra): a thin binding of the Rust `object_store` crate,
async without a thread pool, that reads the standard AWS variables itself (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …), signs presigned
URLs, and sends every upload with its SHA-256 (`x-amz-checksum-sha256`), which the server checks
before it accepts the object. Import this module only when an object store is configured
(`store.selection`): the embedded default never loads obstore.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import AsyncIterator

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from mcp_imagegen.errors import ConfigError, StoreError, first_line
from mcp_imagegen.store.url import StoreUrl

FAILURES = (BaseError, OSError)
"""What obstore raises: its own errors, and OSError subclasses (FileNotFoundError for a missing
object, ConnectionError) for others."""

RETRIES = 2
RETRY_TIMEOUT_S = 10.0
"""A request to an unreachable object store fails within seconds, as a clear error, rather than
after object_store's default of ten retries over three minutes."""
STREAM_CHUNK = 1024 * 1024


class ObjectStore:
    """Put, get, stream, delete and sign objects under one bucket and prefix."""

    def __init__(self, url: StoreUrl) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        self.url = url
        try:
            self._store: S3Store = S3Store(
                url.bucket,
                prefix=url.prefix or None,
                checksum_algorithm="sha256",
                client_options={"allow_http": endpoint.startswith("http://")},
                retry_config={
                    "max_retries": RETRIES,
                    "retry_timeout": datetime.timedelta(seconds=RETRY_TIMEOUT_S),
                    "backoff": {
                        "init_backoff": datetime.timedelta(milliseconds=100),
                        "max_backoff": datetime.timedelta(seconds=2),
                        "base": 2.0,
                    },
                },
            )
        except (*FAILURES, ValueError, TypeError) as exc:  # a bad AWS_* value
            raise ConfigError(f"cannot use the object store {url}: {first_line(exc)}") from None

    async def put(self, key: str, data: bytes, mime_type: str) -> None:
        """Upload the whole object, checksummed; it exists (complete) only once this returns."""
        try:
            await obstore.put_async(self._store, key, data, attributes={"Content-Type": mime_type})
        except FAILURES as exc:
            raise StoreError(
                f"could not write an image to {self.url}: {first_line(exc)}. Nothing was stored."
            ) from None

    async def get(self, key: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            raise StoreError(f"an image is indexed but its object {key} is missing from {self.url}") from None
        except FAILURES as exc:
            raise StoreError(f"cannot read {key} from {self.url}: {first_line(exc)}") from None

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object in chunks of about a megabyte, never whole in memory."""
        try:
            result = await obstore.get_async(self._store, key)
            async for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
                yield bytes(chunk)
        except FileNotFoundError:
            raise StoreError(f"an image is indexed but its object {key} is missing from {self.url}") from None
        except StoreError:
            raise
        except FAILURES as exc:
            raise StoreError(f"cannot read {key} from {self.url}: {first_line(exc)}") from None

    async def delete(self, key: str) -> None:
        """Remove the object; one that is already gone is not an error."""
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            return
        except FAILURES as exc:
            raise StoreError(f"could not remove {key} from {self.url}: {first_line(exc)}") from None

    def signed_url(self, key: str, ttl_s: float) -> str:
        """A presigned GET for this one object, valid for `ttl_s` seconds."""
        return str(obstore.sign(self._store, "GET", key, datetime.timedelta(seconds=ttl_s)))
