"""The job behind generate_image and edit_image: call the provider, keep what it streams,
store what it returns, and render the result (again, for every get_job).

Storing is shielded from cancellation: once a provider has returned images (which the
user has paid for), they all land in the store even if the call is cancelled meanwhile.
Partial images are removed when the job ends, unless the caller asked to keep them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from mcp.types import CallToolResult
from pydantic import JsonValue

from mcp_imagegen.errors import InputError, MalformedReplyError
from mcp_imagegen.images import codec
from mcp_imagegen.images.preview import Preview, PreviewSource, fit_one
from mcp_imagegen.images.workers import LARGE_REPLY_BYTES, replies_in_hand, run_image_work
from mcp_imagegen.operations import MadeKind, OperationSpec
from mcp_imagegen.providers.base import CallEvents, InputImage, ProviderResult
from mcp_imagegen.server.jobs.core import Job, take_slot
from mcp_imagegen.server.principals import Principal
from mcp_imagegen.server.results import image_result, stored_previews
from mcp_imagegen.server.state import AppState
from mcp_imagegen.store.base import ImageKind, NewImage, StoredImage
from mcp_imagegen.usage.prices import Metering

logger = logging.getLogger(__name__)
ProviderCall = Callable[[CallEvents], Awaitable[ProviderResult]]
ROLE_KINDS: dict[str, ImageKind] = {"cutout": "cutout"}
"""Store kinds for outputs whose role differs from the operation's usual output."""


class JobEvents:
    """`CallEvents` for one job: steps become job steps; partial images are decoded, stored
    as `partial` images and announced with their URI."""

    def __init__(self, job: Job, app: AppState, provider: str, model: str, prompt: str | None) -> None:
        self._job = job
        self._app = app
        self._provider = provider
        self._model = model
        self._prompt = prompt
        self.partials: list[StoredImage] = []
        self._in_hand = False

    def step(self, message: str) -> None:
        self._job.step(message)

    async def partial_image(self, data: bytes, index: int) -> None:
        try:
            facts = await anyio.to_thread.run_sync(
                functools.partial(codec.facts, data, max_pixels=self._app.settings.max_pixels)
            )
        except InputError:
            self._job.step(
                f"skipped partial image {index + 1}: {self._provider} sent bytes that do not decode"
            )
            return
        new = NewImage(
            data=data,
            mime_type=facts.mime_type,
            width=facts.width,
            height=facts.height,
            kind="partial",
            owner=self._job.owner.name,
            provider=self._provider,
            model=self._model,
            prompt=self._prompt,
            metadata={"job_id": self._job.id, "partial_image_index": index},
        )
        with anyio.CancelScope(shield=True):  # a stored partial must be remembered, or it is never removed
            stored = await self._app.store.put(new)
            self.partials.append(stored)
        self._job.step(f"partial image {len(self.partials)} ({facts.width}x{facts.height}): {stored.uri}")

    async def reply_arriving(self, size: int | None) -> None:
        """Take room for a large reply, once per call: it is kept until the call's images are
        stored and previewed (`done_with_replies`), since they are what holds the memory."""
        if self._in_hand or (size is not None and size < LARGE_REPLY_BYTES):
            return
        room = replies_in_hand()
        waiting = (
            f"queued: the server is already processing {room.total_tokens:.0f} large replies; "
            f"{self._provider}'s reply waits in its connection"
        )
        await take_slot(room, self._job, waiting)
        self._in_hand = True

    def done_with_replies(self) -> None:
        if self._in_hand:
            replies_in_hand().release_on_behalf_of(self._job)
            self._in_hand = False

    async def discard_partials(self) -> None:
        with anyio.CancelScope(shield=True):
            for image in self.partials:
                await self._app.store.delete(image.id)


@dataclass(frozen=True)
class ImageWork:
    """Everything an image job needs once the call is validated and its inputs are read;
    calling it with the job runs the job. Every image tool's job is one of these."""

    app: AppState
    provider: str
    model: str
    prompt: str | None
    parameters: dict[str, Any]
    """The call's options as the user gave them, kept in each image's metadata."""
    operation: OperationSpec[Any]
    """What it does; its outputs are stored as the kind the operation makes."""
    call: ProviderCall
    inputs: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    keep_partials: bool = False

    @property
    def made(self) -> MadeKind:
        """The store kind of the operation's outputs (an image job's operation makes images)."""
        if self.operation.made is None:
            raise TypeError(f"{self.operation.name} makes no images: it cannot run as an image job")
        return self.operation.made

    async def __call__(self, job: Job) -> ImageOutcome:
        events = JobEvents(job, self.app, self.provider, self.model, self.prompt)
        try:
            result = await self.call(events)
            job.step(f"storing {len(result.images)} image(s) and preparing their previews")
            with anyio.CancelScope(shield=True):
                owner = job.owner.name
                parents = tuple([await keep_input(self.app, item, "input", owner) for item in self.inputs])
                extra: dict[str, JsonValue] = {"job_id": job.id}
                if self.mask is not None:
                    extra["mask_id"] = await keep_input(self.app, self.mask, "mask", owner)
                stored, previews = await self._store_outputs(result, parents, extra, owner)
        finally:
            events.done_with_replies()
            if not self.keep_partials:
                await events.discard_partials()
        usage = result.metadata.get("usage")
        return ImageOutcome(
            app=self.app,
            owner=job.owner,
            job_id=job.id,
            images=tuple(stored),
            provider=self.provider,
            model=result.model,
            parent_ids=parents,
            usage=usage if isinstance(usage, dict) else None,
            metered=Metering(len(stored), result.tokens, result.mainline),
            partials=tuple(events.partials) if self.keep_partials else (),
            first_previews=FirstPreviews(previews),
            text=result.text,
        )

    async def _store_outputs(
        self, result: ProviderResult, parents: tuple[str, ...], extra: dict[str, JsonValue], owner: str
    ) -> tuple[list[StoredImage], list[Preview] | None]:
        """Store every image and build its preview at the same time: the durable write (hash,
        fsync) and the decode and encode of the preview overlap in worker threads, and the image
        is decoded once, for its preview (its facts come from the header). Every image that can be
        read is stored before one that cannot is reported. The previews are None where one could
        not be made here (the result then makes them from the stored files)."""
        news: list[NewImage] = []
        unreadable: MalformedReplyError | None = None
        for index in range(len(result.images)):
            try:
                news.append(await self._new_image(result, index, parents, extra, owner))
            except MalformedReplyError as exc:
                unreadable = unreadable or exc
        settings = self.app.settings
        budget = settings.inline_max_bytes // max(1, len(news))
        stored: list[StoredImage | None] = [None] * len(news)
        previews: list[Preview | None] = [None] * len(news)

        async def keep() -> None:  # in order, so the store lists them as the result does
            for index, new in enumerate(news):
                stored[index] = await self.app.store.put(new)

        async def show(index: int, new: NewImage) -> None:
            source = PreviewSource(new.data, new.mime_type, new.width, new.height)
            fit = functools.partial(fit_one, source, max_bytes=budget, max_side=settings.inline_max_side)
            try:
                previews[index] = await run_image_work(fit)
            except Exception:
                logger.debug("preview of image %d deferred", index + 1, exc_info=True)

        async with anyio.create_task_group() as group:
            group.start_soon(keep)
            for index, new in enumerate(news):
                group.start_soon(show, index, new)
        if unreadable is not None:
            raise unreadable
        made = [view for view in previews if view is not None]
        return [image for image in stored if image is not None], made if len(made) == len(news) else None

    async def _new_image(
        self,
        result: ProviderResult,
        index: int,
        parents: tuple[str, ...],
        extra: dict[str, JsonValue],
        owner: str,
    ) -> NewImage:
        max_pixels = self.app.settings.max_pixels
        generated = result.images[index]
        try:
            image_facts = await anyio.to_thread.run_sync(
                functools.partial(codec.facts, generated.data, max_pixels=max_pixels)
            )
        except InputError:
            raise MalformedReplyError(
                f"{self.provider} sent image {index + 1} in a form that cannot be decoded; it was not stored."
            ) from None
        metadata: dict[str, JsonValue] = {
            "parameters": self.parameters,
            "provider_response": result.metadata,
            "index": index,
            **extra,
        }
        for key, value in (
            ("revised_prompt", generated.revised_prompt),
            ("label", generated.label),
            ("score", generated.score),
        ):
            if value is not None:
                metadata[key] = value
        return NewImage(
            data=generated.data,
            mime_type=image_facts.mime_type,
            width=image_facts.width,
            height=image_facts.height,
            kind=ROLE_KINDS.get(generated.role or "", self.made),
            owner=owner,
            provider=self.provider,
            model=result.model,
            prompt=self.prompt,
            parent_ids=parents,
            metadata=metadata,
        )


class FirstPreviews:
    """The previews made while the images were stored, kept for the first rendering of the result
    only: later renderings make them again, so finished jobs do not hold image bytes."""

    def __init__(self, previews: list[Preview] | None) -> None:
        self._previews = previews

    def take(self) -> list[Preview] | None:
        previews, self._previews = self._previews, None
        return previews


@dataclass(frozen=True)
class ImageOutcome:
    """The stored images of a finished job; renders the same tool result every time."""

    app: AppState
    owner: Principal
    job_id: str
    images: tuple[StoredImage, ...]
    provider: str
    model: str
    parent_ids: tuple[str, ...] = ()
    usage: dict[str, JsonValue] | None = None
    metered: Metering = field(default_factory=Metering)
    """What the call made and was billed for: what settles its cost."""
    partials: tuple[StoredImage, ...] = field(default=())
    text: str | None = None
    first_previews: FirstPreviews = field(default_factory=lambda: FirstPreviews(None))

    def metering(self) -> tuple[Metering, dict[str, JsonValue] | None]:
        return self.metered, self.usage

    async def result(self) -> CallToolResult:
        previews = self.first_previews.take()
        if previews is None:  # a later get_job: made again from the stored files
            ids = [image.id for image in self.images]
            previews = await stored_previews(self.app.store, self.app.settings, ids, self.owner.name)
        return image_result(
            list(zip(self.images, previews, strict=True)),
            show_paths=not self.owner.remote,
            link=self.app.links.url if self.app.links is not None else None,
            job_id=self.job_id,
            provider=self.provider,
            model=self.model,
            parent_ids=self.parent_ids,
            usage=self.usage,
            partial_uris=tuple(image.uri for image in self.partials),
            text=self.text,
            response_id=self._response_id(),
        )

    def _response_id(self) -> str | None:
        """The Responses API response that made the images, from their stored metadata."""
        made = self.images[0].metadata.get("provider_response") if self.images else None
        response_id = made.get("response_id") if isinstance(made, dict) else None
        return response_id if isinstance(response_id, str) else None


async def keep_input(app: AppState, item: InputImage, kind: ImageKind, owner: str) -> str:
    """Store an input image once per owner (by content hash) and return its id: the same bytes
    sent by two people are two images, so an upload never reveals what someone else has."""
    if item.store_id is not None:
        return item.store_id
    existing = await app.store.find_by_sha256(hashlib.sha256(item.data).hexdigest(), owner=owner)
    if existing is not None:
        return existing.id
    stored = await app.store.put(NewImage(item.data, item.mime_type, item.width, item.height, kind, owner))
    return stored.id
