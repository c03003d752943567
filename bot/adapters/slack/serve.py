"""`golive serve`: the Slack app on aiohttp (HTTP mode or Socket Mode) with /healthz and /freeze.

Everything that needs the event loop (the HTTP session, the Runtime and its APScheduler) is
built inside the loop: the aiohttp application is created by a coroutine and the Runtime starts
from its startup hook, so scheduler and delivery run on the loop that serves requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.adapters.slack.app import SlackDirectory, SlackIdentity, create_app, make_inbox
from bot.adapters.slack.inbox import Inbox
from bot.adapters.slack.transport import TIMEOUT, SlackTransport, make_client
from bot.adapters.slack.workspace import SlackPeople, Workspace
from bot.adapters.webhook import PATH as WEBHOOK_PATH
from bot.adapters.webhook import GitHubWebhook
from bot.domain.clock import Clock, SystemClock, utc_iso
from bot.domain.config import Config, Secrets, load_config
from bot.domain.model import ReleaseStatus
from bot.engine.freeze import PACE as GATE_PACE
from bot.engine.runtime import Runtime
from bot.store import Store
from bot.store.writer import reason

log = logging.getLogger(__name__)

PACE = 1.0  # seconds between two posts to one channel (Slack: about one message per second)
EVENTS_PATH = "/slack/events"

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
BOLT: web.AppKey[AsyncApp] = web.AppKey("bolt", AsyncApp)
IDENTITY: web.AppKey[SlackIdentity] = web.AppKey("identity", SlackIdentity)
INBOX: web.AppKey[Inbox] = web.AppKey("inbox", Inbox)

SIGNING_SECRET_LENGTH = 32  # Slack's signing secrets are 32 hexadecimal characters
MAX_AGE = 5 * 60  # Slack: refuse requests whose timestamp is more than five minutes off
# Test-only: seconds the inbox holds each event before processing it (crash tests).
INBOX_DELAY_ENV = "GOLIVE_TEST_INBOX_DELAY"

ENV_HELP = {
    "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from OAuth & Permissions",
    "SLACK_SIGNING_SECRET": "the signing secret from Basic Information (HTTP mode)",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write (Socket Mode)",
}


@dataclass(frozen=True)
class SlackEnv:
    """The Slack credentials and endpoint, read once from the environment at start-up."""

    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str | None

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> SlackEnv:
        """Take the SLACK_* variables from an environment mapping."""
        return cls(
            bot_token=environ.get("SLACK_BOT_TOKEN", ""),
            signing_secret=environ.get("SLACK_SIGNING_SECRET") or None,
            app_token=environ.get("SLACK_APP_TOKEN") or None,
            api_url=environ.get("SLACK_API_URL") or None,
        )


def missing_environment(
    environ: Mapping[str, str], config: Config, socket_mode: bool
) -> list[tuple[str, str]]:
    """Every (variable, what it is for) that `serve` needs and the environment lacks."""
    needed = ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN" if socket_mode else "SLACK_SIGNING_SECRET"]
    missing = [(name, ENV_HELP[name]) for name in needed if not environ.get(name)]
    missing.extend(Secrets(environ).missing(config))
    return missing


def signing_secret_problem(value: str | None) -> str | None:
    """Why a SLACK_SIGNING_SECRET cannot be Slack's (never showing it), or None."""
    if not value:
        return None  # reported as missing
    if not value.strip():
        return "is only whitespace"
    if value != value.strip():
        return "has spaces or a line break around it"
    if len(value) < SIGNING_SECRET_LENGTH:
        return (
            f"is {len(value)} characters long; Slack's signing secrets have "
            f"{SIGNING_SECRET_LENGTH} (Basic Information → App Credentials)"
        )
    return None


def database_problem(path: str) -> str | None:
    """Open, migrate and write the database once; why that failed, or None."""
    try:
        store = Store(path)
    except Exception as exc:  # corrupt, not a database, a directory that does not exist...
        return reason(exc)
    try:
        store.heartbeat(SystemClock().now())
    except Exception as exc:  # read-only file or directory, full disk
        return reason(exc)
    finally:
        with contextlib.suppress(Exception):
            store.close()
    return None


async def _healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    health = await runtime.health()
    identity = request.app.get(IDENTITY)
    if identity is not None:
        health["slack_auth"] = identity.status
    ok = health.get("database") == "ok" and health.get("scheduler") == "running"
    return web.json_response(health, status=200 if ok else 503)


def freeze_state(store: Store) -> dict[str, Any]:
    """`{"frozen", "release", "reason", "since"}` for CI merge gates."""
    row = store.frozen_release()
    if row is None:
        return {"frozen": False, "release": None, "reason": None, "since": None}
    version = row.version
    if row.status is ReleaseStatus.ROLLED_BACK:
        reason = f"Merges frozen: release {version} was rolled back"
        if row.reason:
            reason += f" ({row.reason})"
        reason += "; the commander lifts the freeze"
    else:
        reason = f"Merges frozen for release {version} until it completes"
    reason += f" (commander {row.commander}, channel {row.channel})"
    since = utc_iso(row.frozen_at) if row.frozen_at else None
    return {"frozen": True, "release": version, "reason": reason, "since": since}


async def _freeze(request: web.Request) -> web.Response:
    try:
        state = freeze_state(request.app[RUNTIME].store)
    except Exception as exc:  # a gate should see "unknown", not a stack trace
        log.exception("/freeze failed")
        return web.json_response({"error": f"{type(exc).__name__}"}, status=503)
    return web.json_response(state)


def signed(
    raw: bytes, headers: Mapping[str, str], secret: str, now: Callable[[], float] = time.time
) -> bool:
    """Slack's v0 signature over the raw bytes, checked before anything is parsed."""
    stamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    if abs(now() - int(stamp)) > MAX_AGE:
        return False
    base = b"v0:" + stamp.encode("ascii") + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _ssl_check(raw: bytes, content_type: str) -> bool:
    """Slack's unsigned `ssl_check=1` probe of a slash command's URL (answered empty; it runs
    nothing, whatever else the form carries)."""
    if not content_type.startswith("application/x-www-form-urlencoded") or len(raw) > 8192:
        return False
    return parse_qs(raw.decode("utf-8", "replace")).get("ssl_check") == ["1"]


def events_handler(bolt: AsyncApp, secret: str) -> Any:
    """The aiohttp handler for `POST /slack/events`: the signature first (401 for anything
    unsigned or forged, nothing parsed), then Bolt (which verifies it again)."""

    async def slack_events(request: web.Request) -> web.Response:
        raw = await request.read()
        if not signed(raw, request.headers, secret):
            if _ssl_check(raw, request.content_type):
                return web.Response(status=200, text="")
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError as exc:  # signed, yet not text Slack would send
            log.warning("a signed request could not be read: %s", type(exc).__name__)
            return web.json_response({"error": "unreadable request"}, status=400)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    return slack_events


async def create_server(
    config: Config,
    environ: Mapping[str, str],
    *,
    socket_mode: bool = False,
    clock: Clock | None = None,
    database: str | None = None,
    pace: float = PACE,
    gate_pace: float = GATE_PACE,
    inbox_delay: float = 0.0,
) -> web.Application:
    """The aiohttp application serving golive; call inside the running loop.

    Database writes run on their own thread (`Runtime(threaded=True)`), so a lock held by
    another process never holds up an acknowledgment."""
    env = SlackEnv.read(environ)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
    client = make_client(env.bot_token, env.api_url, session)
    identity = SlackIdentity(client, env.bot_token)
    workspace = Workspace(identity, config.slack.allowed_team_ids)
    secrets_ = Secrets(environ)
    runtime = Runtime(
        config,
        secrets_,
        SlackTransport(client),
        clock=clock,
        database=database,
        pace=pace,
        gate_pace=gate_pace,
        threaded=True,
        people=SlackPeople(client, workspace),
        app_home=True,
    )
    directory = SlackDirectory(client, config.users)
    inbox = make_inbox(runtime, inbox_delay)
    # Socket Mode requests arrive over the authenticated socket and carry no signature; the
    # HTTP endpoint is not mounted then, and Bolt still gets a secret nobody knows.
    signing_secret = env.signing_secret if not socket_mode else secrets.token_hex(32)
    if not signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is required in HTTP mode")
    bolt = create_app(
        config,
        runtime,
        token=env.bot_token,
        signing_secret=signing_secret,
        client=client,
        directory=directory,
        identity=identity,
        inbox=inbox,
        workspace=workspace,
    )

    app = web.Application()
    app[RUNTIME] = runtime
    app[BOLT] = bolt
    app[IDENTITY] = identity
    app[INBOX] = inbox
    if not socket_mode:
        app.router.add_post(EVENTS_PATH, events_handler(bolt, signing_secret))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/freeze", _freeze)
    ci = config.preconditions.ci
    webhook_secret = secrets_.get(ci.webhook_secret_env) if ci is not None else None
    app.router.add_post(WEBHOOK_PATH, GitHubWebhook(runtime, webhook_secret).receive)

    socket: AsyncSocketModeHandler | None = None
    if socket_mode:
        if not env.app_token:
            raise ValueError("SLACK_APP_TOKEN is required in Socket Mode")
        socket = AsyncSocketModeHandler(
            bolt, env.app_token, web_client=make_client(None, env.api_url, session)
        )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await runtime.start()
        loop = asyncio.get_running_loop()
        inbox_task = loop.create_task(inbox.run())  # first: what was accepted before a crash
        background: list[asyncio.Task[Any]] = [loop.create_task(identity.verify())]
        warm = directory.warm()
        if warm is not None:
            background.append(warm)
        if socket is not None:
            background.append(loop.create_task(_connect(socket)))
        try:
            yield
        finally:
            if socket is not None:
                with contextlib.suppress(Exception):
                    await socket.close_async()  # type: ignore[no-untyped-call]
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await inbox.close(inbox_task)
            await runtime.stop()
            await session.close()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _connect(socket: AsyncSocketModeHandler) -> None:
    """Open the Socket Mode connection, retrying with backoff (Slack may be down at start-up)."""
    delay = 1.0
    while True:
        try:
            await socket.connect_async()  # type: ignore[no-untyped-call]
        except Exception as exc:
            log.error("Socket Mode connection failed (%s); retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        else:
            log.info("Socket Mode connected")
            return


def serve_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run `golive serve` until interrupted; 2 when a required variable is missing or wrong, or
    the database cannot be opened and written."""
    config = load_config(args.config)
    problems = [
        f"environment variable {name} is not set ({what})"
        for name, what in missing_environment(environ, config, args.socket_mode)
    ]
    secret = environ.get("SLACK_SIGNING_SECRET")
    wrong = None if args.socket_mode else signing_secret_problem(secret)
    if wrong:
        problems.append(f"environment variable SLACK_SIGNING_SECRET {wrong}")
    delay = 0.0
    if environ.get(INBOX_DELAY_ENV):
        try:
            delay = float(environ[INBOX_DELAY_ENV])
        except ValueError:
            problems.append(f"environment variable {INBOX_DELAY_ENV} is not a number of seconds")
    if problems:
        for problem in problems:
            print(f"golive serve: {problem}", file=sys.stderr)
        return 2
    broken = database_problem(config.database)
    if broken:
        print(
            f"golive serve: cannot use the database {config.database} ({broken}); check the "
            "file and its directory (a corrupt file: restore it from a backup)",
            file=sys.stderr,
        )
        return 2
    mode = "Socket Mode" if args.socket_mode else f"HTTP, POST {EVENTS_PATH}"
    print(
        f"golive: serving on http://{args.host}:{args.port} ({mode}; GET /healthz, GET /freeze, "
        f"POST {WEBHOOK_PATH})",
        file=sys.stderr,
    )
    try:
        web.run_app(
            create_server(config, environ, socket_mode=args.socket_mode, inbox_delay=delay),
            host=args.host,
            port=args.port,
            print=None,
            access_log=None,
        )
    except OSError as exc:  # the port is taken, or the address is not ours
        print(f"golive serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
