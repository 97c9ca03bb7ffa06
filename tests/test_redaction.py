"""Secrets never reach a log line or an error text, whoever wrote them."""

from __future__ import annotations

import io
import logging

import pytest

from mcp_imagegen.cli import configure_logging
from mcp_imagegen.redaction import REDACTED, RedactingFilter, redact

KEY = "sk-proj-abcdefghijklmnop1234"


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"Authorization: Bearer {KEY}", KEY),
        ("headers={'authorization': 'Bearer eyJhbGciOi.payload.sig'}", "eyJhbGciOi.payload.sig"),
        ("api-key: 0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        (
            '{"x-goog-api-key": "AIzaSyA-not-a-real-key-0123456789abcd"}',
            "AIzaSyA-not-a-real-key-0123456789abcd",
        ),
        (
            "https://bucket.s3.amazonaws.com/x.png?X-Amz-Signature=deadbeef1234&X-Amz-Expires=60",
            "deadbeef1234",
        ),
        ("https://storage.googleapis.com/b/x.png?X-Goog-Signature=cafe0123&X-Goog-Date=1", "cafe0123"),
        ("https://x.blob.core.windows.net/c/x.png?sv=2024&sig=AbC%2Bdef", "AbC%2Bdef"),
        ("https://api.example/v1/models?key=AIzaSyB-0123456789abcdef0123456789ab", "0123456789abcdef"),
        (f"Incorrect API key provided: {KEY}.", KEY),
    ],
)
def test_credential_shapes_are_redacted(text: str, gone: str) -> None:
    cleaned = redact(text)
    assert gone not in cleaned
    assert REDACTED in cleaned


def test_configured_secrets_are_redacted_wherever_they_appear() -> None:
    assert redact("token=plain-configured-value in text", ["plain-configured-value"]) == (
        f"token={REDACTED} in text"
    )
    assert redact("short ab stays", ["ab"]) == "short ab stays", (
        "too-short values are not secrets worth blanking"
    )
    assert redact("nothing here: size=1024x1024 quality=high") == "nothing here: size=1024x1024 quality=high"


def test_log_records_and_tracebacks_are_scrubbed() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["my-azure-key-123"]))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("sending %s with api-key %s", "request", "my-azure-key-123")
        try:
            raise RuntimeError(f"upstream said Authorization: Bearer {KEY}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "my-azure-key-123" not in output and KEY not in output
    assert "sending request with api-key [redacted]" in output
    assert "RuntimeError: upstream said Authorization: Bearer [redacted]" in output


def test_the_cli_logging_setup_installs_the_filter() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", ["configured-secret-value"])
        assert any(isinstance(f, RedactingFilter) for handler in root.handlers for f in handler.filters)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_huge_log_message_is_cut_and_a_secret_across_the_cut_is_still_scrubbed() -> None:
    secret = "tokens-file-secret-0123456789"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([secret]))
    logger = logging.getLogger("tests.redaction.huge")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%s%s%s", "x" * 8_180, secret, "y" * 1_000_000)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert len(output) < 8_300, len(output)
    assert "tokens-file" not in output and output.startswith("x" * 8_180 + "[redac")
    assert output.rstrip().endswith(f"... [{8_180 + len(secret) + 1_000_000 - 8_192:,} more characters]")


def test_at_debug_no_library_logs_what_it_sends() -> None:
    """sse_starlette logs every chunk it sends at DEBUG (whole results, prompts and images)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("DEBUG")
        assert logging.getLogger("mcp_imagegen").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("sse_starlette.sse").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("httpx2").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
