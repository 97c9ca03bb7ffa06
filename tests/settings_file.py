"""`Settings` written as the TOML config file `mcp-imagegen --config` reads, so a test can give a
spawned server (stdio, HTTP) exactly the settings an in-memory one gets, instead of environment
variables. Secrets are written as they are: the file lives in the test's temp folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from mcp_imagegen.config import PROVIDER_SECTIONS, Settings


def settings_toml(settings: Settings) -> str:
    """The settings as TOML: top-level values, then `[providers.NAME]` and `[endpoints.NAME]`."""
    data = _plain(settings.model_dump(mode="python", exclude_none=True))
    providers = {name: data.pop(name) for name in PROVIDER_SECTIONS if name in data}
    endpoints = data.pop("endpoints", {})
    lines = [f"{key} = {_value(value)}" for key, value in data.items()]
    for prefix, sections in (("providers", providers), ("endpoints", endpoints)):
        for name, section in sections.items():
            lines += [
                "",
                f"[{prefix}.{name}]",
                *(f"{key} = {_value(value)}" for key, value in section.items()),
            ]
    return "\n".join(lines) + "\n"


def write_settings(settings: Settings, folder: Path) -> Path:
    path = folder / "mcp-imagegen.toml"
    path.write_text(settings_toml(settings), encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    """Secrets revealed, paths and networks as strings, None left out (TOML has no null)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _value(value: Any) -> str:
    """A TOML value: JSON's spelling of strings, numbers, booleans and arrays is TOML's too."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)} = {_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value)
