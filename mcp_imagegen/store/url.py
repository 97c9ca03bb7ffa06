"""`IMAGEGEN_STORE_URL`: the object storage location of a shared store."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp_imagegen.errors import ConfigError


@dataclass(frozen=True)
class StoreUrl:
    """`s3://bucket/prefix`: where the images go."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(
                f"IMAGEGEN_STORE_URL {url!r} is not an object store URL: use s3://BUCKET or "
                "s3://BUCKET/PREFIX (credentials and endpoint come from the AWS_* variables)"
            )
        return cls(parts.netloc, parts.path.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
