"""Checks every tool makes before any input is read or any request sent: the provider honours
each option given (as its `Capabilities.options` declares), values fit together, and a model
is known. A request is returned normalised, never mutated."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, TypeVar

from mcp_imagegen.errors import ConfigError, InputError, UnsupportedOptionError
from mcp_imagegen.providers.base import Capabilities
from mcp_imagegen.providers.options import OPTION_NAMES, given_options

ASPECT_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")
if TYPE_CHECKING:
    from _typeshed import DataclassInstance

RequestT = TypeVar("RequestT", bound="DataclassInstance")


def chosen_model(caps: Capabilities, model: str | None, provider: str, operation: str = "generate") -> str:
    chosen = model or caps.default_model_for(operation)
    if not chosen:
        raise ConfigError(
            f"{provider} has no default model: pass model, or set AZURE_OPENAI_DEPLOYMENT for Azure"
        )
    return chosen


def checked(provider: str, caps: Capabilities, request: RequestT) -> RequestT:
    """Refuse what the provider cannot do; return the request with `aspect_ratio` normalised
    (" 16 : 9 " becomes "16:9") and `partial_images=0` read as not given."""
    if getattr(request, "partial_images", None) == 0:
        request = dataclasses.replace(request, partial_images=None)
    given = given_options(request)
    unsupported = sorted(name for name in given if name in OPTION_NAMES and name not in caps.options)
    if unsupported:
        them = "them" if len(unsupported) > 1 else "it"
        supported = ", ".join(sorted(caps.options))
        raise UnsupportedOptionError(
            f"{provider} does not support {', '.join(unsupported)}; leave {them} out or pick a provider that "
            f"does (list_providers). {provider} supports: {supported}"
        )
    n = getattr(request, "n", 1)
    model = getattr(request, "model", None)
    family = caps.family_of(model) if isinstance(model, str) else None
    if family is not None:
        refused = sorted(name for name in given if name in OPTION_NAMES and name not in family.options)
        if refused:
            takers = [other.name for other in caps.families if set(refused) <= other.options]
            those = f"; those are {' and '.join(takers)} options" if takers else ""
            raise UnsupportedOptionError(
                f"{model} ({family.name}) does not take {', '.join(refused)}{those}. Leave "
                f"{'them' if len(refused) > 1 else 'it'} out or pick a model that does (list_providers)."
            )
    if n > caps.max_images:
        raise InputError(f"{provider} makes at most {caps.max_images} image(s) per call, not {n}")
    if "size" in given and "aspect_ratio" in given:
        raise InputError("give size or aspect_ratio, not both")
    ratio = given.get("aspect_ratio")
    if isinstance(ratio, str):
        match = ASPECT_RATIO.match(ratio)
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            raise InputError(f"aspect_ratio must look like 16:9, not {ratio!r}")
        request = dataclasses.replace(request, aspect_ratio=f"{int(match[1])}:{int(match[2])}")
    output_format = given.get("output_format")
    if output_format is not None and output_format not in caps.output_formats:
        raise UnsupportedOptionError(
            f"{provider} makes {', '.join(caps.output_formats)}, not {output_format}"
        )
    if given.get("background") == "transparent" and output_format not in (None, "png", "webp"):
        raise InputError("background 'transparent' needs output_format png or webp")
    if "output_compression" in given and output_format not in ("jpeg", "webp"):
        raise InputError("output_compression applies to jpeg or webp output; set output_format too")
    return request
