"""Streamed OpenAI image calls (providers.md 1.5) and the progress milestones of every call.

Requests are compared with the official SDK's on the wire; replies come from the
loopback fake's SSE streams, including broken ones.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import openai
import pytest
from PIL import Image

from mcp_imagegen.config import OpenAISettings
from mcp_imagegen.errors import ContentPolicyError, ProviderUnreachableError
from mcp_imagegen.providers.base import EditRequest, GenerateRequest, InputImage
from mcp_imagegen.providers.openai.endpoint import openai_capabilities, openai_endpoint
from mcp_imagegen.providers.openai.images import OpenAIImages
from tests.conftest import image_size, png_bytes
from tests.fakes.openai_images import FakeOpenAIImages
from tests.test_openai_wire import assert_same_wire
from tests.waiting import eventually

pytestmark = pytest.mark.anyio
CAPS = openai_capabilities(("gpt-image-2",), "gpt-image-2", ("png", "jpeg", "webp"))


@dataclass
class RecordingEvents:
    steps: list[str] = field(default_factory=list)
    partials: list[tuple[int, bytes]] = field(default_factory=list)
    replies: list[tuple[int | None, list[str]]] = field(default_factory=list)
    """Each reply announced before its body was read: its size, and the steps reported until then."""

    def step(self, message: str) -> None:
        self.steps.append(message)

    async def partial_image(self, data: bytes, index: int) -> None:
        self.partials.append((index, data))

    async def reply_arriving(self, size: int | None) -> None:
        self.replies.append((size, list(self.steps)))


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def ours(fake: FakeOpenAIImages, http: httpx2.AsyncClient, timeout_s: float = 30) -> OpenAIImages:
    config = OpenAISettings(api_key=fake.api_key, base_url=f"{fake.url}/v1")
    return OpenAIImages(openai_endpoint(config), http, CAPS, timeout_s=timeout_s)


def sdk(fake: FakeOpenAIImages) -> openai.OpenAI:
    return openai.OpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1", max_retries=0)


async def test_streamed_generate_matches_sdk_and_hands_over_partials(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    list(
        sdk(fake_openai).images.generate(
            model="gpt-image-1.5", prompt="a fox", n=2, quality="low", stream=True, partial_images=2
        )
    )
    sdk_sent = fake_openai.last
    events = RecordingEvents()
    result = await ours(fake_openai, http).generate(
        GenerateRequest(prompt="a fox", model="gpt-image-1.5", n=2, quality="low", partial_images=2), events
    )
    assert_same_wire(fake_openai.last, sdk_sent)
    assert [index for index, _ in events.partials] == [0, 1, 0, 1]
    assert all(image_size(data) == (1024, 1024) for _, data in events.partials)
    assert len(result.images) == 2
    assert len({image.data for image in result.images}) == 2
    assert result.metadata["streamed"] is True
    assert result.metadata["partial_images_received"] == 4
    assert str(result.metadata["request_id"]).startswith("req_fake_")
    assert events.steps[0] == "request sent to openai"
    assert events.steps[1].startswith("openai started answering after ")
    assert events.steps[2:] == ["openai sent final image 1", "openai sent final image 2"]


async def test_streamed_edit_matches_sdk(fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient) -> None:
    source = png_bytes((40, 30))
    list(
        sdk(fake_openai).images.edit(
            model="gpt-image-1.5",
            prompt="add a hat",
            image=[("image.png", source, "image/png")],
            stream=True,
            partial_images=1,
        )
    )
    sdk_sent = fake_openai.last
    events = RecordingEvents()
    with Image.open(io.BytesIO(source)) as opened:
        item = InputImage(source, "image/png", opened.width, opened.height, "image.png")
    result = await ours(fake_openai, http).edit(
        EditRequest(prompt="add a hat", model="gpt-image-1.5", images=(item,), partial_images=1), events
    )
    assert_same_wire(fake_openai.last, sdk_sent)
    assert len(events.partials) == 1
    assert image_size(result.images[0].data) == (40, 30)


async def test_plain_call_reports_sent_answering_and_received(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.delay_s = 0.3
    events = RecordingEvents()
    await ours(fake_openai, http).generate(GenerateRequest(prompt="x", model="gpt-image-2"), events)
    assert events.steps[0] == "request sent to openai"
    waited = float(events.steps[1].removeprefix("openai started answering after ").removesuffix(" s"))
    assert waited >= 0.3
    assert events.steps[2].startswith("received ") and events.steps[2].endswith(" s")
    assert " kB from openai in " in events.steps[2] or " MB from openai in " in events.steps[2]


async def test_stream_that_ends_before_the_final_image(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.stream_cut_after = 2
    events = RecordingEvents()
    with pytest.raises(
        ProviderUnreachableError, match=r"stream ended before the final image \(after 2 partial"
    ):
        await ours(fake_openai, http).generate(
            GenerateRequest(prompt="x", model="gpt-image-1.5", partial_images=3), events
        )
    assert len(events.partials) == 2


async def test_error_event_inside_the_stream_is_the_providers_reason(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    fake_openai.stream_error = {
        "message": "Your request was rejected by the safety system. safety_violations=[violence].",
        "type": "image_generation_user_error",
        "code": "moderation_blocked",
    }
    with pytest.raises(ContentPolicyError, match=r"safety_violations=\[violence\]"):
        await ours(fake_openai, http).generate(
            GenerateRequest(prompt="x", model="gpt-image-1.5", partial_images=1), RecordingEvents()
        )


async def test_total_timeout_bounds_a_trickling_stream(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    """Each event arrives well inside the read timeout, but the whole exchange is bounded."""
    fake_openai.delay_s = 3.0
    started = time.monotonic()
    with pytest.raises(ProviderUnreachableError, match=r"timed out in total .*limit 1 s"):
        await ours(fake_openai, http, timeout_s=1.0).generate(
            GenerateRequest(prompt="x", model="gpt-image-1.5", partial_images=3), RecordingEvents()
        )
    assert time.monotonic() - started < 2.5
    await eventually(
        lambda: fake_openai.disconnects == ["/v1/images/generations"], "the fake sees the connection close"
    )
