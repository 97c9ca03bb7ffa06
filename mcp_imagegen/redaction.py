"""Keep secrets out of every log line and error message.

Two layers: the exact secrets the server was configured with (API keys, tokens) are
replaced wherever they appear, and so is anything shaped like a credential (an
`Authorization` or `api-key` header value, an OpenAI or Google key, the signature or token
of a signed URL) even if it is not one of ours, e.g. echoed back by a provider.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MAX_LOG_LINE = 8192
"""Characters of one log message kept; the rest is counted, not written (a record's traceback is
kept whole: it is the server's own text)."""
MIN_SECRET_LENGTH = 4
"""Shorter configured values are not replaced: they would blank out ordinary words."""

_CREDENTIAL_SHAPES = (
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)\s+)[^\s,;'\"]+"),
    re.compile(
        r"(?i)(\b(?:x-goog-api-key|x-api-key|api-key|api_key|apikey)[\"']?\s*[:=]\s*[\"']?)[^\s,;'\"&]+"
    ),
    re.compile(
        r"(?i)([?&](?:key|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
        r"x-goog-signature|x-goog-credential|token|access_token|api-key)=)[^&\s'\"#]+"
    ),
    re.compile(r"()\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"()\bAIza[0-9A-Za-z_\-]{30,}"),
)


_REMEMBERED: list[str] = []
"""Every secret the server knows, from any source (the environment, the tokens file), longest
first so that a secret containing another is replaced whole: every filter scrubs them."""


def remember(secrets: Iterable[str]) -> None:
    """Scrub these from every log line from now on, and refuse them in request URLs."""
    known = {*_REMEMBERED, *(secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH)}
    _REMEMBERED[:] = sorted(known, key=len, reverse=True)


def remembered() -> tuple[str, ...]:
    return tuple(_REMEMBERED)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each configured secret and each credential-shaped value replaced."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    for shape in _CREDENTIAL_SHAPES:
        text = shape.sub(lambda match: match.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message and any traceback of a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        remember(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = tuple(_REMEMBERED)
        message = record.getMessage()
        if len(message) > MAX_LOG_LINE:
            # Cut before redacting (a long line costs each pattern its length), with room for a
            # secret that straddles the cut to be found whole, then cut again at the limit.
            reach = MAX_LOG_LINE + (len(secrets[0]) if secrets else 0) + 512
            kept = redact(message[:reach], secrets)[:MAX_LOG_LINE]
            record.msg, record.args = f"{kept}... [{len(message) - MAX_LOG_LINE:,} more characters]", None
            message = record.msg
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True
