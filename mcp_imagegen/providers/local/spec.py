"""The local provider's spec: what it can do and whether its runtimes are here, read without
importing the provider (`providers/local/provider.py`, with Pillow's filters and the model runners), which is
built only when a call needs it: every start reads the specs of all providers.
"""

from __future__ import annotations

from mcp_imagegen.config import Settings
from mcp_imagegen.local import catalogue, model_files
from mcp_imagegen.operations import Operation
from mcp_imagegen.providers.base import Capabilities, Provider
from mcp_imagegen.providers.spec import ProviderSpec

NAME = "local"
SEGMENT_MODELS = (catalogue.U2NETP.name, catalogue.SELFIE.name)
UPSCALE_MODELS = (catalogue.REALESRGAN.name, "lanczos")
ANALYSIS_MODEL = "local-analysis"


def installed_operations() -> frozenset[Operation]:
    """Upscale always works (Lanczos without Real-ESRGAN); segment and describe need their runtimes."""
    operations: set[Operation] = {"upscale"}
    if model_files.runtime_installed(catalogue.U2NETP) or model_files.runtime_installed(catalogue.SELFIE):
        operations.add("segment")
    if model_files.runtime_installed(catalogue.PP_OCR):
        operations.add("describe")
    return frozenset(operations)


def readiness(settings: Settings) -> str:
    """Which models are present on this machine (by size; hashes are checked when a model loads)."""
    statuses = model_files.all_statuses(settings.models_dir, check_hashes=False)
    return f"Models here: {', '.join(f'{state.model.name} {state.summary}' for state in statuses)}."


CAPABILITIES = Capabilities(
    operations=frozenset({"segment", "upscale", "describe"}),
    models=(*SEGMENT_MODELS, *UPSCALE_MODELS),
    default_model=catalogue.U2NETP.name,
    options=frozenset(
        {
            "output_format",
            "output_compression",
            "max_predictions",
            "confidence_threshold",
            "mask_dilation",
            "binary_color_threshold",
        }
    ),
    output_formats=("png", "jpeg", "webp"),
    input_mime_types=("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff"),
    vision_models=(ANALYSIS_MODEL,),
    max_describe_images=8,
    vision_max_side=1 << 16,
    operation_models={
        "segment": catalogue.U2NETP.name,
        "upscale": catalogue.REALESRGAN.name,
        "describe": ANALYSIS_MODEL,
    },
    notes=(
        "Runs on this machine's CPU, no key, no network. segment_image: modes foreground and background "
        "with u2netp (any subject; cutout=true for the subject on transparency), or model "
        "mediapipe-selfie for people only. upscale_image: x2, x3, x4 with Real-ESRGAN "
        "(realesr-animevideov3), or model lanczos (plain resampling, no AI). describe_image: local "
        "analysis only (OCR text with boxes, size, format, colours, EXIF), not a vision model. "
        f"Install with pip install 'mcp-imagegen[local]' and `{model_files.FETCH_COMMAND}`."
    ),
)


def _build(settings: Settings) -> Provider:
    from mcp_imagegen.providers.local.provider import LocalProvider

    return LocalProvider(settings)


SPEC = ProviderSpec(
    name="local",
    title="Local: segmentation, upscaling and OCR on this machine's CPU (no key, no network)",
    env_vars=(),
    is_configured=lambda settings: True,
    build=lambda settings, client: _build(settings),
    capabilities=lambda settings: CAPABILITIES,
    readiness=readiness,
    installed=lambda settings: installed_operations(),
    max_in_flight=2,  # each inference already uses IMAGEGEN_LOCAL_THREADS of this machine's cores
)
