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
from typing import TYPE_CHECKING, Any

from mcp_imagegen import __version__
from mcp_imagegen.errors import ConfigError

if TYPE_CHECKING:
    from mcp_imagegen.config import Settings
    from mcp_imagegen.server.app import ImagegenServer

log = logging.getLogger("mcp_imagegen")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mcp-imagegen",
        description="MCP server for image generation and editing across providers.",
        epilog="other commands: `mcp-imagegen doctor [--check]` (what this installation can do), "
        "`mcp-imagegen models fetch|list` (the local provider's model files), "
        "`mcp-imagegen models check` (the providers' live model lists against the model data), "
        "`mcp-imagegen usage [--since DAY] [--principal NAME] [--json]` (provider calls and their cost)",
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
        "--insecure-no-auth",
        action="store_true",
        help="serve http/sse on a non-loopback address without authentication (only behind a proxy that "
        "authenticates)",
    )
    parser.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING or ERROR (default: IMAGEGEN_LOG_LEVEL or INFO)"
    )
    parser.add_argument(
        "--conformance-fixtures",
        action="store_true",
        help="also serve the MCP conformance suite's fixture tools (for conformance testing only)",
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
    # At DEBUG, sse_starlette logs every chunk it sends: whole results, prompts and images included.
    logging.getLogger("sse_starlette").setLevel(max(logging.INFO, logging.getLevelName(level)))


def doctor(argv: Sequence[str]) -> None:
    """`mcp-imagegen doctor [--check] [--config FILE]`: print what this installation can do."""
    parser = argparse.ArgumentParser(prog="mcp-imagegen doctor", description=doctor.__doc__)
    parser.add_argument("--check", action="store_true", help="make one cheap request per configured provider")
    parser.add_argument("--config", type=Path, help="TOML config file (environment variables override it)")
    args = parser.parse_args(argv)
    import anyio

    from mcp_imagegen import doctor as report
    from mcp_imagegen.config import load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"mcp-imagegen: {exc}\n")
        raise SystemExit(2) from None
    lines, ok = anyio.run(report.run, settings, args.check)
    sys.stdout.write("\n".join(lines) + "\n")
    raise SystemExit(0 if ok else 1)


TERMINAL_HELLO = """\
mcp-imagegen is an MCP server: it is now waiting for an MCP host (Claude, Cursor, VS Code...) to
talk to it on stdio, and typing here does nothing useful. To try it:
  npx @modelcontextprotocol/inspector mcp-imagegen   a web page that lists and calls its tools
  mcp-imagegen doctor                                what is configured here, and what is missing
To use it, add `mcp-imagegen` as a stdio server in your host's MCP settings (see the README).
Press Ctrl+C to stop.
"""
"""Said on stderr when a person starts the server at a terminal (stdin is a TTY): the protocol
then still runs on stdio as usual, and stdout stays clean."""


def usage(argv: Sequence[str]) -> None:
    """`mcp-imagegen usage [--since DAY] [--until DAY] [--principal NAME] [--json] [--config FILE]`:
    provider calls and their estimated cost from the usage ledger in the store, everyone's unless
    a principal is named."""
    parser = argparse.ArgumentParser(prog="mcp-imagegen usage", description=usage.__doc__)
    parser.add_argument("--since", help="first day, YYYY-MM-DD (UTC); default: 30 days before --until")
    parser.add_argument("--until", help="last day, YYYY-MM-DD (UTC); default: today")
    parser.add_argument("--principal", help="one principal's usage (and today's budget); default: everyone's")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--config", type=Path, help="TOML config file (environment variables override it)")
    args = parser.parse_args(argv)
    import datetime

    import anyio

    from mcp_imagegen.config import load_settings
    from mcp_imagegen.errors import ImagegenError
    from mcp_imagegen.store.selection import opened
    from mcp_imagegen.usage.report import UsageReport, as_text, period, usage_report

    async def read(settings: Settings, since: str, until: str) -> UsageReport:
        async with opened(settings) as backing:
            limit = settings.budget_for(args.principal) if args.principal else None
            return await usage_report(backing.ledger, args.principal, since, until, limit)

    try:
        settings = load_settings(args.config)
        since, until = period(args.since, args.until, datetime.datetime.now(datetime.timezone.utc).date())
        report = anyio.run(read, settings, since, until)
    except ImagegenError as exc:
        sys.stderr.write(f"mcp-imagegen usage: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write((report.model_dump_json(indent=2) if args.json else as_text(report)) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["doctor"]:
        doctor(arguments[1:])
        return
    if arguments[:1] == ["usage"]:
        usage(arguments[1:])
        return
    if arguments[:2] == ["models", "check"]:
        from mcp_imagegen import models_check

        models_check.main(arguments[2:])
        return
    if arguments[:1] == ["models"]:
        from mcp_imagegen.local import commands

        commands.main(arguments[1:])
        return
    args = parse_args(arguments)
    from mcp_imagegen.config import load_settings
    from mcp_imagegen.memory import share_one_arena

    share_one_arena()

    try:
        settings = load_settings(args.config)
        if args.log_level:
            settings = settings.model_copy(update={"log_level": args.log_level.upper()})
    except ConfigError as exc:
        sys.stderr.write(f"mcp-imagegen: {exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.secret_values())
    if args.transport == "stdio":
        from mcp_imagegen.server.app import build_server

        server = build_server(
            settings, conformance_fixtures=args.conformance_fixtures, config_file=args.config
        )
        if sys.stdin.isatty():
            sys.stderr.write(TERMINAL_HELLO)
            sys.stderr.flush()
        run_stdio(server, settings)
        return
    try:
        serve_remote(settings, args)
    except ConfigError as exc:
        sys.stderr.write(f"mcp-imagegen: {exc}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


STOP_GRACE_S = 3.0
"""After Ctrl+C, how long the server has to cancel its jobs and close its store before the
process leaves anyway: a thread reading the terminal cannot be interrupted, and would otherwise
keep it alive until Enter or Ctrl+D."""


def run_stdio(server: ImagegenServer, settings: Settings) -> None:
    """Serve on stdio until the host closes the pipe, or until the first Ctrl+C, which stops the
    server (its jobs cancelled, its store closed) and the process, without a traceback."""
    import asyncio
    import os
    import signal
    import threading

    import anyio

    running: dict[str, Any] = {}

    async def serve() -> None:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        await server.run_stdio_async()

    def interrupt(signum: int, frame: object) -> None:
        if running.get("stopping"):
            return
        running["stopping"] = True
        sys.stderr.write("\nmcp-imagegen: stopping (Ctrl+C)\n")
        sys.stderr.flush()
        loop, task = running.get("loop"), running.get("task")
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        threading.Thread(target=leave, daemon=True).start()

    def leave() -> None:
        """Once the server has closed its state (or the grace is over), end the process; at once
        where it had not opened any yet."""
        if server.current is not None:
            server.closed.wait(STOP_GRACE_S)
        logging.shutdown()
        os._exit(0)

    previous = signal.signal(signal.SIGINT, interrupt)
    log.info("mcp-imagegen %s on stdio; images in %s", __version__, settings.store_dir)
    try:
        anyio.run(serve)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    if running.get("stopping"):
        leave()  # the terminal's reader thread would hold the interpreter's exit


def serve_remote(settings: Settings, args: argparse.Namespace) -> None:
    """Serve over HTTP or SSE; refuse an unauthenticated non-loopback bind unless told otherwise."""
    import anyio

    from mcp_imagegen.config import REMOTE_RATE_LIMIT_PER_MINUTE
    from mcp_imagegen.server.app import build_server
    from mcp_imagegen.server.http import is_loopback, public_url, remote_auth, serve_http

    if settings.rate_limit_per_minute is None:
        settings = settings.model_copy(update={"rate_limit_per_minute": REMOTE_RATE_LIMIT_PER_MINUTE})
    resource = public_url(settings, args.transport, args.host, args.port)
    auth = remote_auth(settings, resource, args.host)
    if auth is None and not is_loopback(args.host) and not args.insecure_no_auth:
        raise ConfigError(
            f"refusing to serve on {args.host} without authentication: set IMAGEGEN_AUTH_TOKENS (or "
            "IMAGEGEN_AUTH_TOKENS_FILE, or IMAGEGEN_AUTH_ISSUER for OAuth access tokens), or pass "
            "--insecure-no-auth if a proxy in front of this server authenticates every request"
        )
    if auth is None and not is_loopback(args.host) and not settings.allowed_hosts:
        # Without auth, the Host check is all that stops a web page from reaching this server by
        # DNS rebinding: it must stay on, so the names clients use must be known.
        raise ConfigError(
            f"refusing to serve on {args.host} without authentication and without Host checks: set "
            "IMAGEGEN_ALLOWED_HOSTS to the names clients use to reach this server (host:* for any port)"
        )
    server = build_server(
        settings,
        token_verifier=auth.verifier if auth else None,
        auth=auth.settings if auth else None,
        conformance_fixtures=args.conformance_fixtures,
        config_file=args.config,
    )
    mode = "OAuth access tokens" if settings.auth_issuer else ("bearer tokens" if auth else "no auth")
    log.info(
        "mcp-imagegen %s on %s at %s (%s); images in %s",
        __version__,
        args.transport,
        resource,
        mode,
        settings.store_dir,
    )
    anyio.run(serve_http, server, settings, args.transport, args.host, args.port)
