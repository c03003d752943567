"""The Slack adapter: a Bolt AsyncApp whose listeners parse, call one service method, and reply.

Everything golive says in channels goes through the outbox (see `bot.adapters.slack.transport`); the
listeners here only acknowledge, answer the person who acted (ack/respond), and move the
engine. All listeners are registered in `create_app`, in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.transport import make_client
from bot.domain.config import Config
from bot.engine.runtime import Runtime
from bot.render.messages import APPROVE_ACTION, CONFIRM_ROLLBACK_ACTION
from bot.store import OutboxRow, Store
from commands import dispatch
from commands.base import unescape

log = logging.getLogger(__name__)

# What the app handles; manifest.yml declares exactly these (a test holds them equal).
SLASH_COMMAND = "/golive"
EVENTS = ("reaction_added",)
ACTIONS = (APPROVE_ACTION, CONFIRM_ROLLBACK_ACTION)

INTERNAL_ERROR = (
    "golive hit an internal error (it is logged). Check `/golive status` before trying again."
)
NOT_WAITING = "This step is not waiting for an approval any more; see `/golive status`."
NOT_PROPOSED = "This rollback plan no longer waits for a confirmation; see `/golive status`."
MAX_REPLY = 3900  # Slack truncates slash-command responses around 4,000 characters
_PLAIN_NAME = re.compile(r"(?:^|[\s=])@([A-Za-z0-9][\w.\-]*)")


class SlackDirectory:
    """Resolves a plain `@name` to a user id: the config's `users:` first, then Slack's users.list.

    `resolve` is synchronous (the command parsers call it); `prepare` fills the cache from Slack
    before a command that names someone unknown, within a small time budget.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        users: Mapping[str, str] | None = None,
        *,
        ttl: float = 600.0,
        min_interval: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._configured = {k.lower(): v for k, v in (users or {}).items()}
        self._usernames: dict[str, str] = {}
        self._names: dict[str, str | None] = {}  # display/real names; None when ambiguous
        self.ttl = ttl
        self.min_interval = min_interval
        self._monotonic = monotonic
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def resolve(self, name: str) -> str | None:
        """The user id behind a name (username, display name or real name), if unambiguous."""
        key = name.strip().lstrip("@").lower()
        return self._configured.get(key) or self._usernames.get(key) or self._names.get(key)

    async def refresh(self) -> None:
        """Reload the whole user list (users.list, paginated)."""
        self._tried_at = self._monotonic()
        usernames: dict[str, str] = {}
        names: dict[str, str | None] = {}
        cursor: str | None = None
        while True:
            response = await self.client.users_list(limit=200, cursor=cursor)
            for member in response.get("members") or []:
                self._learn(member, usernames, names)
            meta = response.get("response_metadata") or {}
            cursor = meta.get("next_cursor") or None
            if not cursor:
                break
        self._usernames, self._names = usernames, names
        self._loaded_at = self._monotonic()

    @staticmethod
    def _learn(
        member: Mapping[str, Any], usernames: dict[str, str], names: dict[str, str | None]
    ) -> None:
        user_id = member.get("id")
        if not isinstance(user_id, str) or member.get("deleted") or member.get("is_bot"):
            return
        if isinstance(member.get("name"), str):
            usernames[member["name"].lower()] = user_id
        profile = member.get("profile") or {}
        for value in (
            profile.get("display_name"),
            profile.get("display_name_normalized"),
            profile.get("real_name"),
            member.get("real_name"),
        ):
            if not isinstance(value, str) or not value.strip():
                continue
            key = value.strip().lower()
            if key in names and names[key] != user_id:
                names[key] = None  # two people answer to it: make them use a real mention
            else:
                names[key] = user_id

    def _stale(self) -> bool:
        return self._loaded_at is None or self._monotonic() - self._loaded_at > self.ttl

    def _may_try(self) -> bool:
        return self._tried_at is None or self._monotonic() - self._tried_at >= self.min_interval

    def _start(self) -> asyncio.Task[None]:
        self._tried_at = self._monotonic()
        self._task = asyncio.get_running_loop().create_task(self._refresh_logged())
        return self._task

    def _loading(self) -> asyncio.Task[None] | None:
        return self._task if self._task is not None and not self._task.done() else None

    def warm(self) -> asyncio.Task[None] | None:
        """Start a background refresh when the cache is stale (at start-up, after the TTL)."""
        loading = self._loading()
        if loading is not None or not (self._stale() and self._may_try()):
            return loading
        return self._start()

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("could not load the Slack user list: %s", exc)
        except Exception:
            log.exception("loading the Slack user list failed")

    async def prepare(self, text: str, budget: float = 1.0) -> None:
        """Before a command: look up the plain @names it mentions, within a time budget."""
        task = self.warm()
        wanted = [n for n in _PLAIN_NAME.findall(unescape(text)) if self.resolve(n) is None]
        if not wanted:
            return  # a stale cache refreshes in the background
        if task is None:
            if not self._may_try():
                return  # looked moments ago; do not hammer users.list for a typo
            task = self._start()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=budget)
        except TimeoutError:
            log.info("the Slack user list is still loading; answering without it")


class SlackIdentity(AsyncAuthorize):
    """The bot's token and identity (auth.test, once, off the request path) for Bolt."""

    def __init__(self, client: AsyncWebClient, token: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.client = client
        self.token = token
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None
        self.status = "unverified"

    async def verify(self) -> str:
        """Call auth.test and remember who we are; returns "ok" or the error, never raises."""
        try:
            response = await self.client.auth_test(token=self.token)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            self.status = str(data.get("error") or f"HTTP {exc.response.status_code}")
            log.error("Slack refuses SLACK_BOT_TOKEN (auth.test: %s)", self.status)
            return self.status
        except Exception as exc:  # an outage at start-up must not stop the server
            self.status = f"unreachable: {type(exc).__name__}"
            log.warning("cannot reach Slack for auth.test: %s", exc)
            return self.status
        self.bot_user_id = response.get("user_id")
        self.bot_id = response.get("bot_id")
        self.status = "ok"
        return self.status

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        """Bolt's authorize step: the one bot token, without a Slack call per request."""
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=self.token,
            bot_user_id=self.bot_user_id,
            bot_id=self.bot_id,
            user_id=user_id,
        )


def _reaction_name(reaction: str) -> str:
    """`+1::skin-tone-3` → `+1`: a skin tone does not change what a reaction means."""
    return reaction.split("::", 1)[0].strip(":")


class EventWork:
    """Event work, one item at a time behind the acks, in arrival order.

    Slack needs the HTTP answer within 3 s; the work an event causes (SQLite, queueing
    messages) does not have to happen before it. Listeners only queue; a worker does the rest.
    While events keep arriving (a burst), the worker takes at most `share` of the loop's time so
    acks stay fast; when they stop, it runs flat out. A lone event is handled at once.
    """

    def __init__(
        self,
        *,
        quiet: float = 0.01,
        share: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self.share = share
        self._monotonic = monotonic
        self._last_arrival = float("-inf")
        self._queue: asyncio.Queue[Callable[[], object]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[None]] = set()

    def submit(self, item: Callable[[], object]) -> None:
        """Queue one piece of work (a plain function) to run after the current ack."""
        self._last_arrival = self._monotonic()
        self._queue.put_nowait(item)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def reply_later(self, reply: Coroutine[Any, Any, None]) -> None:
        """Send an answer (respond via response_url) without holding up the ack."""
        task = asyncio.get_running_loop().create_task(reply)
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            started = self._monotonic()
            try:
                item()
            except Exception:
                log.exception("handling a Slack event failed")
            finally:
                self._queue.task_done()
            now = self._monotonic()
            if now - self._last_arrival < self.quiet:
                await asyncio.sleep((now - started) * (1 - self.share) / self.share)
            else:
                await asyncio.sleep(0)

    async def join(self) -> None:
        """Wait until every queued item has run."""
        await self._queue.join()

    async def drain(self, timeout: float = 5.0) -> None:
        """Finish queued work and replies (at shutdown), then stop the worker."""
        if self._replies:
            await asyncio.wait(set(self._replies), timeout=timeout)
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.error("%d Slack events were still queued at shutdown", self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@dataclass(frozen=True)
class Golive:
    """What the listeners work with; attached to every request's Bolt context."""

    config: Config
    runtime: Runtime
    directory: SlackDirectory
    work: EventWork

    @property
    def store(self) -> Store:
        """The runtime's store."""
        return self.runtime.store

    def first_delivery(self, event_id: str | None, retry: str) -> bool:
        """True the first time an Events API event_id arrives (Slack retries carry the same)."""
        if not event_id:
            return True
        if self.store.remember(f"slack:event:{event_id}", self.runtime.clock.now()):
            return True
        log.info("event %s already handled (Slack retry %s); skipped", event_id, retry)
        return False


GOLIVE = "golive"


def _golive(context: AsyncBoltContext) -> Golive:
    found = context.get(GOLIVE)
    if not isinstance(found, Golive):
        raise RuntimeError("the golive middleware did not run")
    return found


# -- listeners: plain functions, Bolt injects their arguments by name --------------------------


async def golive_command(
    ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, logger: logging.Logger
) -> None:
    """`/golive …`: run the subcommand and answer in the ack (ephemeral unless public)."""
    try:
        golive = _golive(context)
        text = str(command.get("text") or "")
        await golive.directory.prepare(text)
        reply = dispatch(
            golive.runtime.service,
            str(command["user_id"]),
            str(command["channel_id"]),
            text,
            golive.directory,
        )
    except Exception:
        logger.exception("/golive failed before it could answer")
        await ack(text=INTERNAL_ERROR, response_type="ephemeral")
        return
    body = reply.text if len(reply.text) <= MAX_REPLY else reply.text[:MAX_REPLY] + "…"
    await ack(text=body, response_type="in_channel" if reply.public else "ephemeral")


async def reaction_added(
    body: dict[str, Any],
    event: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
) -> None:
    """Queue the reaction's work; Slack gets its answer at once."""
    golive = _golive(context)
    event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
    retry = ",".join(request.headers.get("x-slack-retry-num") or []) or "none"

    def work() -> str | None:
        if not golive.first_delivery(event_id, retry):
            return None
        return handle_reaction(golive, event)

    golive.work.submit(work)


def handle_reaction(golive: Golive, event: Mapping[str, Any]) -> str | None:
    """Map a reaction to our message and let the service judge it; what happened, if anything."""
    item = event.get("item") or {}
    user, reaction = event.get("user"), event.get("reaction")
    if item.get("type") != "message" or not isinstance(user, str):
        return None
    if not isinstance(reaction, str) or not item.get("channel") or not item.get("ts"):
        return None
    row = golive.store.message_by_ts(str(item["channel"]), str(item["ts"]))
    if row is None:
        return None  # not our message
    return golive.runtime.service.react(row, user, _reaction_name(reaction))


async def approve_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    """The Approve button: same rules as the reaction; a refusal reaches only the clicker."""
    await _button(ack, body, action, respond, context, confirm=False)


async def confirm_rollback_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    """Confirm rollback: on-call runs the proposed plan; a refusal reaches only the clicker."""
    await _button(ack, body, action, respond, context, confirm=True)


async def _button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
    *,
    confirm: bool,
) -> None:
    """A click on one of our buttons, judged by the service; the clicker hears when it did
    nothing."""
    await ack()
    golive = _golive(context)
    row, user = _clicked(golive, body, action)
    service = golive.runtime.service
    outcome = None
    if row is not None and user is not None:
        judge = service.confirm_message if confirm else service.approve_message
        outcome = judge(row, user, "button")
    if outcome is None:
        golive.work.reply_later(_tell(respond, NOT_PROPOSED if confirm else NOT_WAITING))


def _clicked(
    golive: Golive, body: Mapping[str, Any], action: Mapping[str, Any]
) -> tuple[OutboxRow | None, str | None]:
    """The message of ours a button was clicked on (when its value names that message's
    release and step), and who clicked."""
    release_id, _, step_key = str(action.get("value") or "").partition(":")
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    user = (body.get("user") or {}).get("id")
    row = golive.store.message_by_ts(str(channel), str(ts)) if channel and ts else None
    matches = (
        row is not None
        and release_id.isdigit()
        and row.release_id == int(release_id)
        and row.step_key == step_key
    )
    return (row if matches else None), (user if isinstance(user, str) else None)


async def on_error(
    error: Exception, body: dict[str, Any], response: BoltResponse | None
) -> BoltResponse | None:
    """Log every listener error; a slash command not yet answered gets a plain apology."""
    log.error("Slack listener failed: %s", error, exc_info=error)
    if response is not None and body.get("command"):
        payload = {"response_type": "ephemeral", "text": INTERNAL_ERROR}
        return BoltResponse(
            status=200,
            body=json.dumps(payload),
            headers={"content-type": "application/json;charset=utf-8"},
        )
    return None


async def _tell(respond: AsyncRespond, text: str) -> None:
    """An ephemeral note to the person who clicked; a failure here is only logged."""
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:
        log.warning("could not answer a button click: %s", exc)


class _TokenSkippedFilter(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN (which it reads itself) is unused: by design here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _quiet_token_warning() -> None:
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _TokenSkippedFilter) for f in bolt_logger.filters):
        bolt_logger.addFilter(_TokenSkippedFilter())


def create_app(
    config: Config,
    runtime: Runtime,
    *,
    token: str,
    signing_secret: str,
    client: AsyncWebClient | None = None,
    directory: SlackDirectory | None = None,
    identity: SlackIdentity | None = None,
    work: EventWork | None = None,
) -> AsyncApp:
    """The Bolt app with every golive listener registered, signature verification on."""
    if not token:
        raise ValueError("a bot token is required")
    if not signing_secret:
        raise ValueError("a signing secret is required (requests are always verified)")
    client = client or make_client(token)
    identity = identity or SlackIdentity(client, token)
    directory = directory or SlackDirectory(client, config.users)
    # Bolt's own client carries no token: `identity` (Bolt's authorize step) supplies it.
    bolt_client = AsyncWebClient(
        base_url=client.base_url,
        timeout=client.timeout,
        session=client.session,
        retry_handlers=[],
    )
    _quiet_token_warning()
    app = AsyncApp(
        name="golive",
        client=bolt_client,
        signing_secret=signing_secret,
        authorize=identity,
        request_verification_enabled=True,
        # Listeners finish before the answer goes back: /golive's reply is the ack itself, and
        # event listeners only queue their work (EventWork), so nothing slow sits in between.
        process_before_response=True,
    )
    golive = Golive(config, runtime, directory, work or EventWork())

    async def attach_golive(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context[GOLIVE] = golive
        await next()

    # -- every listener, in one place -------------------------------------------------------
    app.use(attach_golive)
    app.command(SLASH_COMMAND)(golive_command)
    app.event("reaction_added")(reaction_added)
    app.action(APPROVE_ACTION)(approve_button)
    app.action(CONFIRM_ROLLBACK_ACTION)(confirm_rollback_button)
    app.error(on_error)
    return app
