"""What each OpenAI image model accepts, checked before any request is sent.

Sources: `providers.md` sections 1.2, 1.4.2, 1.7 and 1.8. A model name we do not
recognise (a newer release, an Azure deployment name, a compatible server's model)
passes through unchecked apart from syntax: the server is the authority then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mcp_imagegen.errors import InputError, UnsupportedOptionError

FIXED_SIZES = ("1024x1024", "1536x1024", "1024x1536")
FIXED_ASPECTS = {(1, 1): "1024x1024", (3, 2): "1536x1024", (2, 3): "1024x1536"}
BASE_QUALITIES = ("low", "medium", "high", "auto")

FLEX_MAX_EDGE = 3840
FLEX_MIN_PIXELS = 655_360
FLEX_MAX_PIXELS = 8_294_400
FLEX_MAX_RATIO = 3.0
FLEX_TARGET_PIXELS = 1024 * 1024


@dataclass(frozen=True)
class ModelRules:
    """Per-family rules; `None` for a field means "not checked"."""

    family: str
    flexible_sizes: bool
    qualities: tuple[str, ...] | None
    input_fidelity: tuple[str, ...] | None
    """Allowed `input_fidelity` values; an empty tuple means the model refuses the field."""
    transparent: bool | None = None
    """Whether it makes transparent backgrounds (None: not checked)."""


FIXED_FAMILY = ModelRules("gpt-image-1", False, BASE_QUALITIES, ("low", "high"), transparent=True)
MINI_FAMILY = ModelRules("gpt-image-1-mini", False, BASE_QUALITIES, ("low",), transparent=True)
FLEX_FAMILY = ModelRules("gpt-image-2", True, BASE_QUALITIES, (), transparent=False)
"""gpt-image-2 answers 400 "Transparent background is not supported for this model" (switched off
2026-09-30, third-party reports; models-2026-12.md 1.2)."""
FLEX_PLUS_FAMILY = ModelRules("gpt-image-2.5", True, (*BASE_QUALITIES, "xhigh", "max"), (), transparent=True)
UNKNOWN = ModelRules("unknown", False, None, None)


def rules_for(model: str) -> ModelRules:
    """The rules of the family `model` belongs to (dated snapshots share their family's rules)."""
    if model.startswith(("gpt-image-2.5", "gpt-image-2.6")):
        return FLEX_PLUS_FAMILY
    if model.startswith("gpt-image-2"):
        return FLEX_FAMILY
    if model.startswith("gpt-image-1-mini"):
        return MINI_FAMILY
    if model.startswith(("gpt-image-1", "chatgpt-image")):
        return FIXED_FAMILY
    return UNKNOWN


def parse_size(size: str) -> tuple[int, int] | None:
    """`WxH` as integers, `None` for `auto`; InputError for anything else."""
    if size == "auto":
        return None
    width_text, sep, height_text = size.lower().partition("x")
    if not sep or not width_text.isdigit() or not height_text.isdigit():
        raise InputError(f"size must be 'auto' or WIDTHxHEIGHT such as 1024x1536, not {size!r}")
    width, height = int(width_text), int(height_text)
    if width <= 0 or height <= 0:
        raise InputError(f"size {size!r} must have positive width and height")
    return width, height


def check_size(model: str, size: str) -> str:
    """Validate `size` for `model`; returns the normalised size string."""
    dims = parse_size(size)
    if dims is None:
        return "auto"
    width, height = dims
    normalised = f"{width}x{height}"
    rules = rules_for(model)
    if rules.flexible_sizes:
        problems = flexible_size_problems(width, height)
        if problems:
            raise InputError(f"size {normalised} is not valid for {model}: " + "; ".join(problems))
    elif rules is not UNKNOWN and normalised not in FIXED_SIZES:
        raise InputError(
            f"{model} only makes {', '.join(FIXED_SIZES)} or auto, not {normalised}; "
            "gpt-image-2 accepts other sizes"
        )
    return normalised


def flexible_size_problems(width: int, height: int) -> list[str]:
    """Every rule a gpt-image-2 `WxH` breaks (empty when it is valid)."""
    problems = []
    if width % 16 or height % 16:
        problems.append("both edges must be multiples of 16")
    if max(width, height) > FLEX_MAX_EDGE:
        problems.append(f"the long edge must be at most {FLEX_MAX_EDGE}")
    pixels = width * height
    if not FLEX_MIN_PIXELS <= pixels <= FLEX_MAX_PIXELS:
        problems.append(f"total pixels must be {FLEX_MIN_PIXELS:,} to {FLEX_MAX_PIXELS:,} (got {pixels:,})")
    if max(width, height) > FLEX_MAX_RATIO * min(width, height):
        problems.append("the aspect ratio must be between 1:3 and 3:1")
    return problems


def size_for_aspect_ratio(model: str, ratio: tuple[int, int]) -> str:
    """The documented mapping from `aspect_ratio` to `size`.

    gpt-image-2 family: the exact ratio at about one megapixel, edges rounded to 16.
    Other models: 1:1, 3:2 and 2:3 map to their three sizes; any other ratio is refused.
    """
    ratio_w, ratio_h = ratio
    if rules_for(model).flexible_sizes:
        if max(ratio_w, ratio_h) > FLEX_MAX_RATIO * min(ratio_w, ratio_h):
            raise UnsupportedOptionError(f"aspect_ratio {ratio_w}:{ratio_h} is outside 1:3..3:1 for {model}")
        width = math.sqrt(FLEX_TARGET_PIXELS * ratio_w / ratio_h)
        height = width * ratio_h / ratio_w
        return f"{_round16(width)}x{_round16(height)}"
    divisor = math.gcd(ratio_w, ratio_h)
    reduced = (ratio_w // divisor, ratio_h // divisor)
    if reduced not in FIXED_ASPECTS:
        raise UnsupportedOptionError(
            f"{model} supports aspect_ratio 1:1, 3:2 or 2:3 (sizes {', '.join(FIXED_SIZES)}), "
            f"not {ratio_w}:{ratio_h}; gpt-image-2 accepts any ratio from 1:3 to 3:1"
        )
    return FIXED_ASPECTS[reduced]


def _round16(value: float) -> int:
    return max(16, round(value / 16) * 16)


def check_quality(model: str, quality: str) -> None:
    allowed = rules_for(model).qualities
    if allowed is not None and quality not in allowed:
        raise UnsupportedOptionError(f"{model} accepts quality {', '.join(allowed)}, not {quality!r}")


def check_input_fidelity(model: str, fidelity: str) -> None:
    allowed = rules_for(model).input_fidelity
    if allowed is None:
        return
    if not allowed:
        raise UnsupportedOptionError(f"{model} does not take input_fidelity; leave it out")
    if fidelity not in allowed:
        raise UnsupportedOptionError(f"{model} accepts input_fidelity {', '.join(allowed)}, not {fidelity!r}")


def check_background(model: str, background: str, transparent_models: tuple[str, ...]) -> None:
    """Refuse a transparent background for a model that makes none, naming `transparent_models`
    (those of the provider that do)."""
    if background == "transparent" and rules_for(model).transparent is False:
        takers = ", ".join(transparent_models) or "a gpt-image-2.5 or 2.6 model"
        raise UnsupportedOptionError(
            f"{model} does not make transparent backgrounds; use {takers}, or leave background out"
        )
