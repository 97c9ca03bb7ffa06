"""Model rules checked before the call (providers.md 1.2, 1.7, 1.8)."""

from __future__ import annotations

import pytest

from mcp_imagegen.errors import InputError, UnsupportedOptionError
from mcp_imagegen.providers.openai import models as rules


@pytest.mark.parametrize("size", ["1024x1024", "3840x2160", "2160x3840", "1024x3072", "816x816", "auto"])
def test_gpt_image_2_accepts_flexible_sizes(size: str) -> None:
    assert rules.check_size("gpt-image-2-2026-04-21", size) == size


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        ("1000x1024", "multiples of 16"),
        ("4096x1024", "long edge must be at most 3840"),
        ("512x512", "total pixels"),
        ("3840x3840", "total pixels"),
        ("3072x1008", "between 1:3 and 3:1"),
    ],
)
def test_gpt_image_2_size_rules(size: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        rules.check_size("gpt-image-2", size)


def test_fixed_size_models_and_unknown_models() -> None:
    assert rules.check_size("gpt-image-1-mini", "1536x1024") == "1536x1024"
    with pytest.raises(InputError, match="only makes"):
        rules.check_size("gpt-image-1.5", "2048x2048")
    assert rules.check_size("some-future-model", "777x333") == "777x333"


def test_aspect_ratio_mapping() -> None:
    assert rules.size_for_aspect_ratio("gpt-image-2", (16, 9)) == "1360x768"
    assert rules.size_for_aspect_ratio("gpt-image-2", (1, 1)) == "1024x1024"
    assert rules.check_size("gpt-image-2", rules.size_for_aspect_ratio("gpt-image-2", (21, 9))) == "1568x672"
    assert rules.size_for_aspect_ratio("gpt-image-1.5", (6, 4)) == "1536x1024"
    with pytest.raises(UnsupportedOptionError, match=r"1:3\.\.3:1"):
        rules.size_for_aspect_ratio("gpt-image-2", (4, 1))


def test_quality_and_fidelity_by_family() -> None:
    rules.check_quality("gpt-image-2.5-flare", "max")
    with pytest.raises(UnsupportedOptionError):
        rules.check_quality("gpt-image-2", "max")
    rules.check_input_fidelity("gpt-image-1.5", "high")
    with pytest.raises(UnsupportedOptionError, match="low"):
        rules.check_input_fidelity("gpt-image-1-mini", "high")
    with pytest.raises(UnsupportedOptionError, match="does not take input_fidelity"):
        rules.check_input_fidelity("gpt-image-2", "low")
