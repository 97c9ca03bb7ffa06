"""The local provider on real models: segmentation, upscaling and OCR on drawn images, through
the provider and through MCP clients with no provider keys at all."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from PIL import Image

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import InputError, UnsupportedOptionError
from mcp_imagegen.local import catalogue, upscaling
from mcp_imagegen.local.runner import ModelRunner
from mcp_imagegen.providers.base import (
    DescribeRequest,
    InputImage,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.providers.local.provider import LocalProvider
from tests.connect import Transport, connect
from tests.local_scenes import (
    TEXT_LINES,
    detail_image,
    iou,
    person_scene,
    png,
    subject_scene,
    text_page,
    white_pixels,
)
from tests.test_e2e import read_blob

pytestmark = pytest.mark.anyio


def given(image: Image.Image, data: bytes | None = None) -> InputImage:
    return InputImage(data or png(image), "image/png", image.width, image.height, "drawn.png")


def provider(models_dir: Path) -> LocalProvider:
    return LocalProvider(Settings(models_dir=models_dir, local_threads=2))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return 10 * float(np.log10(255.0**2 / mse))


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    facts: dict[str, Any] = result.structured_content
    return facts


@pytest.mark.parametrize("shape", ["ellipse", "star"])
async def test_masks_match_the_drawn_subject(local_models: Path, shape: str) -> None:
    image, truth = subject_scene(shape=shape)
    local = provider(local_models)
    foreground = await local.segment(SegmentRequest(given(image), "u2netp", mode="foreground"))
    mask = opened(foreground.images[0].data)
    assert mask.mode == "L" and mask.size == image.size
    assert iou(mask, truth) > 0.9
    assert foreground.images[0].label == "foreground" and (foreground.images[0].score or 0) > 0.9

    background = await local.segment(SegmentRequest(given(image), "u2netp", mode="background"))
    inverse = Image.eval(truth, lambda value: 255 - value)
    assert iou(opened(background.images[0].data), inverse) > 0.9
    assert background.images[0].label == "background"


async def test_mask_shaping_options(local_models: Path) -> None:
    image, _ = subject_scene()
    local = provider(local_models)
    binary = await local.segment(SegmentRequest(given(image), "u2netp", binary_color_threshold=127))
    assert set(np.unique(np.asarray(opened(binary.images[0].data))).tolist()) <= {0, 255}
    grown = await local.segment(SegmentRequest(given(image), "u2netp", mask_dilation=0.05))
    plain = await local.segment(SegmentRequest(given(image), "u2netp"))
    white = [white_pixels(opened(r.images[0].data)) for r in (plain, grown)]
    assert white[1] > white[0] * 1.15, white
    with pytest.raises(InputError, match=r"no subject with confidence 1\.0 or more"):
        await local.segment(SegmentRequest(given(image), "u2netp", confidence_threshold=1.0))
    with pytest.raises(UnsupportedOptionError, match="modes foreground and background"):
        await local.segment(SegmentRequest(given(image), "u2netp", mode="semantic", prompt="cat"))


async def test_person_mode_runs_the_selfie_model(local_models: Path) -> None:
    image, _ = person_scene()
    result = await provider(local_models).segment(SegmentRequest(given(image), "mediapipe-selfie"))
    mask = opened(result.images[0].data)
    assert result.model == "mediapipe-selfie" and result.images[0].label == "person"
    assert mask.mode == "L" and mask.size == image.size


async def test_x4_beats_bicubic_and_x2_x3_have_the_right_size(local_models: Path) -> None:
    original = detail_image(512)
    small = original.resize((128, 128), Image.Resampling.BICUBIC)
    local = provider(local_models)
    result = await local.upscale(UpscaleRequest(given(small), "realesr-animevideov3", "x4"))
    upscaled = opened(result.images[0].data)
    assert upscaled.size == (512, 512)
    assert result.metadata["method"] == "real-esrgan"
    bicubic = small.resize((512, 512), Image.Resampling.BICUBIC)
    assert psnr(upscaled, original) > psnr(bicubic, original) + 0.5

    for factor, side in (("x2", 256), ("x3", 384)):
        sized = await local.upscale(UpscaleRequest(given(small), "realesr-animevideov3", factor))
        assert opened(sized.images[0].data).size == (side, side)

    translucent = small.convert("RGBA")
    translucent.putalpha(0)
    translucent.paste((255, 0, 0, 255), (32, 32, 96, 96))
    alpha = await local.upscale(UpscaleRequest(given(translucent), "realesr-animevideov3", "x2"))
    kept = np.asarray(opened(alpha.images[0].data))
    assert kept.shape == (256, 256, 4) and kept[5, 5, 3] == 0 and kept[128, 128, 3] == 255


async def test_lanczos_is_labelled_and_used_when_real_esrgan_cannot_load(
    local_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = detail_image(512).resize((128, 128), Image.Resampling.BICUBIC)
    local = provider(local_models)
    chosen = await local.upscale(UpscaleRequest(given(small), "lanczos", "x2"))
    assert chosen.model == "lanczos" and chosen.metadata["method"] == "lanczos"
    assert "note" not in chosen.metadata

    broken = replace(catalogue.REALESRGAN, runtime_module="no_such_realesrgan_module")
    monkeypatch.setattr(upscaling, "REALESRGAN", broken)
    fallback = await provider(local_models).upscale(
        UpscaleRequest(given(small), "realesr-animevideov3", "x4")
    )
    assert fallback.model == "lanczos" and fallback.metadata["method"] == "lanczos"
    assert "Real-ESRGAN is unavailable" in str(fallback.metadata["note"])
    assert "pip install 'mcp-imagegen[local]'" in str(fallback.metadata["note"])
    assert opened(fallback.images[0].data).size == (512, 512)


async def test_an_upscale_too_large_is_refused_before_any_work(local_models: Path) -> None:
    wide = InputImage(b"", "image/png", 4096, 4096, "big.png")
    with pytest.raises(InputError, match="the local upscaler makes at most 67 MP"):
        await provider(local_models).upscale(UpscaleRequest(wide, "realesr-animevideov3", "x4"))


def test_a_large_upscale_stays_under_its_memory_bound(local_models: Path) -> None:
    """1024x1024 x4 (a 4096x4096, 50 MB RGB result) in a fresh process: peak RSS under 600 MB
    (measured ~350 MB; untiled, ncnn's working memory alone grows with the whole image)."""
    # VmHWM is this process image's own peak; ru_maxrss would carry over the forking pytest's RSS.
    script = (
        "import re, sys\n"
        "from PIL import Image\n"
        "from mcp_imagegen.local.upscaling import RealEsrgan\n"
        "from pathlib import Path\n"
        "image = Image.effect_mandelbrot((1024, 1024), (-2, -1.5, 1, 1.5), 100).convert('RGB')\n"
        "out = RealEsrgan(Path(sys.argv[1])).upscale(image, 4)\n"
        "assert out.size == (4096, 4096)\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(local_models)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    peak_mb = int(done.stdout.strip().splitlines()[-1])
    assert peak_mb < 600, f"peak RSS {peak_mb} MB"


async def test_ocr_reads_drawn_text_exactly_and_says_it_is_local(local_models: Path) -> None:
    page = text_page()
    answer = await provider(local_models).describe(
        DescribeRequest((given(page),), "What does this say?", "local-analysis")
    )
    data: Any = answer.structured
    assert data["analysis"] == "local"
    lines = data["images"][0]["lines"]
    assert [line["text"] for line in lines] == list(TEXT_LINES)
    assert all(line["confidence"] > 0.9 for line in lines)
    top_left = lines[0]["box"][0]
    assert 15 <= top_left[0] <= 45 and 15 <= top_left[1] <= 50
    assert answer.text.startswith("Local analysis on this machine (no vision model)")
    assert "does not answer the question asked ('What does this say?')" in answer.text
    facts = data["images"][0]["facts"]
    assert (facts["width"], facts["height"], facts["format"], facts["has_alpha"]) == (900, 300, "PNG", False)
    assert facts["dominant_colours"][0]["hex"] == "#ffffff"


async def test_image_facts_report_alpha_and_exif(local_models: Path) -> None:
    photo = Image.new("RGB", (320, 200), (30, 90, 200))
    exif = Image.Exif()
    exif[0x010F] = "Imagegen Camera Co"  # Make
    exif[0x0110] = "Model 7"  # Model
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif)
    cut = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    cut.paste((250, 250, 0, 255), (0, 0, 50, 100))
    answer = await provider(local_models).describe(
        DescribeRequest(
            (
                InputImage(buffer.getvalue(), "image/jpeg", 320, 200, "photo.jpg"),
                given(cut),
            ),
            "Describe",
            "local-analysis",
        )
    )
    data: Any = answer.structured
    jpeg, transparent = data["images"][0]["facts"], data["images"][1]["facts"]
    assert jpeg["format"] == "JPEG" and jpeg["exif"] == {"Make": "Imagegen Camera Co", "Model": "Model 7"}
    assert transparent["has_alpha"] and transparent["transparent_fraction"] == 0.5
    assert transparent["dominant_colours"] == [{"hex": "#fafa00", "share": 1.0}], (
        "transparency is not a colour"
    )
    assert (
        "Text read: none found." in answer.text
        and "EXIF: Make Imagegen Camera Co; Model Model 7." in answer.text
    )
    with pytest.raises(UnsupportedOptionError, match="cannot answer in a response_schema"):
        await provider(local_models).describe(
            DescribeRequest((given(cut),), "?", "local-analysis", response_schema={"type": "object"})
        )


async def test_one_model_copy_and_one_inference_at_a_time() -> None:
    loads: list[int] = []
    running = 0
    most = 0

    def load() -> str:
        loads.append(1)
        return "model"

    def infer(model: str) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        import time

        time.sleep(0.05)
        running -= 1
        return model

    runner = ModelRunner("test", load)
    steps: list[str] = []
    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(runner.run, infer, steps.append)
    assert loads == [1] and most == 1
    assert any(step.startswith("queued: the local test model is busy") for step in steps)


def data_uri(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png(image)).decode()


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_no_keys_segment_cut_out_upscale_and_read(
    transport: Transport, local_models: Path, tmp_path: Path
) -> None:
    env = {"IMAGEGEN_MODELS_DIR": str(local_models), "IMAGEGEN_STORE_DIR": str(tmp_path / "store")}
    image, truth = subject_scene()
    async with connect(transport, env) as client:
        listed = structured(await client.call_tool("list_providers", {}))
        local = next(p for p in listed["providers"] if p["name"] == "local")
        assert local["configured"] and local["operations"] == ["describe", "segment", "upscale"]
        assert "u2netp ready" in local["notes"]

        segmented = structured(
            await client.call_tool("segment_image", {"image": data_uri(image), "cutout": True})
        )
        assert segmented["provider"] == "local" and segmented["model"] == "u2netp"
        kinds = [(item["kind"], item["label"]) for item in segmented["images"]]
        assert kinds == [("segment_mask", "foreground"), ("cutout", "foreground")]
        mask_blob, mime = await read_blob(client, segmented["images"][0]["uri"])
        cut_blob, _ = await read_blob(client, segmented["images"][1]["uri"])
        assert mime == "image/png"
        mask, cut = opened(mask_blob), opened(cut_blob)
        assert iou(mask, truth) > 0.9
        assert cut.mode == "RGBA" and np.array_equal(np.asarray(cut.getchannel("A")), np.asarray(mask))

        small = detail_image(512).resize((128, 128), Image.Resampling.BICUBIC)
        upscaled = structured(
            await client.call_tool("upscale_image", {"image": data_uri(small), "factor": "x4"})
        )
        assert upscaled["provider"] == "local" and upscaled["model"] == "realesr-animevideov3"
        blob, _ = await read_blob(client, upscaled["images"][0]["uri"])
        assert opened(blob).size == (512, 512)
        assert upscaled["images"][0]["width"] == 512

        read = await client.call_tool("describe_image", {"images": [data_uri(text_page())]})
        answer = structured(read)
        assert answer["provider"] == "local" and answer["model"] == "local-analysis"
        assert answer["answer"].startswith("Local analysis on this machine")
        assert [line["text"] for line in answer["data"]["images"][0]["lines"]] == list(TEXT_LINES)

        generate = await client.call_tool("generate_image", {"prompt": "a cat"})
        assert generate.is_error and "no image provider is configured" in str(generate.content)
        assert "local provider runs them on this machine" in str(generate.content)


async def test_missing_and_corrupt_models_are_refused_with_the_fix(
    local_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-models"
    monkeypatch.setenv("IMAGEGEN_MODELS_DIR", str(empty))
    image, _ = subject_scene(128)
    async with connect("memory", {}) as client:
        missing = await client.call_tool("segment_image", {"image": data_uri(image)})
        assert missing.is_error
        text = str(missing.content)
        assert "the local model u2netp is not installed: u2netp.onnx is missing from" in text
        assert "Run `mcp-imagegen models fetch u2netp` once" in text

        empty.mkdir()
        damaged = bytearray((local_models / "u2netp.onnx").read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        (empty / "u2netp.onnx").write_bytes(bytes(damaged))
        corrupt = await client.call_tool("segment_image", {"image": data_uri(image)})
        assert corrupt.is_error
        assert "refusing to load" in str(corrupt.content) and "not the pinned 309c8469" in str(
            corrupt.content
        )

        (empty / "u2netp.onnx").write_bytes((local_models / "u2netp.onnx").read_bytes())
        repaired = await client.call_tool("segment_image", {"image": data_uri(image)})
        assert not repaired.is_error, "a fixed model file is picked up without a restart"


async def test_cloud_providers_come_first_and_local_can_still_be_named(
    local_models: Path, fake_chat: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCW_SECRET_KEY", fake_chat.api_key)
    monkeypatch.setenv("SCALEWAY_BASE_URL", fake_chat.url)
    page = data_uri(text_page())
    async with connect("memory", {}) as client:
        listed = structured(await client.call_tool("list_providers", {}))
        assert {p["name"] for p in listed["providers"]} >= {"scaleway", "local"}
        cloud = await client.call_tool("describe_image", {"images": [page]})
        assert structured(cloud)["provider"] == "scaleway"
        named = structured(await client.call_tool("describe_image", {"images": [page], "provider": "local"}))
        assert named["provider"] == "local"
