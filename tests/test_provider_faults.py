"""Provider faults, injected through the loopback fake and a resetting proxy: what is
retried and how often, what is not, the error text the user reads, and that no key ever
reaches a log line or an error."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.responses import Response

from mcp_imagegen.config import OpenAISettings
from mcp_imagegen.errors import ImagegenError, MalformedReplyError, ProviderError, ProviderUnreachableError
from mcp_imagegen.providers._http import RetryPolicy
from mcp_imagegen.providers.base import GenerateRequest
from mcp_imagegen.providers.openai.endpoint import openai_capabilities, openai_endpoint
from mcp_imagegen.providers.openai.images import OpenAIImages
from tests.fakes.faulty_proxy import ResettingProxy
from tests.fakes.loopback import free_port
from tests.fakes.openai_images import FakeOpenAIImages
from tests.test_openai_streaming import RecordingEvents

pytestmark = pytest.mark.anyio
CAPS = openai_capabilities(("gpt-image-2",), "gpt-image-2", ("png", "jpeg", "webp"))
FAST = RetryPolicy(max_retries=3, base_s=0.01, max_retry_after_s=5)
OVERLOADED = {"error": {"message": "The server is overloaded.", "type": "server_error", "code": None}}
REQUEST = GenerateRequest(prompt="x", model="gpt-image-2")


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def provider(
    base_url: str, http: httpx2.AsyncClient, *, timeout_s: float = 10, retry: RetryPolicy = FAST
) -> OpenAIImages:
    config = OpenAISettings(api_key=FakeOpenAIImages.api_key, base_url=f"{base_url}/v1")
    return OpenAIImages(openai_endpoint(config), http, CAPS, timeout_s, retry)


def assert_no_key_leaked(caplog: pytest.LogCaptureFixture, error: BaseException | None = None) -> None:
    key = FakeOpenAIImages.api_key
    assert key not in caplog.text
    if error is not None:
        assert key not in str(error)


async def failing(call: object) -> ImagegenError:
    with pytest.raises(ImagegenError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_429_waits_for_retry_after_then_succeeds(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    limited = Response(
        b'{"error": {"message": "Rate limit reached.", "type": "requests"}}',
        status_code=429,
        headers={"retry-after": "1", "content-type": "application/json"},
    )
    fake_openai.fail_next.append((429, limited))
    events = RecordingEvents()
    started = time.monotonic()
    result = await provider(fake_openai.url, http).generate(REQUEST, events)
    assert time.monotonic() - started >= 1.0, "Retry-After is honoured"
    assert len(fake_openai.requests) == 2 and len(result.images) == 1
    assert "openai: HTTP 429; retrying in 1.0 s (attempt 2 of 4)" in events.steps
    assert_no_key_leaked(caplog)


async def test_503_three_times_then_success(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.fail_next.extend([(503, OVERLOADED)] * 3)
    result = await provider(fake_openai.url, http).generate(REQUEST)
    assert len(fake_openai.requests) == 4 and len(result.images) == 1
    assert_no_key_leaked(caplog)


async def test_503_every_time_gives_up_after_the_last_retry(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.fail_next.extend([(503, OVERLOADED)] * 5)
    error = await failing(provider(fake_openai.url, http).generate(REQUEST))
    assert len(fake_openai.requests) == 4
    assert isinstance(error, ProviderError) and error.status == 503
    assert "openai returned an error (HTTP 503): The server is overloaded." in str(error)
    assert_no_key_leaked(caplog, error)


async def test_400_is_not_retried(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    bad = {"error": {"message": "Invalid value: 'huge'.", "type": "invalid_request_error", "param": "size"}}
    fake_openai.fail_next.append((400, bad))
    error = await failing(provider(fake_openai.url, http).generate(REQUEST))
    assert len(fake_openai.requests) == 1
    assert "(HTTP 400): Invalid value: 'huge'." in str(error)
    assert_no_key_leaked(caplog, error)


async def test_retry_after_beyond_the_limit_or_the_deadline_is_not_waited_for(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    def limited(seconds: int) -> Response:
        body = b'{"error": {"message": "Rate limit reached.", "type": "requests"}}'
        return Response(body, status_code=429, headers={"retry-after": str(seconds)})

    fake_openai.fail_next.append((429, limited(30)))  # over FAST.max_retry_after_s
    started = time.monotonic()
    error = await failing(provider(fake_openai.url, http).generate(REQUEST))
    assert "HTTP 429" in str(error) and len(fake_openai.requests) == 1
    fake_openai.fail_next.append((429, limited(3)))  # within the limit, past the 2 s provider timeout
    error = await failing(provider(fake_openai.url, http, timeout_s=2).generate(REQUEST))
    assert "Rate limit reached." in str(error) and len(fake_openai.requests) == 2
    assert time.monotonic() - started < 1.5, "neither wait was started"


async def test_reset_connections_are_retried(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(fake_openai.url.rsplit(":", 1)[1])
    with ResettingProxy(port, resets=2) as proxy:
        events = RecordingEvents()
        result = await provider(proxy.url, http).generate(REQUEST, events)
        assert len(result.images) == 1
        assert proxy.connections == 3 and len(fake_openai.requests) == 1
        assert sum("retrying in" in step for step in events.steps) == 2
    with ResettingProxy(port, resets=10) as proxy:
        error = await failing(provider(proxy.url, http).generate(REQUEST))
        assert proxy.connections == 4
        assert "could not reach openai at 127.0.0.1" in str(error) and "(after 4 attempts)" in str(error)
    assert_no_key_leaked(caplog, error)


async def test_unreachable_provider_is_retried_then_named(
    http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    error = await failing(provider(f"http://127.0.0.1:{free_port()}", http).generate(REQUEST))
    assert isinstance(error, ProviderUnreachableError)
    assert "could not reach openai at 127.0.0.1: ConnectError (after 4 attempts)" in str(error)
    assert "Nothing was stored" in str(error)
    assert_no_key_leaked(caplog, error)


async def test_stalled_reply_hits_the_timeout_once(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.delay_s = 5
    started = time.monotonic()
    error = await failing(provider(fake_openai.url, http, timeout_s=1).generate(REQUEST))
    assert time.monotonic() - started < 2.5
    assert len(fake_openai.requests) == 1, "a stalled reply is not sent again"
    assert "openai timed out" in str(error) and "limit 1 s" in str(error)
    assert_no_key_leaked(caplog, error)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            (200, b'{"created": 1, "data": [{"b64_json": "iVBOR'),
            "not valid JSON (content-type application/json",
        ),
        ((200, {"created": 1, "data": []}), "answered without any image (no 'data')"),
        ((200, {"created": 1}), "answered without any image (no 'data')"),
        ((200, {"created": 1, "data": [{"b64_json": "not base64!"}]}), "data[0] with invalid base64"),
        (
            (200, {"created": 1, "data": [{"url": "https://example.invalid/x.png"}]}),
            'response_format = "b64_json"',
        ),
        (
            (200, Response(b"<html>Bad gateway</html>", media_type="text/html")),
            "not valid JSON (content-type text/html; charset=utf-8, 24 bytes)",
        ),
        ((200, [1, 2]), "JSON that is not an object"),
    ],
)
async def test_malformed_replies_are_clear_errors_and_not_retried(
    fake_openai: FakeOpenAIImages,
    http: httpx2.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    reply: tuple[int, object],
    expected: str,
) -> None:
    fake_openai.fail_next.append(reply)
    error = await failing(provider(fake_openai.url, http).generate(REQUEST))
    assert isinstance(error, MalformedReplyError)
    assert expected in str(error)
    assert len(fake_openai.requests) == 1
    assert_no_key_leaked(caplog, error)


async def test_stream_cut_halfway(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.stream_cut_after = 1
    request = GenerateRequest(prompt="x", model="gpt-image-1.5", partial_images=2)
    error = await failing(provider(fake_openai.url, http).generate(request, RecordingEvents()))
    assert "stream ended before the final image (after 1 partial image(s))" in str(error)
    assert len(fake_openai.requests) == 1
    assert_no_key_leaked(caplog, error)


async def test_a_reply_is_announced_with_its_size_before_its_body_is_read(
    fake_openai: FakeOpenAIImages, http: httpx2.AsyncClient
) -> None:
    """The server's room for large replies (`CallEvents.reply_arriving`) is asked before the body is
    read, with the size the reply declares."""
    events = RecordingEvents()
    result = await provider(fake_openai.url, http).generate(REQUEST, events)
    [(size, steps_before)] = events.replies
    encoded = len(base64.b64encode(fake_openai.images_sent[0]))
    assert size is not None and encoded < size < encoded + 2048, "the JSON body's Content-Length"
    assert not any(step.startswith("received") for step in steps_before), steps_before
    assert any(step.startswith("received") for step in events.steps), "and read after"
    assert result.images[0].data == fake_openai.images_sent[0]
