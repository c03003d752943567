"""The Slack adapter: a Bolt AsyncApp whose listeners parse, call one service method, and reply.

Everything golive says in channels goes through the outbox (see `bot.adapters.slack.transport`); the
listeners here only acknowledge, answer the person who acted (ack/respond), and move the
engine. All listeners are registered in `create_app`, in one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
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

from bot.adapters.slack.inbox import Handled, Handler, Inbox
from bot.adapters.slack.transport import make_client
from bot.adapters.slack.workspace import Workspace, workspace_gate
from bot.domain.config import Config
from bot.domain.errors import GoliveError
from bot.engine.runtime import Runtime
from bot.render.fmt import clip
from bot.render.messages import (
    APPROVE_ACTION,
    CONFIRM_ROLLBACK_ACTION,
    MAX_REASON,
    SNOOZE_ACTION,
    STOP_ACTION,
    STOP_REASON_BLOCK,
    STOP_REASON_INPUT,
    STOP_VIEW,
    render_database_busy,
    render_stop_modal,
    stop_reason_error,
)
from bot.render.refusals import refusal
from bot.store import OutboxRow, Store
from bot.store.writer import COMMAND_WAIT, reason, unwritable
from commands import Reply, changes_state, dispatch
from commands.base import unescape

log = logging.getLogger(__name__)

# What the app handles; manifest.yml declares exactly these (a test holds them equal).
SLASH_COMMAND = "/golive"
EVENTS = ("reaction_added", "app_home_opened")
ACTIONS = (APPROVE_ACTION, CONFIRM_ROLLBACK_ACTION, STOP_ACTION, SNOOZE_ACTION)
VIEWS = (STOP_VIEW,)

INTERNAL_ERROR = (
    "golive hit an internal error (it is logged). Check `/golive status` before trying again."
)
NOT_WAITING = "This step is not waiting for an approval any more; see `/golive status`."
NOT_PROPOSED = "This rollback plan no longer waits for a confirmation; see `/golive status`."
NOT_SNOOZABLE = "This step is not waiting on anyone any more, so there is nothing to snooze."
NO_MODAL = (
    "golive could not open the form to stop this step ({error}); "
    "stop it with `/golive reject {step} <reason>` instead."
)
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
        self.team_id: str | None = None  # the workspace golive is installed in
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
        self.team_id = response.get("team_id")
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


@dataclass(frozen=True)
class Golive:
    """What the listeners work with; attached to every request's Bolt context."""

    config: Config
    runtime: Runtime
    directory: SlackDirectory
    inbox: Inbox
    wall: Callable[[], float] = time.time  # Slack's request timestamps are wall-clock seconds

    @property
    def store(self) -> Store:
        """The runtime's store."""
        return self.runtime.store

    def sent_at(self, request: AsyncBoltRequest) -> datetime | None:
        """When Slack sent a request, on golive's clock (its timestamp is whole seconds, so
        this is at most a second early, never late)."""
        stamp = (request.headers.get("x-slack-request-timestamp") or [""])[0]
        if not stamp.isascii() or not stamp.isdigit():
            return None
        age = max(self.wall() - int(stamp), 0.0)
        return self.runtime.clock.now() - timedelta(seconds=age)


def request_key(request: AsyncBoltRequest) -> str:
    """A request's identity: its signed timestamp and body (a replay repeats both). Socket Mode
    requests carry neither a signature nor a raw body: their parsed body stands in."""
    stamp = (request.headers.get("x-slack-request-timestamp") or [""])[0]
    body = request.raw_body or json.dumps(request.body, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{request.mode}:{stamp}:{body}".encode()).hexdigest()
    return f"sig:{digest}"


GOLIVE = "golive"


def _golive(context: AsyncBoltContext) -> Golive:
    found = context.get(GOLIVE)
    if not isinstance(found, Golive):
        raise RuntimeError("the golive middleware did not run")
    return found


# -- listeners: plain functions, Bolt injects their arguments by name --------------------------


async def golive_command(
    ack: AsyncAck,
    command: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
    logger: logging.Logger,
) -> None:
    """`/golive …`: run the subcommand once and answer in the ack (ephemeral unless public).

    A subcommand that changes something runs on the database's writer, in one transaction with
    the record of its reply: the same request again (a replayed body, a repeated trigger_id) is
    answered with that reply and not run twice. One that only reads is answered on the loop.
    """
    try:
        golive = _golive(context)
        text = str(command.get("text") or "")
        user, channel = str(command["user_id"]), str(command["channel_id"])
        await golive.directory.prepare(text)
        if not changes_state(text):
            reply = await dispatch(golive.runtime.service, user, channel, text, golive.directory)
        else:
            trigger = command.get("trigger_id")
            once = RunOnce(
                golive,
                request_key(request),
                trigger if isinstance(trigger, str) and trigger else None,
                user,
                channel,
            )
            seen = once.answered()
            if seen is not None:
                reply = seen
            else:

                async def execute(core: Callable[[], Reply]) -> Reply:
                    return await golive.store.writes.run(
                        partial(once, core), wait=COMMAND_WAIT, urgent=True
                    )

                try:
                    reply = await dispatch(
                        golive.runtime.service,
                        user,
                        channel,
                        text,
                        golive.directory,
                        sent_at=golive.sent_at(request),
                        execute=execute,
                    )
                except Exception as exc:
                    if not unwritable(exc):
                        raise
                    logger.error("/golive could not be recorded: %s", reason(exc))
                    reply = Reply(render_database_busy(short_reason(exc)))
    except Exception:
        logger.exception("/golive failed before it could answer")
        await ack(text=INTERNAL_ERROR, response_type="ephemeral")
        return
    body = reply.text if len(reply.text) <= MAX_REPLY else clip(reply.text, MAX_REPLY) + "…"
    await ack(text=body, response_type="in_channel" if reply.public else "ephemeral")


@dataclass(frozen=True)
class RunOnce:
    """One slash command, run on the database's writer at most once per request."""

    golive: Golive
    key: str
    trigger_id: str | None
    user: str
    channel: str

    def answered(self) -> Reply | None:
        """The reply this request already got, if it ran before (a replay)."""
        seen = self.golive.store.answered(self.key, self.trigger_id)
        if seen is not None:
            log.info("a repeated /golive request was answered again, not run again")
            return Reply(*seen)
        return None

    def __call__(self, core: Callable[[], Reply]) -> Reply:
        """The stored reply of this request, or run `core` and store its reply, in one
        transaction (a replay that raced past `answered` is caught here)."""
        store = self.golive.store
        with store.transaction():
            seen = self.answered()
            if seen is not None:
                return seen
            reply = core()
            store.record_answer(
                self.key,
                self.trigger_id,
                self.user,
                self.channel,
                reply.text,
                reply.public,
                self.golive.runtime.clock.now(),
            )
        return reply


def short_reason(exc: BaseException) -> str:
    """Why the database refused, in a few words people can act on."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "another process holds its lock"
    if "full" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "it is read-only"
    return "it refuses writes"


async def reaction_added(
    body: dict[str, Any],
    event: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
) -> None:
    """Keep the reaction in the inbox, then let Slack have its answer; the work comes after."""
    golive = _golive(context)
    event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
    retry = ",".join(request.headers.get("x-slack-retry-num") or []) or "none"
    item = event.get("item")
    item = item if isinstance(item, dict) else {}
    payload = {
        "user": event.get("user"),
        "reaction": event.get("reaction"),
        "item": {k: item.get(k) for k in ("type", "channel", "ts")},
    }
    key = f"event:{event_id}" if event_id else request_key(request)
    if not await golive.inbox.accept(key, "reaction", payload):
        log.info("event %s already handled (Slack retry %s); skipped", event_id, retry)


def handle_reaction(runtime: Runtime, event: Mapping[str, Any]) -> Handled:
    """Map a reaction to our message and let the service judge it; what happened, if anything."""
    item = event.get("item") or {}
    user, reaction = event.get("user"), event.get("reaction")
    if item.get("type") != "message" or not isinstance(user, str):
        return None, None
    if not isinstance(reaction, str) or not item.get("channel") or not item.get("ts"):
        return None, None
    row = runtime.store.message_by_ts(str(item["channel"]), str(item["ts"]))
    if row is None:
        return None, None  # not our message
    return runtime.service.react(row, user, _reaction_name(reaction)), None


def _click(body: Mapping[str, Any], action: Mapping[str, Any]) -> dict[str, Any]:
    """What golive keeps of a button click: which button, its value, where and by whom."""
    container = body.get("container") or {}
    return {
        "action": str(action.get("action_id") or APPROVE_ACTION),
        "value": str(action.get("value") or ""),
        "channel": container.get("channel_id") or (body.get("channel") or {}).get("id"),
        "ts": container.get("message_ts") or (body.get("message") or {}).get("ts"),
        "user": (body.get("user") or {}).get("id"),
        "response_url": body.get("response_url"),
    }


async def _keep_click(
    kind: str, body: Mapping[str, Any], action: Mapping[str, Any], golive: Golive, key: str
) -> None:
    if not await golive.inbox.accept(key, kind, _click(body, action)):
        log.info("click %s already handled; skipped", key)


def _click_key(body: Mapping[str, Any], request: AsyncBoltRequest) -> str:
    trigger = body.get("trigger_id")
    return f"action:{trigger}" if isinstance(trigger, str) and trigger else request_key(request)


Listener = Callable[..., Awaitable[None]]


def kept_click(kind: str, what: str) -> Listener:
    """A button's listener: the click is kept in the inbox as `kind`, then acknowledged; the
    inbox's handler for `kind` judges it afterwards."""

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
    ) -> None:
        await _keep_click(kind, body, action, _golive(context), _click_key(body, request))
        await ack()

    listener.__doc__ = what
    return listener


approve_button = kept_click(
    "click", "The Approve button: kept in the inbox, then acknowledged; judged like the reaction."
)
confirm_rollback_button = kept_click(
    "click", "Confirm rollback: kept in the inbox like Approve; on-call's click runs the plan."
)
snooze_button = kept_click("snooze", "The Snooze button on a reminder: kept, then acknowledged.")


def _clicked_row(runtime: Runtime, click: Mapping[str, Any]) -> OutboxRow | None:
    """Our message the click was on, if the button's value names its release and step."""
    release_id, _, step_key = str(click.get("value") or "").partition(":")
    channel, ts = click.get("channel"), click.get("ts")
    row = runtime.store.message_by_ts(str(channel), str(ts)) if channel and ts else None
    if row is None or not release_id.isdigit():
        return None
    return row if row.release_id == int(release_id) and row.step_key == step_key else None


def judged_click(act: Callable[[Runtime, OutboxRow, str], str | None], gone: str) -> Handler:
    """An inbox handler for a button: `act` on the message it was on, as the person who
    clicked; when that does nothing (the step moved on), the clicker is told `gone`."""

    def handle(runtime: Runtime, click: Mapping[str, Any]) -> Handled:
        row, user = _clicked_row(runtime, click), click.get("user")
        outcome = act(runtime, row, user) if row is not None and isinstance(user, str) else None
        return outcome, (gone if outcome is None else None)

    return handle


# Approve the step a button stands for, confirm the rollback, or snooze a step's reminders,
# if it still waits.
_approve = judged_click(
    lambda runtime, row, user: runtime.service.approve_message(row, user, via="button"),
    NOT_WAITING,
)
_confirm = judged_click(
    lambda runtime, row, user: runtime.service.confirm_message(row, user, "button"),
    NOT_PROPOSED,
)
handle_snooze = judged_click(
    lambda runtime, row, user: runtime.service.snooze_message(row, user, via="button"),
    NOT_SNOOZABLE,
)


async def stop_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The Stop button: ask for the reason in a modal (views.open with the click's trigger_id,
    which Slack honours for three seconds, so at once rather than through the outbox). Someone
    who may not stop the step is told so instead, and no modal opens."""
    await ack()
    golive = _golive(context)
    click = _click(body, action)
    release_id, _, step_key = str(click["value"]).partition(":")
    user, trigger = click.get("user"), body.get("trigger_id")
    if not release_id.isdigit() or not isinstance(user, str) or not isinstance(trigger, str):
        return
    service = golive.runtime.service
    try:
        service.may_stop(int(release_id), step_key, user)
    except GoliveError as exc:
        await answer_click(click, refusal(exc))
        return
    release = golive.store.load(int(release_id)).release
    view = render_stop_modal(release, release.step(step_key))
    try:
        await client.views_open(trigger_id=trigger, view=view)
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {exc.response.status_code}")
        log.warning("views.open for the stop of %s failed: %s", step_key, error)
        await answer_click(click, NO_MODAL.format(error=error, step=step_key))


async def stop_submitted(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
) -> None:
    """The stop modal's answer: an empty or overlong reason keeps the modal open with the
    problem under the field; otherwise it is kept in the inbox and the modal closes."""
    values = ((view.get("state") or {}).get("values") or {}).get(STOP_REASON_BLOCK) or {}
    reason = str((values.get(STOP_REASON_INPUT) or {}).get("value") or "").strip()
    if not reason or len(reason) > MAX_REASON:
        await ack(response_action="errors", errors={STOP_REASON_BLOCK: stop_reason_error()})
        return
    release_id, _, step_key = str(view.get("private_metadata") or "").partition(":")
    payload = {
        "release_id": release_id,
        "step": step_key,
        "user": (body.get("user") or {}).get("id"),
        "reason": reason,
    }
    view_id = view.get("id")
    key = f"view:{view_id}" if isinstance(view_id, str) and view_id else request_key(request)
    if not await _golive(context).inbox.accept(key, "stop", payload):
        log.info("stop %s already handled; skipped", key)
    await ack()


def handle_stop(runtime: Runtime, stop: Mapping[str, Any]) -> Handled:
    """Stop the step the modal was opened for (refusals go to the person, ephemeral)."""
    release_id, step_key = str(stop.get("release_id") or ""), str(stop.get("step") or "")
    user, reason = stop.get("user"), str(stop.get("reason") or "")
    if not release_id.isdigit() or not isinstance(user, str):
        return None, None
    if runtime.store.find_release(release_id) is None:
        return None, None
    return runtime.service.stop_step(int(release_id), step_key, user, reason), None


def handle_click(runtime: Runtime, click: Mapping[str, Any]) -> Handled:
    """Approve the step (or confirm the rollback) a button stands for, if it still waits;
    otherwise tell the clicker."""
    confirm = click.get("action") == CONFIRM_ROLLBACK_ACTION
    return (_confirm if confirm else _approve)(runtime, click)


async def app_home_opened(
    body: dict[str, Any],
    event: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
) -> None:
    """Someone opened golive's Home tab: kept in the inbox; their view is published after."""
    user = event.get("user")
    if event.get("tab") != "home" or not isinstance(user, str):
        return  # the Messages tab, or an event without a person
    event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
    key = f"event:{event_id}" if event_id else request_key(request)
    if not await _golive(context).inbox.accept(key, "home", {"user": user}):
        log.info("event %s already handled; skipped", event_id)


def handle_home(runtime: Runtime, opened: Mapping[str, Any]) -> Handled:
    """Queue the person's App Home view."""
    user = opened.get("user")
    if isinstance(user, str) and user:
        runtime.service.home_opened(user)
    return None, None


HANDLERS: Mapping[str, Handler] = {
    "reaction": handle_reaction,
    "click": handle_click,
    "snooze": handle_snooze,
    "stop": handle_stop,
    "home": handle_home,
}


async def answer_click(click: Mapping[str, Any], text: str) -> None:
    """An ephemeral note to the person who clicked, through the click's response_url."""
    url = click.get("response_url")
    if isinstance(url, str) and url:
        await _tell(AsyncRespond(response_url=url), text)


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


def make_inbox(runtime: Runtime, delay: float = 0.0) -> Inbox:
    """The inbox with golive's handlers for reactions and clicks."""
    return Inbox(runtime, HANDLERS, answer_click, delay=delay)


def create_app(
    config: Config,
    runtime: Runtime,
    *,
    token: str,
    signing_secret: str,
    client: AsyncWebClient | None = None,
    directory: SlackDirectory | None = None,
    identity: SlackIdentity | None = None,
    inbox: Inbox | None = None,
    workspace: Workspace | None = None,
) -> AsyncApp:
    """The Bolt app with every golive listener registered, signature verification on, and only
    requests from golive's own workspace let through."""
    if not token:
        raise ValueError("a bot token is required")
    if not signing_secret:
        raise ValueError("a signing secret is required (requests are always verified)")
    client = client or make_client(token)
    identity = identity or SlackIdentity(client, token)
    workspace = workspace or Workspace(identity, config.slack.allowed_team_ids)
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
        # event listeners only write the event to the inbox, so it is kept before Slack hears.
        process_before_response=True,
    )
    golive = Golive(config, runtime, directory, inbox or make_inbox(runtime))

    async def attach_golive(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context[GOLIVE] = golive
        await next()

    # -- every listener, in one place -------------------------------------------------------
    app.use(workspace_gate(workspace))
    app.use(attach_golive)
    app.command(SLASH_COMMAND)(golive_command)
    app.event("reaction_added")(reaction_added)
    app.event("app_home_opened")(app_home_opened)
    app.action(APPROVE_ACTION)(approve_button)
    app.action(CONFIRM_ROLLBACK_ACTION)(confirm_rollback_button)
    app.action(STOP_ACTION)(stop_button)
    app.action(SNOOZE_ACTION)(snooze_button)
    app.view(STOP_VIEW)(stop_submitted)
    app.error(on_error)
    return app
