"""Parse a JSON reply whose image fields hold megabytes of base64, without copying them as text.

`json.loads` on a provider's reply decodes the whole body to text and then copies each base64
value into a string of its own: at 1024x1024 that is 8 MB of text made and dropped per image, and
at 3840x2160 about 60 MB, the largest allocations of a call. Here each string value of the named
key is found in the body's bytes and base64-decoded straight from them, and only the rest of the
body (a few hundred bytes) goes through `json.loads`. The values come back as the decoded bytes.

Nothing is guessed: a value is lifted only where the key is a real key (its quotes not escaped)
and its value a string that decodes as strict standard base64; anything else, including a value
with escapes such as `\\/`, and a reply that is not valid JSON, is left to `json.loads` on the whole
body, whose values are then base64 text as usual.
"""

from __future__ import annotations

import json
from typing import Any

import pybase64

LIFT_FROM_BYTES = 8 * 1024
"""Smaller replies (errors, tiny images) gain nothing: plain `json.loads`."""
_SPACE = b" \t\r\n"
_QUOTE = ord('"')
_COLON = ord(":")
_BACKSLASH = ord("\\")


def loads_decoding(body: bytes, key: str) -> Any:
    """`json.loads(body)`, with every string value of `key` decoded from base64 to bytes when
    all of them are strict standard base64 (otherwise exactly `json.loads(body)`)."""
    marker = b'"' + key.encode() + b'"'
    found = body.find(marker) if len(body) >= LIFT_FROM_BYTES else -1
    if found < 0:
        return json.loads(body)
    pieces: list[bytes] = []
    images: list[bytes] = []
    view = memoryview(body)
    position = 0
    while found >= 0:
        start = _string_value_at(body, found, len(marker))
        if start is not None:
            end = body.find(b'"', start)
            if end < 0:
                return json.loads(body)  # unterminated: let json say where
            try:
                image = pybase64.b64decode(view[start:end], validate=True)
            except ValueError:  # escapes, or not base64: the whole body as usual
                return json.loads(body)
            pieces += (body[position:start], str(len(images)).encode())
            images.append(image)
            position = found = end
        found = body.find(marker, found + 1)
    pieces.append(body[position:])
    skeleton = json.loads(b"".join(pieces))
    restored = _restore(skeleton, key, images)
    if restored != len(images):  # a placeholder not where a value of `key` is: do not trust it
        return json.loads(body)
    return skeleton


def _string_value_at(body: bytes, found: int, length: int) -> int | None:
    """Where the string value of the key whose marker starts at `found` begins, or None when the
    marker is not a key with a string value (escaped, inside a string, or followed by no string)."""
    backslashes = 0
    while found - backslashes > 0 and body[found - backslashes - 1] == _BACKSLASH:
        backslashes += 1
    if backslashes % 2:
        return None
    cursor = found + length
    while cursor < len(body) and body[cursor] in _SPACE:
        cursor += 1
    if cursor >= len(body) or body[cursor] != _COLON:
        return None
    cursor += 1
    while cursor < len(body) and body[cursor] in _SPACE:
        cursor += 1
    return cursor + 1 if cursor < len(body) and body[cursor] == _QUOTE else None


def _restore(value: Any, key: str, images: list[bytes]) -> int:
    """Put each decoded image back where its placeholder (its index) is; how many were put back."""
    count = 0
    if isinstance(value, dict):
        for name, item in value.items():
            if name == key and isinstance(item, str) and item.isdigit() and int(item) < len(images):
                value[name] = images[int(item)]
                count += 1
            else:
                count += _restore(item, key, images)
    elif isinstance(value, list):
        for item in value:
            count += _restore(item, key, images)
    return count
