"""The chat fake is trusted because the official openai SDK runs against it: plain and
streamed completions with images, structured output, and both error shapes."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from tests.conftest import png_bytes
from tests.fakes.openai_chat import FakeChat

IMAGE = "data:image/png;base64," + base64.b64encode(png_bytes((1, 1))).decode()


def sdk(fake: FakeChat, prefix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(api_key=fake.api_key, base_url=f"{fake.url}{prefix}", max_retries=0)


def user_message(count: int) -> list[dict[str, object]]:
    parts: list[dict[str, object]] = [{"type": "text", "text": "What is this?"}]
    parts += [{"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}] * count
    return [{"role": "user", "content": parts}]


def test_sdk_plain_and_streamed_answers(fake_chat: FakeChat) -> None:
    client = sdk(fake_chat)
    reply = client.chat.completions.create(model="gpt-5-mini", messages=user_message(2))
    assert reply.choices[0].message.content == fake_chat.answer
    assert reply.usage is not None and reply.usage.prompt_tokens == 50 + 85 * 2
    assert fake_chat.last.path == "/v1/chat/completions" and fake_chat.last.image_sizes() == [(1, 1), (1, 1)]

    stream = client.chat.completions.create(
        model="gpt-5-mini",
        messages=user_message(1),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == fake_chat.answer
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_sdk_structured_output_and_the_scaleway_project_path(fake_chat: FakeChat) -> None:
    client = sdk(fake_chat, "/my-project/v1")
    reply = client.chat.completions.create(
        model="pixtral-12b-2409",
        messages=user_message(1),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}},
        },
    )
    assert fake_chat.last.path == "/my-project/v1/chat/completions"
    assert json.loads(reply.choices[0].message.content or "") == fake_chat.structured_answer


def test_sdk_sees_both_error_shapes(fake_chat: FakeChat) -> None:
    client = sdk(fake_chat)
    with pytest.raises(openai.BadRequestError, match="Too many images: at most 12"):
        client.chat.completions.create(model="m", messages=user_message(13))
    fake_chat.error_shape = "legacy"
    with pytest.raises(openai.BadRequestError, match="Too many images"):
        client.chat.completions.create(model="m", messages=user_message(13))
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=f"{fake_chat.url}/v1", max_retries=0).chat.completions.create(
            model="m",
            messages=user_message(1),
        )
