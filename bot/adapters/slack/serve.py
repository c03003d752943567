"""`golive serve`: the Slack app on aiohttp (HTTP mode or Socket Mode) with /healthz and /freeze.

Everything that needs the event loop (the HTTP session, the Runtime and its APScheduler) is
built inside the loop: the aiohttp application is created by a coroutine and the Runtime starts
from its startup hook, so scheduler and delivery run on the loop that serves requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.adapters.slack.app import EventWork, SlackDirectory, SlackIdentity, create_app
from bot.adapters.slack.transport import TIMEOUT, SlackTransport, make_client
from bot.adapters.webhook import PATH as WEBHOOK_PATH
from bot.adapters.webhook import GitHubWebhook
from bot.domain.clock import Clock
from bot.domain.config import Config, Secrets, load_config
from bot.engine.freeze import PACE as GATE_PACE
from bot.engine.runtime import Runtime
from bot.store import Store

log = logging.getLogger(__name__)

PACE = 1.0  # seconds between two posts to one channel (Slack: about one message per second)
EVENTS_PATH = "/slack/events"

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
BOLT: web.AppKey[AsyncApp] = web.AppKey("bolt", AsyncApp)
IDENTITY: web.AppKey[SlackIdentity] = web.AppKey("identity", SlackIdentity)
WORK: web.AppKey[EventWork] = web.AppKey("work", EventWork)

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


async def _healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    health = runtime.health()
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
    version = row.get("version")
    if row.get("status") == "rolled_back":
        reason = f"Merges frozen: release {version} was rolled back"
        if row.get("reason"):
            reason += f" ({row['reason']})"
        reason += "; the commander lifts the freeze"
    else:
        reason = f"Merges frozen for release {version} until it completes"
    reason += f" (commander {row.get('commander')}, channel {row.get('channel')})"
    return {"frozen": True, "release": version, "reason": reason, "since": row.get("frozen_at")}


async def _freeze(request: web.Request) -> web.Response:
    try:
        state = freeze_state(request.app[RUNTIME].store)
    except Exception as exc:  # a gate should see "unknown", not a stack trace
        log.exception("/freeze failed")
        return web.json_response({"error": f"{type(exc).__name__}"}, status=503)
    return web.json_response(state)


def events_handler(bolt: AsyncApp) -> Any:
    """The aiohttp handler that hands `POST /slack/events` to Bolt (which verifies signatures)."""

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
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
) -> web.Application:
    """The aiohttp application serving golive; call inside the running loop."""
    env = SlackEnv.read(environ)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
    client = make_client(env.bot_token, env.api_url, session)
    secrets_ = Secrets(environ)
    runtime = Runtime(
        config,
        secrets_,
        SlackTransport(client),
        clock=clock,
        database=database,
        pace=pace,
        gate_pace=gate_pace,
    )
    identity = SlackIdentity(client, env.bot_token)
    directory = SlackDirectory(client, config.users)
    work = EventWork()
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
        work=work,
    )

    app = web.Application()
    app[RUNTIME] = runtime
    app[BOLT] = bolt
    app[IDENTITY] = identity
    app[WORK] = work
    if not socket_mode:
        app.router.add_post(EVENTS_PATH, events_handler(bolt))
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
            await work.drain()
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
    """Run `golive serve` until interrupted; 2 when a required variable is missing."""
    config = load_config(args.config)
    missing = missing_environment(environ, config, args.socket_mode)
    if missing:
        for name, what in missing:
            print(f"golive serve: environment variable {name} is not set ({what})", file=sys.stderr)
        return 2
    mode = "Socket Mode" if args.socket_mode else f"HTTP, POST {EVENTS_PATH}"
    print(
        f"golive: serving on http://{args.host}:{args.port} ({mode}; GET /healthz, GET /freeze, "
        f"POST {WEBHOOK_PATH})",
        file=sys.stderr,
    )
    try:
        web.run_app(
            create_server(config, environ, socket_mode=args.socket_mode),
            host=args.host,
            port=args.port,
            print=None,
            access_log=None,
        )
    except OSError as exc:  # the port is taken, or the address is not ours
        print(f"golive serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
