"""The model data a running server judges calls by: the shipped data with the store's overlay
laid over it, read again at most once a minute, so that what `mcp-imagegen models check` learns
(on this replica, another one, or the command line) is honoured without a restart. When a
provider with a live list is configured, the server also runs the check itself, at most once a
day across everyone sharing the store (`[models] check_daily`)."""

from __future__ import annotations

import datetime
import logging
import time

import anyio

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ImagegenError
from mcp_imagegen.providers.model_data import ModelBook, Overlay, shipped
from mcp_imagegen.store.model_overlay import ModelOverlay

logger = logging.getLogger(__name__)

REREAD_S = 60.0
CHECK_EVERY = datetime.timedelta(days=1)
FIRST_CHECK_DELAY_S = 600.0
"""A server checks for itself only once it has run this long: starting servers (tests, a host
trying one out) never send the check."""


class ModelKnowledge:
    """The current book; `current()` rereads the overlay when it may have changed."""

    def __init__(self, overlay: ModelOverlay | None = None) -> None:
        self._overlay = overlay
        self._book = shipped()
        self._read_at = float("-inf")
        self._checked_at: datetime.datetime | None = None

    @property
    def book(self) -> ModelBook:
        return self._book

    async def current(self) -> ModelBook:
        if self._overlay is None or time.monotonic() - self._read_at < REREAD_S:
            return self._book
        self._read_at = time.monotonic()
        try:
            overlay = await self._overlay.read()
        except ImagegenError as exc:
            logger.warning("the model overlay could not be read (%s); the shipped model data holds", exc)
            return self._book
        self._learn(overlay)
        return self._book

    def _learn(self, overlay: Overlay | None) -> None:
        checked = overlay.checked_at if overlay is not None else None
        if checked != self._checked_at:
            self._checked_at = checked
            self._book = shipped().with_overlay(overlay)

    async def check_daily(self, settings: Settings) -> None:
        """Run `models check` when the overlay is a day old (or missing), then again each day; a
        failed check is logged and tried again the next day."""
        if self._overlay is None:
            return
        from mcp_imagegen.server import model_check

        await anyio.sleep(FIRST_CHECK_DELAY_S)
        while True:
            overlay = await self._overlay.read()
            now = datetime.datetime.now(datetime.timezone.utc)
            if overlay is None or now - overlay.checked_at >= CHECK_EVERY:
                try:
                    _, overlay = await model_check.run(settings, self._overlay)
                except (ImagegenError, OSError) as exc:
                    logger.warning("the daily model check failed: %s", exc)
                else:
                    logger.info("model check: %s", "; ".join(overlay.report) or "nothing to check")
                    self._learn(overlay)
                    self._read_at = time.monotonic()
            await anyio.sleep(3600)
