"""The error tree. Every failure a user can act on is one of these.

    ImagegenError                   message is safe to show: no secrets, no stack traces
    ├── ConfigError                 a provider or setting is missing or wrong ("set OPENAI_API_KEY")
    ├── InputError                  the caller's arguments or images are unusable
    │   └── UnsupportedOptionError  the chosen provider cannot honour an option
    ├── LimitError                  a limit of this server refuses the call for now (rate limit)
    │   └── BudgetError             the caller's daily budget cannot cover the call's estimate
    ├── DeclinedError               the user declined (or dismissed) the confirmation of a cost
    ├── ProviderError               the provider answered with an error (status, code, retry-after)
    │   └── ContentPolicyError      the provider refused the prompt or the image
    ├── ProviderUnreachableError    no answer: connection refused or reset, timeout, a stream cut short
    ├── MalformedReplyError         an answer we cannot use: not JSON, no image, bytes that do not decode
    └── StoreError                  the file store could not keep or find an image
        └── ImageNotFoundError      no image with this id

Providers map their wire errors into this tree once; the MCP boundary
(`server/tools/boundary.py`) maps the tree once into `isError` tool results.
"""

from __future__ import annotations


class ImagegenError(Exception):
    """Base of all anticipated failures; `str(err)` is shown to the user verbatim."""


class ConfigError(ImagegenError):
    """A provider is not configured, or a setting is invalid."""


class InputError(ImagegenError):
    """The caller's arguments or input images cannot be used."""


class UnsupportedOptionError(InputError):
    """An option was given that the chosen provider or model cannot honour."""


class LimitError(ImagegenError):
    """A limit this server enforces refuses the call for now; the message says when it frees up."""


class BudgetError(LimitError):
    """The call's estimated cost does not fit what is left of the caller's daily budget."""


class DeclinedError(ImagegenError):
    """The user was asked to confirm a call's cost and did not; nothing was sent."""


class ProviderError(ImagegenError):
    """The provider answered with an error status.

    `message` is the provider's own explanation with secrets removed; `status`
    is the HTTP status; `code` is the provider's machine-readable code if any.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.request_id = request_id
        super().__init__(self._render())

    def _render(self) -> str:
        status = f" (HTTP {self.status}{', ' + self.code if self.code else ''})" if self.status else ""
        request = f" [request id {self.request_id}]" if self.request_id else ""
        return f"{self.provider} returned an error{status}: {self.message}{request}. Nothing was stored."


class ContentPolicyError(ProviderError):
    """The provider's safety system refused the prompt or an input image."""

    def _render(self) -> str:
        request = f" [request id {self.request_id}]" if self.request_id else ""
        return (
            f"{self.provider} refused the request under its content policy: {self.message}{request}. "
            "Rephrase the prompt or change the input image; nothing was stored."
        )


class ProviderUnreachableError(ImagegenError):
    """The provider could not be reached, did not answer in time, or broke off its answer."""


class MalformedReplyError(ImagegenError):
    """The provider answered, but with something we cannot use: not JSON, no image, an image
    that does not decode. Retrying the same request rarely helps, so it is not retried."""


class StoreError(ImagegenError):
    """The image store could not write, read or find an image."""


class ImageNotFoundError(StoreError):
    """No image with this id exists in the store."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text: drivers and clients (psycopg, obstore) follow it with
    multi-line details and debug dumps that do not belong in a user's error."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
