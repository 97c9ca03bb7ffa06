"""Turn an image reference that is not a store URI into bytes: a local path (or `file://` URI)
inside an allowed folder or the store, an http(s) URL, a `data:` URI, or raw base64. Sizes are
capped before anything is decoded; paths are resolved (symlinks, `..`) before the check.

A caller over an authenticated remote transport may name files only inside
IMAGEGEN_REMOTE_ALLOW_PATHS, never inside the store (whose files belong to everyone). Store URIs,
which name one of the caller's own images, are read by `server/inputs.py`, which knows the store
and the caller: this module knows neither.
"""

from __future__ import annotations

import binascii
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import anyio.to_thread

from mcp_imagegen.errors import InputError
from mcp_imagegen.images import b64
from mcp_imagegen.images.fetch import UrlFetcher

WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")
LONG_REFERENCE = 1024
"""Longer strings are treated as base64, never as paths (JPEG base64 starts with `/9j/`)."""


@dataclass(frozen=True)
class RawInput:
    """Bytes of a caller's image before decoding, and where they came from."""

    data: bytes
    filename: str
    store_id: str | None = None


class ReferenceReader:
    """Reads every reference form but store URIs, within the folders and limits it was given."""

    def __init__(
        self,
        store_dir: Path,
        allowed_dirs: list[Path],
        max_bytes: int,
        urls: UrlFetcher | None = None,
        remote_roots: list[Path] | None = None,
        private: list[Path] | None = None,
    ) -> None:
        self._roots = [store_dir, *allowed_dirs]
        self._remote_roots = list(remote_roots or [])
        self._private = [store_dir, *(private or [])]
        self._max_bytes = max_bytes
        self._urls = urls

    async def read(self, reference: str, what: str, *, remote: bool) -> RawInput:
        """Read the image `reference` names, for a caller over the network (`remote`) or on this
        machine; InputError says what is wrong and how to fix it."""
        text = reference.strip()
        if not text:
            raise InputError(f"{what} is empty; pass an imagegen:// URI, a file path, a data URI or base64")
        lowered = text[:16].lower()
        if lowered.startswith("data:"):
            return RawInput(self._from_data_uri(text, what), "image")
        if lowered.startswith(("http://", "https://")):
            if self._urls is None:
                raise InputError(
                    f"{what} is a URL; URL inputs are disabled on this server (IMAGEGEN_ALLOW_URL_INPUTS). "
                    "Download the image and pass its path, a data URI or base64 instead"
                )
            data, filename = await self._urls.fetch(text, what)
            return RawInput(data, filename)
        if lowered.startswith("file:"):
            return await self._from_path(_file_uri_path(text, what), what, remote)
        if len(text) <= LONG_REFERENCE and _looks_like_path(text):
            return await self._from_path(Path(text), what, remote)
        if BASE64_TEXT.match(text):
            return RawInput(self._decode_base64(text, what), "image")
        raise InputError(
            f"{what} is not an imagegen:// URI, an absolute file path, a data URI or base64: {text[:60]!r}"
        )

    async def _from_path(self, path: Path, what: str, remote: bool) -> RawInput:
        roots = self._remote_roots if remote else self._roots
        if not roots:
            raise InputError(
                f"{what}: file paths are not read for callers over the network; pass an imagegen:// URI, "
                "a data URI or base64 (the server's operator may allow folders: IMAGEGEN_REMOTE_ALLOW_PATHS)"
            )
        excluded = self._private if remote else []
        return await anyio.to_thread.run_sync(self._read_path, path, what, roots, excluded)

    def _read_path(self, path: Path, what: str, roots: list[Path], excluded: list[Path]) -> RawInput:
        resolved = self._checked_path(path.expanduser(), what, roots, excluded)
        return RawInput(resolved.read_bytes(), resolved.name)

    def _checked_path(self, path: Path, what: str, allowed: list[Path], excluded: list[Path]) -> Path:
        """The file `path` names, if it is inside an allowed root and inside none of `excluded`
        (both by real path, links resolved); anything else gets the same "outside" answer, so a
        caller learns nothing about what exists where it may not read."""
        text = str(path)
        if "\0" in text:
            raise InputError(f"{what} path contains a NUL character")
        if text.startswith(("\\\\", "//")):
            raise InputError(
                f"{what}: network paths ({text[:40]!r}) are not read; copy the file into an allowed folder"
            )
        if WINDOWS_DRIVE.match(text) and os.name != "nt":
            raise InputError(
                f"{what}: {text!r} is a Windows path, but this server runs on {sys.platform}; "
                "give a path on the server's machine"
            )
        if not path.is_absolute():
            raise InputError(f"{what} path {text!r} is relative; give an absolute path")
        roots = [root.expanduser().resolve() for root in allowed]
        hidden = [place.expanduser().resolve() for place in excluded]

        def readable(candidate: Path) -> bool:
            inside = any(candidate.is_relative_to(root) for root in roots)
            return inside and not any(candidate.is_relative_to(place) for place in hidden)

        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            # Said only where the caller may read: elsewhere, "does not exist" would tell a caller
            # which files the server's machine has (in the store: which image ids exist).
            resolved = Path(os.path.normpath(path))
            if readable(resolved) and readable(Path(os.path.realpath(path))):
                raise InputError(f"{what}: file {text!r} does not exist") from None
        if not readable(resolved):
            folders = ", ".join(str(root) for root in roots)
            setting = (
                "IMAGEGEN_REMOTE_ALLOW_PATHS" if allowed is self._remote_roots else "IMAGEGEN_ALLOWED_DIRS"
            )
            raise InputError(
                f"{what}: {str(path)!r} is outside the folders this server may read ({folders}). "
                f"Add its folder to {setting}, or pass the image as a data URI or base64"
            )
        if not resolved.is_file():
            raise InputError(f"{what}: {str(path)!r} is not a file")
        size = resolved.stat().st_size
        if size > self._max_bytes:
            raise InputError(f"{what} is {size:,} bytes, over the {self._max_bytes:,}-byte input limit")
        return resolved

    def _from_data_uri(self, uri: str, what: str) -> bytes:
        header, comma, payload = uri.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise InputError(f"{what} data URI must be base64-encoded: data:image/png;base64,<data>")
        return self._decode_base64(payload, what)

    def _decode_base64(self, text: str, what: str) -> bytes:
        compact = "".join(text.split())
        if len(compact) * 3 // 4 > self._max_bytes:
            raise InputError(f"{what} is over the {self._max_bytes:,}-byte input limit")
        try:
            return b64.decode_either(compact)
        except (binascii.Error, ValueError):
            raise InputError(f"{what} is not valid base64") from None


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "\\", "./")) or bool(WINDOWS_DRIVE.match(text))


def _file_uri_path(uri: str, what: str) -> Path:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise InputError(f"{what}: file URIs must point at this machine, not {parsed.netloc!r}")
    return Path(url2pathname(parsed.path))
