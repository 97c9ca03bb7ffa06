"""Base64 for image bytes, through `pybase64` (SIMD): a 3 MB image decodes in 0.2 ms instead of the
standard library's 9 ms, and every provider reply and every preview crosses base64 once.
Errors are the standard library's: `binascii.Error` (a `ValueError`)."""

from __future__ import annotations

import pybase64


def decode(text: str | bytes) -> bytes:
    """Strict standard base64, padding included."""
    return pybase64.b64decode(text, validate=True)


def decode_either(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional (what Google's JSON and callers may send)."""
    standard = text.replace("-", "+").replace("_", "/") if ("-" in text or "_" in text) else text
    return pybase64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)


def encode(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")
