"""Replies with megabytes of base64 are parsed without copying the base64 as text: what comes back
is what `json.loads` gives, with each image value decoded to the provider's exact bytes, and any
reply the fast path cannot be sure of is parsed by `json.loads` as a whole."""

from __future__ import annotations

import base64
import json
import os

import pytest

from mcp_imagegen.providers.image_json import LIFT_FROM_BYTES, loads_decoding

IMAGES = [os.urandom(30_000), os.urandom(20_001), b""]


def reply(images: list[bytes], *, prompt: str = "a fox", space: str = "", slash: str = "/") -> bytes:
    items = ",".join(
        f'{{"revised_prompt":{json.dumps(prompt)},"b64_json"{space}:{space}"'
        + base64.b64encode(image).decode().replace("/", slash)
        + '"}'
        for image in images
    )
    return f'{{"created":1,"data":[{items}],"usage":{{"total_tokens":5}}}}'.encode()


def decoded(body: bytes) -> object:
    """What json.loads gives, with every image value decoded by the standard library."""
    parsed = json.loads(body)
    for item in parsed["data"]:
        item["b64_json"] = base64.b64decode(item["b64_json"])
    return parsed


@pytest.mark.parametrize("space", ["", " ", "\n\t "])
def test_images_come_back_as_their_bytes_and_the_rest_as_json_gives_it(space: str) -> None:
    body = reply(IMAGES, space=space)
    parsed = loads_decoding(body, "b64_json")
    assert parsed == decoded(body)
    assert [item["b64_json"] for item in parsed["data"]] == IMAGES


def test_a_key_quoted_inside_a_text_is_left_alone() -> None:
    body = reply(IMAGES[:1], prompt='say "b64_json": "QUJD" and \\"b64_json\\":')
    parsed = loads_decoding(body, "b64_json")
    assert parsed == decoded(body)
    assert parsed["data"][0]["revised_prompt"] == 'say "b64_json": "QUJD" and \\"b64_json\\":'


def test_escaped_slashes_leave_the_reply_to_json_loads() -> None:
    body = reply(IMAGES[:2], slash="\\/")  # legal JSON; some servers escape every slash
    assert b"\\/" in body
    assert loads_decoding(body, "b64_json") == json.loads(body)


@pytest.mark.parametrize(
    "broken",
    [
        b'{"data":[{"b64_json":"QUJD!"}], "pad": "%s"}',  # not base64
        b'{"data":[{"b64_json":"QUJD","b64_json":"REVG"}], "pad": "%s"}',  # a key twice in one object
        b'{"data":[{"b64_json":null}], "pad": "%s"}',  # not a string
        b'{"data":[{"say \\"b64_json": "QUJD"}], "pad": "%s"}',  # a key that ends in the name
    ],
)
def test_anything_unusual_gives_what_json_loads_gives(broken: bytes) -> None:
    body = broken % (b"x" * LIFT_FROM_BYTES)
    expected = json.loads(body)
    assert loads_decoding(body, "b64_json") == expected


def test_a_value_of_the_key_at_any_depth_is_decoded() -> None:
    body = b'{"data":[{"other":{"b64_json":"QUJD"}}], "pad": "%s"}' % (b"x" * LIFT_FROM_BYTES)
    parsed = loads_decoding(body, "b64_json")
    assert parsed["data"][0]["other"]["b64_json"] == b"ABC"
    assert parsed["pad"] == "x" * LIFT_FROM_BYTES


def test_small_replies_and_invalid_json() -> None:
    small = b'{"data":[{"b64_json":"QUJD"}]}'
    assert loads_decoding(small, "b64_json") == json.loads(small)
    truncated = reply(IMAGES[:1])[:-40]
    with pytest.raises(json.JSONDecodeError):
        loads_decoding(truncated, "b64_json")
    unterminated = b'{"data":[{"b64_json":"' + b"QUJD" * LIFT_FROM_BYTES
    with pytest.raises(json.JSONDecodeError):
        loads_decoding(unterminated, "b64_json")
