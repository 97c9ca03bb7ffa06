"""The result every image-producing tool returns.

Per image: an `ImageContent` preview (the one content type every host shows and passes to
the model), then a `ResourceLink` to the full file. Last, the structured content as JSON
text, for hosts that ignore `structured_content`. Previews of one result share the inline
budget; the stored files are never altered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Literal

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field, JsonValue

from mcp_imagegen.config import Settings
from mcp_imagegen.images import b64
from mcp_imagegen.images.preview import Preview, PreviewSource, fit_previews
from mcp_imagegen.images.workers import run_image_work
from mcp_imagegen.store.base import Store, StoredImage


class PreviewInfo(BaseModel):
    mime_type: str
    width: int
    height: int
    bytes: int


class ImageRef(BaseModel):
    """One stored image: where it is and what it is."""

    id: str
    uri: str = Field(description="imagegen://images/{id}; read it for the full-size file.")
    path: str | None = Field(
        None, description="The full-size file on the server's disk (left out for callers over the network)."
    )
    mime_type: str
    width: int
    height: int
    bytes: int
    revised_prompt: str | None = Field(None, description="The prompt as the provider rewrote it, if it did.")
    kind: str = Field(description="generated, edited, upscaled, recontexted, segment_mask or cutout.")
    label: str | None = Field(None, description="For a segmentation mask or cutout: what it shows.")
    score: float | None = Field(
        None, description="For a segmentation mask or cutout: the model's confidence."
    )
    preview: PreviewInfo = Field(description="The inline copy in this result, which may be downscaled.")
    download_url: str | None = Field(
        None, description="A time-limited link to the full-size file, for hosts that cannot read resources."
    )


class CallCost(BaseModel):
    estimated_usd: float | None = Field(
        description="null: no price is known for this provider and model (it is not free)."
    )
    basis: str = Field(description="The price used, with its date and source, or why there is none.")


Notices = Annotated[
    list[str] | None,
    Field(description="The model is deprecated (until when) or was replaced."),
]


class ImageResult(BaseModel):
    """Structured content of generate_image and edit_image (and of get_job for their jobs)."""

    status: Literal["succeeded", "running"] = Field(
        "succeeded",
        description="'running': the call is not finished; call get_job with job_id to wait for the images.",
    )
    job_id: str = Field(description="Pass to get_job (to fetch this result again) or cancel_job.")
    images: list[ImageRef] = Field(description="Empty while running.")
    provider: str
    model: str
    parent_ids: list[str] = Field(
        default_factory=list, description="Stored ids of the input images of an edit."
    )
    usage: dict[str, JsonValue] | None = Field(None, description="Token usage as the provider reported it.")
    text: str | None = Field(None, description="What the model wrote alongside its images, if anything.")
    response_id: str | None = Field(
        None, description="api 'responses': the response that made the images; editing them continues it."
    )
    partial_images: list[str] | None = Field(
        None, description="URIs of the intermediate images kept (keep_partials)."
    )
    elapsed_s: float | None = Field(None, description="While running: seconds since the call started.")
    message: str | None = Field(None, description="While running: the latest step.")
    cost: CallCost | None = Field(None, description="The call's estimated cost in USD.")
    notices: Notices = None


async def stored_previews(
    store: Store, settings: Settings, image_ids: Sequence[str], owner: str | None
) -> list[Preview]:
    """Previews of stored images, together within the inline budget, made from their files: for a
    rendering after the first (a later get_job, or one on another replica)."""
    stored = [await store.read(image_id, owner=owner) for image_id in image_ids]
    sources = [PreviewSource(data, image.mime_type, image.width, image.height) for image, data in stored]
    return await run_image_work(
        lambda: fit_previews(sources, max_bytes=settings.inline_max_bytes, max_side=settings.inline_max_side)
    )


def image_result(
    shown: list[tuple[StoredImage, Preview]],
    *,
    job_id: str,
    provider: str,
    model: str,
    show_paths: bool,
    link: Callable[[StoredImage], str] | None = None,
    parent_ids: tuple[str, ...] = (),
    usage: dict[str, JsonValue] | None = None,
    partial_uris: tuple[str, ...] = (),
    text: str | None = None,
    response_id: str | None = None,
) -> CallToolResult:
    """The tool result for stored images and their previews (made within the inline budget)."""
    refs = [_ref(image, preview, show_paths, link(image) if link else None) for image, preview in shown]
    output = ImageResult(
        job_id=job_id,
        images=refs,
        provider=provider,
        model=model,
        parent_ids=list(parent_ids),
        usage=usage,
        partial_images=list(partial_uris) or None,
        text=text,
        response_id=response_id,
    )
    content: list[ContentBlock] = []
    for image, preview in shown:
        content.append(ImageContent(data=b64.encode(preview.data), mime_type=preview.mime_type))
        content.append(
            ResourceLink(
                name=image.name,
                title=_title(image),
                uri=image.uri,
                mime_type=image.mime_type,
                size=image.bytes,
                description=f"Full-size {image.width}x{image.height} image"
                + (f", also at {image.path}" if show_paths and image.path else ""),
            )
        )
    content.append(TextContent(text=output.model_dump_json(exclude_none=True)))
    return CallToolResult(
        content=content, structured_content=output.model_dump(mode="json", exclude_none=True)
    )


def _ref(image: StoredImage, preview: Preview, show_path: bool, download_url: str | None) -> ImageRef:
    revised = image.metadata.get("revised_prompt")
    label, score = image.metadata.get("label"), image.metadata.get("score")
    return ImageRef(
        id=image.id,
        uri=image.uri,
        path=str(image.path) if show_path and image.path else None,
        mime_type=image.mime_type,
        width=image.width,
        height=image.height,
        bytes=image.bytes,
        revised_prompt=revised if isinstance(revised, str) else None,
        kind=image.kind,
        label=label if isinstance(label, str) else None,
        score=float(score) if isinstance(score, int | float) else None,
        preview=PreviewInfo(
            mime_type=preview.mime_type, width=preview.width, height=preview.height, bytes=len(preview.data)
        ),
        download_url=download_url,
    )


def _title(image: StoredImage) -> str:
    prompt = (image.prompt or "").strip()
    return prompt if len(prompt) <= 80 else prompt[:77] + "..."
