"""The server's own work on a provider's images: each image is decoded once per call (for its
preview; its facts come from the header), and what is stored is the provider's bytes, unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from PIL import ImageFile
from pydantic import SecretStr

from mcp_imagegen.config import OpenAISettings, Settings
from mcp_imagegen.server.app import build_server
from tests.fakes.openai_images import FakeOpenAIImages

pytestmark = pytest.mark.anyio


async def test_each_image_is_decoded_once_per_call(
    fake_openai: FakeOpenAIImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        store_dir=tmp_path / "store",
        inline_max_bytes=10_000,  # every 1024x1024 reply must be re-encoded for its preview
        openai=OpenAISettings(api_key=SecretStr(fake_openai.api_key), base_url=f"{fake_openai.url}/v1"),
    )
    decodes: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def counted(image: ImageFile.ImageFile) -> Any:
        if getattr(image, "_im", None) is None:  # a decode, not a no-op on an image already loaded
            decodes.append(image.size)
        return real_load(image)

    async with Client(build_server(settings)) as client:
        monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
        result = await client.call_tool(
            "generate_image", {"prompt": "three foxes", "n": 3, "size": "1024x1024"}
        )
        assert not result.is_error, result.content
        assert len(decodes) == 3, decodes
        structured = result.structured_content
        assert structured is not None and len(structured["images"]) == 3
        assert all(image["preview"]["bytes"] <= 10_000 // 3 for image in structured["images"])
        # What was stored is what the provider sent, byte for byte.
        sent = fake_openai.images_sent[-3:]
        for image, original in zip(structured["images"], sent, strict=True):
            kept = Path(image["path"]).read_bytes()
            assert (
                kept == original and hashlib.sha256(kept).hexdigest() == hashlib.sha256(original).hexdigest()
            )
        # A later get_job makes the same previews again from the stored files.
        decodes.clear()
        again = await client.call_tool("get_job", {"job_id": structured["job_id"]})
        assert again.structured_content is not None
        assert [image["preview"] for image in again.structured_content["images"]] == [
            image["preview"] for image in structured["images"]
        ]
        assert len(decodes) == 3
