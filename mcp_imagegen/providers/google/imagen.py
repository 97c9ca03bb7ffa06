"""Imagen on Vertex AI: `models/{model}:predict` bodies and replies (providers.md 3.2, 3.3).

Parameters are written in the order and spelling google-genai 3.4 uses. Every request
asks for the RAI reason and safety attributes so that a filtered image is explained, not
silently missing: the reply's filtered entries become a content-policy error when nothing
else came back, and are kept in the metadata when some images did.
"""

from __future__ import annotations

import binascii
from typing import Any

from pydantic import JsonValue

from mcp_imagegen.errors import (
    ContentPolicyError,
    InputError,
    MalformedReplyError,
    ProviderError,
    UnsupportedOptionError,
)
from mcp_imagegen.images import b64
from mcp_imagegen.providers.base import (
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    InputImage,
    RecontextRequest,
    SegmentRequest,
    UpscaleRequest,
)
from mcp_imagegen.providers.options import OptionName

EDIT_MODEL = "imagen-3.0-capability-001"
UPSCALE_MODEL = "imagen-4.0-upscale-preview"
SEGMENT_MODEL = "image-segmentation-001"
RECONTEXT_MODEL = "imagen-product-recontext-preview-06-30"
UPSCALE_FACTORS = ("x2", "x4")
SEGMENT_MODES = ("foreground", "background", "prompt", "semantic", "interactive")
MAX_PRODUCT_IMAGES = 3
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
SAMPLE_IMAGE_SIZES = ("1K", "2K")
LANGUAGES = ("auto", "en", "ja", "ko", "hi", "zh", "pt", "es")
MAX_SAMPLES = 4
PERSON_GENERATION = {"allow_all": "ALLOW_ALL", "allow_adult": "ALLOW_ADULT", "dont_allow": "DONT_ALLOW"}
SAFETY_SETTINGS = {
    "block_low_and_above": "BLOCK_LOW_AND_ABOVE",
    "block_medium_and_above": "BLOCK_MEDIUM_AND_ABOVE",
    "block_only_high": "BLOCK_ONLY_HIGH",
    "block_none": "BLOCK_NONE",
}
IMAGEN_ONLY_OPTIONS: tuple[OptionName, ...] = (
    "negative_prompt",
    "safety_filter",
    "language",
    "add_watermark",
    "enhance_prompt",
    "guidance_scale",
    "mode",
    "mask_mode",
    "mask_classes",
    "mask_dilation",
    "reference_type",
)
"""Options that only Imagen models take; a Gemini model given one is refused with a pointer here."""
PROMPT_SAFETY_ENTRY = "Positive Prompt"


MODEL_PREFIXES = ("imagen-", "image-segmentation", "virtual-try-on")


def is_imagen(model: str) -> bool:
    return model.startswith(MODEL_PREFIXES)


def generate_body(request: GenerateRequest) -> dict[str, Any]:
    """`{"instances": [{"prompt"}], "parameters": {...}}` for a text-to-image request."""
    if request.n > MAX_SAMPLES:
        raise InputError(f"{request.model} makes at most {MAX_SAMPLES} images per call, not {request.n}")
    if request.seed is not None and request.add_watermark is not False:
        raise InputError("Imagen takes a seed only without the watermark: pass add_watermark false with seed")
    parameters: dict[str, Any] = {}
    if request.negative_prompt is not None:
        parameters["negativePrompt"] = request.negative_prompt
    parameters["sampleCount"] = request.n
    if request.aspect_ratio is not None:
        parameters["aspectRatio"] = _one_of(
            "aspect_ratio", request.aspect_ratio, ASPECT_RATIOS, request.model
        )
    if request.guidance_scale is not None:
        parameters["guidanceScale"] = request.guidance_scale
    if request.seed is not None:
        parameters["seed"] = request.seed
    parameters.update(_shared_parameters(request))
    if request.add_watermark is not None:
        parameters["addWatermark"] = request.add_watermark
    if request.image_size is not None:
        parameters["sampleImageSize"] = _one_of(
            "image_size", request.image_size, SAMPLE_IMAGE_SIZES, request.model
        )
    if request.enhance_prompt is not None:
        parameters["enhancePrompt"] = request.enhance_prompt
    return {"instances": [{"prompt": request.prompt}], "parameters": parameters}


EDIT_MODES = {
    "insert": "EDIT_MODE_INPAINT_INSERTION",
    "remove": "EDIT_MODE_INPAINT_REMOVAL",
    "outpaint": "EDIT_MODE_OUTPAINT",
    "background_swap": "EDIT_MODE_BGSWAP",
    "product": "EDIT_MODE_PRODUCT_IMAGE",
}
MASK_MODES = {
    "user_provided": "MASK_MODE_USER_PROVIDED",
    "background": "MASK_MODE_BACKGROUND",
    "foreground": "MASK_MODE_FOREGROUND",
    "semantic": "MASK_MODE_SEMANTIC",
}
SUBJECT_TYPES = {
    "default": "SUBJECT_TYPE_DEFAULT",
    "person": "SUBJECT_TYPE_PERSON",
    "animal": "SUBJECT_TYPE_ANIMAL",
    "product": "SUBJECT_TYPE_PRODUCT",
}
CONTROL_TYPES = {
    "canny": "CONTROL_TYPE_CANNY",
    "scribble": "CONTROL_TYPE_SCRIBBLE",
    "face_mesh": "CONTROL_TYPE_FACE_MESH",
}
MAX_MASK_CLASSES = 5


def edit_body(request: EditRequest, mask_png: bytes | None) -> dict[str, Any]:
    """An Imagen edit (providers.md 3.4).

    Either a masked edit of the first image (a RAW reference, then a MASK reference that is the
    user's mask as white-on-black, or one the service computes from `mask_mode`), with an
    edit mode; or, with `reference_type`, a customisation where every input image is a
    STYLE, SUBJECT or CONTROL reference that the prompt refers to as [1], [2]...
    """
    if request.n > MAX_SAMPLES:
        raise InputError(f"{request.model} makes at most {MAX_SAMPLES} images per call, not {request.n}")
    if request.aspect_ratio is not None or request.size is not None:
        raise InputError("Imagen edits keep the input's size: leave size and aspect_ratio out")
    references = (
        _customisation_references(request) if request.reference_type else _edit_references(request, mask_png)
    )
    parameters: dict[str, Any] = {}
    if request.negative_prompt is not None:
        parameters["negativePrompt"] = request.negative_prompt
    parameters["sampleCount"] = request.n
    if request.guidance_scale is not None:
        parameters["guidanceScale"] = request.guidance_scale
    if request.seed is not None:
        if request.add_watermark is not False:
            raise InputError(
                "Imagen takes a seed only without the watermark: pass add_watermark false with seed"
            )
        parameters["seed"] = request.seed
    parameters.update(_shared_parameters(request))
    if request.add_watermark is not None:
        parameters["addWatermark"] = request.add_watermark
    edit_mode = _edit_mode(request, mask_png)
    if edit_mode is not None:
        parameters["editMode"] = edit_mode
    return {
        "instances": [{"prompt": request.prompt, "referenceImages": references}],
        "parameters": parameters,
    }


def _edit_mode(request: EditRequest, mask_png: bytes | None) -> str | None:
    if request.reference_type:
        if request.mode:
            raise InputError("reference_type edits take no mode; describe the change in the prompt")
        return None
    if request.mode:
        return EDIT_MODES[request.mode]
    return EDIT_MODES["insert"] if mask_png is not None or request.mask_mode else None


def _edit_references(request: EditRequest, mask_png: bytes | None) -> list[dict[str, Any]]:
    if len(request.images) != 1:
        raise InputError(
            "an Imagen masked edit takes one image; to use more as style, subject or control references, "
            "set reference_type"
        )
    mask_mode = request.mask_mode or ("user_provided" if mask_png is not None else None)
    if request.mode == "background_swap" and mask_mode is None:
        mask_mode = "background"
    if request.mode in ("insert", "remove", "outpaint") and mask_mode is None:
        raise InputError(
            f"edit mode {request.mode} needs a mask, or a mask_mode (background, foreground, semantic)"
        )
    if (mask_mode == "user_provided") != (mask_png is not None):
        raise InputError(
            "mask_mode user_provided goes with a mask image, and a mask image with user_provided"
        )
    if request.mask_classes and mask_mode != "semantic":
        raise InputError("mask_classes apply to mask_mode semantic")
    if mask_mode == "semantic" and not 1 <= len(request.mask_classes) <= MAX_MASK_CLASSES:
        raise InputError(
            f"mask_mode semantic needs 1 to {MAX_MASK_CLASSES} mask_classes (segmentation class ids)"
        )
    references: list[dict[str, Any]] = [
        {
            "referenceImage": image_json(request.images[0]),
            "referenceId": 1,
            "referenceType": "REFERENCE_TYPE_RAW",
        }
    ]
    if mask_mode is not None:
        config: dict[str, Any] = {"maskMode": MASK_MODES[mask_mode]}
        if request.mask_classes:
            config["maskClasses"] = list(request.mask_classes)
        if request.mask_dilation is not None:
            config["dilation"] = request.mask_dilation
        mask: dict[str, Any] = {}
        if mask_png is not None:
            mask["referenceImage"] = {
                "bytesBase64Encoded": b64.encode(mask_png),
                "mimeType": "image/png",
            }
        mask.update({"referenceId": 2, "referenceType": "REFERENCE_TYPE_MASK", "maskImageConfig": config})
        references.append(mask)
    return references


def _customisation_references(request: EditRequest) -> list[dict[str, Any]]:
    kind = request.reference_type
    if request.mask is not None or request.mask_mode:
        raise InputError("reference_type edits take no mask")
    references = []
    for index, image in enumerate(request.images, start=1):
        reference: dict[str, Any] = {"referenceImage": image_json(image), "referenceId": index}
        if kind == "style":
            reference["referenceType"] = "REFERENCE_TYPE_STYLE"
            reference["styleImageConfig"] = _without_none({"styleDescription": request.reference_description})
        elif kind == "subject":
            reference["referenceType"] = "REFERENCE_TYPE_SUBJECT"
            reference["subjectImageConfig"] = _without_none(
                {
                    "subjectType": SUBJECT_TYPES[request.subject_type or "default"],
                    "subjectDescription": request.reference_description,
                }
            )
        else:
            reference["referenceType"] = "REFERENCE_TYPE_CONTROL"
            reference["controlImageConfig"] = {
                "controlType": CONTROL_TYPES[request.control_type or "scribble"],
                "computeControl": True,
            }
        references.append(reference)
    return references


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def upscale_body(request: UpscaleRequest) -> dict[str, Any]:
    """Upscale one image by `x2` or `x4` (providers.md 3.5)."""
    if request.factor not in UPSCALE_FACTORS:
        raise InputError(f"{request.model} upscales by x2 or x4, not {request.factor}")
    parameters: dict[str, Any] = {
        "upscaleConfig": {"upscaleFactor": request.factor},
        "includeRaiReason": True,
    }
    if request.output_format is not None:
        parameters["outputOptions"] = _output_options(request.output_format, request.output_compression)
    parameters.update({"sampleCount": 1, "mode": "upscale"})
    return {"instances": [{"image": image_json(request.image)}], "parameters": parameters}


def segment_body(request: SegmentRequest) -> dict[str, Any]:
    """Masks of one image (providers.md 3.7); the prompt is required in prompt and semantic modes,
    a scribble in interactive mode, and neither is allowed otherwise."""
    mode = request.mode
    if mode not in SEGMENT_MODES:
        raise InputError(f"segment mode must be one of {', '.join(SEGMENT_MODES)}, not {mode}")
    if mode in ("prompt", "semantic") and not request.prompt:
        what = "what to find" if mode == "prompt" else "the class names to find (labels)"
        raise InputError(f"segment mode {mode} needs {what}")
    if mode not in ("prompt", "semantic") and request.prompt:
        raise InputError(f"segment mode {mode} takes no prompt; use mode prompt to find what a prompt names")
    if (mode == "interactive") != (request.scribble is not None):
        raise InputError("segment mode interactive needs points (and only it takes them)")
    instance: dict[str, Any] = {}
    if request.prompt:
        instance["prompt"] = request.prompt
    instance["image"] = image_json(request.image)
    if request.scribble is not None:
        instance["scribble"] = {"image": image_json(request.scribble)}
    parameters: dict[str, Any] = {"mode": mode.upper()}
    optional = {
        "maxPredictions": request.max_predictions,
        "confidenceThreshold": request.confidence_threshold,
        "maskDilation": request.mask_dilation,
        "binaryColorThreshold": request.binary_color_threshold,
    }
    parameters.update({key: value for key, value in optional.items() if value is not None})
    return {"instances": [instance], "parameters": parameters}


def recontext_body(request: RecontextRequest) -> dict[str, Any]:
    """A product (1-3 views) placed in the scene the prompt describes (providers.md 3.6)."""
    if not 1 <= len(request.images) <= MAX_PRODUCT_IMAGES:
        raise InputError(
            f"recontext takes 1 to {MAX_PRODUCT_IMAGES} product images, not {len(request.images)}"
        )
    if request.n > MAX_SAMPLES:
        raise InputError(f"{request.model} makes at most {MAX_SAMPLES} images per call, not {request.n}")
    instance: dict[str, Any] = {}
    if request.prompt:
        instance["prompt"] = request.prompt
    instance["productImages"] = [{"image": image_json(image)} for image in request.images]
    parameters: dict[str, Any] = {"sampleCount": request.n}
    if request.seed is not None:
        parameters["seed"] = request.seed
    if request.safety_filter is not None:
        parameters["safetySetting"] = SAFETY_SETTINGS[request.safety_filter]
    if request.person_generation is not None:
        parameters["personGeneration"] = PERSON_GENERATION[request.person_generation]
    if request.add_watermark is not None:
        parameters["addWatermark"] = request.add_watermark
    if request.output_format is not None:
        parameters["outputOptions"] = _output_options(request.output_format, request.output_compression)
    if request.enhance_prompt is not None:
        parameters["enhancePrompt"] = request.enhance_prompt
    return {"instances": [instance], "parameters": parameters}


def image_json(image: InputImage) -> dict[str, str]:
    return {"bytesBase64Encoded": b64.encode(image.data), "mimeType": image.mime_type}


def read_masks(provider: str, mode: str, body: dict[str, Any]) -> list[GeneratedImage]:
    """Each predicted mask with its label and score; an empty answer says nothing was found."""
    masks: list[GeneratedImage] = []
    predictions = body.get("predictions")
    for entry in predictions if isinstance(predictions, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("bytesBase64Encoded"), (str, bytes)):
            continue
        labels = entry.get("labels")
        first = labels[0] if isinstance(labels, list) and labels and isinstance(labels[0], dict) else {}
        score = first.get("score")
        masks.append(
            GeneratedImage(
                _b64(provider, entry["bytesBase64Encoded"]),
                label=str(first["label"]) if "label" in first else None,
                score=float(score) if isinstance(score, int | float | str) and _is_number(score) else None,
            )
        )
    if not masks:
        raise ProviderError(
            provider, f"found nothing to mask in {mode} mode; try another mode or a lower threshold"
        )
    return masks


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _output_options(output_format: str, compression: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {"mimeType": f"image/{output_format}"}
    if compression is not None:
        if output_format != "jpeg":
            raise InputError(
                "Imagen compresses jpeg output only; use output_format jpeg with output_compression"
            )
        options["compressionQuality"] = compression
    return options


def _shared_parameters(request: GenerateRequest) -> dict[str, Any]:
    """Safety, people, reasons, language and output options, in the SDK's order."""
    parameters: dict[str, Any] = {}
    if request.safety_filter is not None:
        parameters["safetySetting"] = SAFETY_SETTINGS[request.safety_filter]
    if request.person_generation is not None:
        parameters["personGeneration"] = PERSON_GENERATION[request.person_generation]
    parameters["includeSafetyAttributes"] = True
    parameters["includeRaiReason"] = True
    if request.language is not None:
        parameters["language"] = _one_of("language", request.language, LANGUAGES, request.model)
    if request.output_format is not None:
        options: dict[str, Any] = {"mimeType": f"image/{request.output_format}"}
        if request.output_compression is not None:
            if request.output_format != "jpeg":
                raise InputError(
                    "Imagen compresses jpeg output only; use output_format jpeg with output_compression"
                )
            options["compressionQuality"] = request.output_compression
        parameters["outputOptions"] = options
    return parameters


def refuse_imagen_only(request: GenerateRequest) -> None:
    """A Gemini model given an Imagen-only option: say which models take it."""
    given = [name for name in IMAGEN_ONLY_OPTIONS if getattr(request, name, None) not in (None, ())]
    if given:
        raise UnsupportedOptionError(
            f"{request.model} does not take {', '.join(given)}; those are Imagen options (Google shut "
            "Imagen's generate and edit models down on 2026-08-17)"
        )


def read_predictions(
    provider: str, body: dict[str, Any]
) -> tuple[list[GeneratedImage], dict[str, JsonValue]]:
    """The images of a `:predict` reply, and what it said about filtered images and safety."""
    predictions = body.get("predictions")
    images: list[GeneratedImage] = []
    filtered: list[str] = []
    safety: list[JsonValue] = []
    prompt_safety: JsonValue = None
    for entry in predictions if isinstance(predictions, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("contentType") == PROMPT_SAFETY_ENTRY:
            prompt_safety = entry.get("safetyAttributes")
            continue
        if isinstance(entry.get("raiFilteredReason"), str):
            filtered.append(entry["raiFilteredReason"])
            continue
        encoded = entry.get("bytesBase64Encoded")
        if not isinstance(encoded, (str, bytes)):
            continue
        revised = entry.get("prompt")
        images.append(GeneratedImage(_b64(provider, encoded), revised if isinstance(revised, str) else None))
        if "safetyAttributes" in entry:
            safety.append(entry["safetyAttributes"])
    if not images:
        reason = "; ".join(filtered) or "every image was filtered and no reason was given"
        raise ContentPolicyError(provider, reason)
    metadata: dict[str, JsonValue] = {}
    if filtered:
        metadata["filtered"] = {"count": len(filtered), "reasons": list(dict.fromkeys(filtered))}
    if safety:
        metadata["safety_attributes"] = safety
    if prompt_safety is not None:
        metadata["prompt_safety_attributes"] = prompt_safety
    return images, metadata


def _one_of(option: str, value: str, allowed: tuple[str, ...], model: str) -> str:
    if value not in allowed:
        raise InputError(f"{model} supports {option} {', '.join(allowed)}, not {value}")
    return value


def _b64(provider: str, encoded: str | bytes) -> bytes:
    """Standard or URL-safe base64; bytes were decoded already (`read_json_object`'s `images_at`)."""
    if isinstance(encoded, bytes):
        return encoded
    try:
        return b64.decode_either(encoded)
    except (binascii.Error, ValueError):
        raise MalformedReplyError(f"{provider} sent an image with invalid base64.") from None
