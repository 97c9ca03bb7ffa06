"""`mcp-imagegen models check [--json]`: the providers' live model lists against the model data
(`server/model_check.py`), printed, and kept in the store for every server reading it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ImagegenError
from mcp_imagegen.providers.model_data import Overlay
from mcp_imagegen.server.model_check import ProviderFindings, run


async def _run_alone(settings: Settings) -> tuple[list[ProviderFindings], Overlay]:
    from mcp_imagegen.store.selection import model_overlay

    async with model_overlay(settings) as store:
        return await run(settings, store)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mcp-imagegen models check",
        description="Ask every configured provider for its live model list, compare it with the model data, "
        "and keep what changed in the store, where every server reading it honours it.",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--config", type=Path, help="TOML config file (environment variables override it)")
    args = parser.parse_args(argv)
    from mcp_imagegen.config import load_settings

    started = time.perf_counter()
    try:
        findings, overlay = anyio.run(_run_alone, load_settings(args.config))
    except ImagegenError as exc:
        sys.stderr.write(f"mcp-imagegen models check: {exc}\n")
        raise SystemExit(2) from None
    if args.json:
        document = {
            "checked_at": overlay.checked_at.isoformat(),
            "providers": [found.as_json() for found in findings],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif not findings:
        sys.stdout.write("No configured provider has a model list to check.\n")
    else:
        sys.stdout.write("\n".join(overlay.report) + "\n")
        sys.stdout.write(
            f"Checked {len(findings)} provider(s) in {time.perf_counter() - started:.1f} s; servers "
            f"on this store honour what changed ({len(overlay.records)} model(s)) from now on.\n"
        )
    if any(found.error is not None for found in findings):
        raise SystemExit(1)
