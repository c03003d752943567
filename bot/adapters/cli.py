"""The `golive` command line: serve, console, demo, check-config, report, history."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.domain.config import Config, Secrets, deprecations, load_config
from bot.domain.errors import ConfigError, GoliveError
from bot.render.card import shortened_line

DEFAULT_CONFIG = "golive.yml"


def _load(path: str) -> Config:
    return load_config(path)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file; print every problem with its field path."""
    try:
        config = _load(args.config_file)
    except ConfigError as exc:
        print(f"{args.config_file}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return 1
    print(
        f"{args.config_file}: ok ({len(config.services)} services, "
        f"release channels {', '.join(config.slack.release_channels)})"
    )
    shortened = config.monitoring.shortened()
    if shortened is not None:
        print(f"  note: {shortened_line(shortened)}")
    missing = Secrets(os.environ).missing(config)
    for name, path in missing:
        print(f"  note: environment variable {name} is not set ({path})")
    for warning in deprecations(config):
        print(f"  warning: {warning}")
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    """Rehearse a release in the terminal against the configured engine."""
    from bot.adapters.console import ConsoleTransport, run_console
    from bot.engine.runtime import Runtime

    config = _load(args.config)
    secrets = Secrets(os.environ)
    _require_secrets(config, secrets)
    user = args.as_user or config.roles.on_call or "U0COMMAND"
    names = {v: k for k, v in config.users.items()}
    files = Path(config.database).resolve().parent / "golive-files"
    runtime = Runtime(config, secrets, ConsoleTransport(print, names, files))
    asyncio.run(run_console(runtime, config, user))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the Slack app: HTTP (POST /slack/events) or Socket Mode, with /healthz and /freeze."""
    from bot.adapters.slack.serve import serve_command

    return serve_command(args, os.environ)


def cmd_demo(args: argparse.Namespace) -> int:
    """A whole release against the local sandbox: interactive, or played with --auto."""
    from bot.sandbox.demo import run_demo

    if not 0.5 <= args.speed <= 20:
        print("golive: --speed must be between 0.5 and 20", file=sys.stderr)
        return 2
    folder = Path(args.dir) if args.dir else None
    return asyncio.run(run_demo(args.auto, folder, speed=args.speed))


def cmd_history(args: argparse.Namespace) -> int:
    """List recent releases from the database."""
    from bot.engine.records import history
    from bot.store import Store

    config = _load(args.config)
    store = Store(config.database)
    print(history(store, config, args.limit))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the release record (Markdown) of one release."""
    from bot.engine.records import record_markdown
    from bot.store import Store

    config = _load(args.config)
    store = Store(config.database)
    rid = store.find_release(args.release)
    if rid is None:
        print(f"no release called {args.release} in {config.database}", file=sys.stderr)
        return 1
    print(record_markdown(store, config, rid))
    return 0


def _require_secrets(config: Config, secrets: Secrets) -> None:
    missing = secrets.missing(config)
    if missing:
        names = ", ".join(f"{name} (for {path})" for name, path in missing)
        raise GoliveError(f"missing secrets in the environment: {names}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="golive", description="Run the production go-live runbook with the people who own it."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check-config", help="validate a golive.yml")
    check.add_argument("config_file", nargs="?", default=DEFAULT_CONFIG)
    check.set_defaults(func=cmd_check_config)

    serve = sub.add_parser("serve", help="serve the Slack app (HTTP mode, or --socket-mode)")
    serve.add_argument("--config", default=DEFAULT_CONFIG)
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument(
        "--socket-mode",
        action="store_true",
        help="connect to Slack over Socket Mode (SLACK_APP_TOKEN) instead of receiving HTTP",
    )
    serve.set_defaults(func=cmd_serve)

    console = sub.add_parser("console", help="rehearse a release in the terminal (no Slack)")
    console.add_argument("--config", default=DEFAULT_CONFIG)
    console.add_argument("--as", dest="as_user", help="the Slack user id to act as")
    console.set_defaults(func=cmd_console)

    demo = sub.add_parser(
        "demo", help="walk a whole release against a local sandbox (no Slack, no setup)"
    )
    demo.add_argument("--auto", action="store_true", help="play the release unattended")
    demo.add_argument("--dir", help="keep the database and files here (default: a temp folder)")
    demo.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="play the same release N times faster (every timer divided by N; default 1)",
    )
    demo.set_defaults(func=cmd_demo)

    history = sub.add_parser("history", help="list recent releases")
    history.add_argument("--config", default=DEFAULT_CONFIG)
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(func=cmd_history)

    report = sub.add_parser("report", help="print the release record of a release")
    report.add_argument("release", help="a version (newest release with it) or a release id")
    report.add_argument("--config", default=DEFAULT_CONFIG)
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `golive` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"golive: {exc.message}", file=sys.stderr)
        return 1
    except GoliveError as exc:
        print(f"golive: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
