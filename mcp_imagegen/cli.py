"""Command line: `mcp-imagegen [--transport stdio|http|sse] [--host H] [--port P] [--config FILE]`.

stdio is the default (a host spawns the server). Logs go to stderr only: on stdio,
stdout is the protocol stream.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp_imagegen import __version__
from mcp_imagegen.errors import ConfigError

log = logging.getLogger("mcp_imagegen")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mcp-imagegen",
        description="MCP server for image generation and editing across providers.",
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http", "sse"),
        default="stdio",
        help="stdio (default), http (Streamable HTTP at /mcp) or sse (/sse and /messages/)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address for http/sse (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port for http/sse (default 8000)")
    parser.add_argument("--config", type=Path, help="TOML config file (environment variables override it)")
    parser.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING or ERROR (default: IMAGEGEN_LOG_LEVEL or INFO)"
    )
    parser.add_argument("--version", action="version", version=f"mcp-imagegen {__version__}")
    return parser.parse_args(argv)


def configure_logging(level: str, secrets: Sequence[str] = ()) -> None:
    """Everything to stderr, with secrets scrubbed, before the SDK's own logging setup (which
    then leaves it alone)."""
    from mcp_imagegen.redaction import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # One line per provider request is noise at INFO; failures reach the user as tool errors.
    for noisy in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from mcp_imagegen.config import load_settings

    try:
        settings = load_settings(args.config)
        if args.log_level:
            settings = settings.model_copy(update={"log_level": args.log_level.upper()})
    except ConfigError as exc:
        sys.stderr.write(f"mcp-imagegen: {exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.secret_values())
    from mcp_imagegen.server.app import build_server

    server = build_server(settings)
    log.info("mcp-imagegen %s on %s; images in %s", __version__, args.transport, settings.store_dir)
    try:
        if args.transport == "stdio":
            server.run("stdio")
        else:
            import anyio

            from mcp_imagegen.server.http import serve_http

            anyio.run(serve_http, server, settings, args.transport, args.host, args.port)
    except KeyboardInterrupt:
        pass
