"""FakeSlack: the Slack Web API methods golive calls, recorded, with rate limits and outages."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import FakeServer, json_response

DEFAULT_TOKEN = "xoxb-0000000000-golive-sandbox"
TEAM_ID = "T0SANDBOX"
BOT_USER_ID = "U0GOLIVEBOT"
BOT_ID = "B0GOLIVEBOT"
_JSON_FIELDS = ("blocks", "attachments", "files", "metadata", "channels", "view")
DEFAULT_USERS = {
    "U0COMMAND": "commander",
    "U0ONCALL1": "oncall",
    "U0BACKEND": "backend",
    "U0FRONTEN": "frontend",
}
DEFAULT_CHANNELS = {"C0RELEASE1": "release", "C0ENGINEER": "engineering"}
# The bot scope each read method needs (Slack answers missing_scope without it).
SCOPES = {
    "users.info": "users:read",
    "users.list": "users:read",
    "usergroups.users.list": "usergroups:read",
    "conversations.open": "im:write",
}
# Slack honours a trigger_id for three seconds, once (views.open).
TRIGGER_LIFETIME = timedelta(seconds=3)
_TRIGGER = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
# Block Kit limits of a view (Slack answers invalid_arguments past them).
MAX_VIEW_BLOCKS = 100
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255


@dataclass(frozen=True)
class SlackCall:
    """One Web API call as received: method, merged params, headers and how it was answered."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    outcome: str
    at: datetime


@dataclass
class SlackMessage:
    """A message the bot posted; `text` is current, `history` holds every earlier text."""

    channel: str
    ts: str
    text: str
    blocks: Any = None
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    ephemeral_to: str | None = None
    history: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The message object Slack returns."""
        data: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "bot_id": BOT_ID,
            "text": self.text,
            "ts": self.ts,
            "team": TEAM_ID,
        }
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        return data


@dataclass
class SlackFile:
    """A file going through the files_upload_v2 flow."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class _Failure:
    kind: str  # "ratelimited" | "http" | "drop"
    remaining: int | None
    until: datetime | None
    status: int = 500
    retry_after: int = 1
    methods: frozenset[str] | None = None


def _merge_params(
    query: Iterable[tuple[str, str]], content_type: str, body: bytes
) -> dict[str, Any]:
    params: dict[str, Any] = dict(query)
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" and body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            params.update(data)
    elif media_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif media_type.startswith("multipart/"):
        params.update(_multipart_fields(content_type, body))
    for key in _JSON_FIELDS:
        if isinstance(params.get(key), str) and params[key][:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


def _multipart_fields(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            is_file = part.get_filename() is not None
            fields[name] = payload if is_file else payload.decode("utf-8", "replace")
    return fields


class FakeSlack(FakeServer):
    """Slack's Web API under `/api/<method>` plus the upload URLs of files_upload_v2."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        users: dict[str, str] | None = None,
        channels: dict[str, str] | None = None,
        clock: Now | None = None,
    ) -> None:
        """`users`/`channels` map ids to names; other channels exist unless marked missing."""
        super().__init__(clock=clock)
        self.token = token
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.user_flags: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.disabled_usergroups: set[str] = set()
        self.missing_scopes: set[str] = set()
        self.channels = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.missing_channels: set[str] = set()
        self.calls: list[SlackCall] = []
        self.messages: list[SlackMessage] = []
        self.files: dict[str, SlackFile] = {}
        self.triggers: dict[str, tuple[datetime, str]] = {}  # trigger id → (issued, user)
        self.used_triggers: set[str] = set()
        self.views: dict[str, dict[str, Any]] = {}  # modal view id → the view as opened
        self.homes: dict[str, dict[str, Any]] = {}  # user id → their published Home tab
        self.home_tab_enabled = True
        self.dm_channels: dict[str, str] = {}  # user id → their direct conversation with the bot
        self._view_ids = itertools.count(1)
        self._trigger_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._last_us = 0
        self._file_ids = itertools.count(1)

    # -- controls ----------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        team_id: str = TEAM_ID,
        deleted: bool = False,
        is_bot: bool = False,
        is_app_user: bool = False,
    ) -> None:
        """Make a user known to users.info / users.list: a person of this team by default; a
        bot, an app user, a deactivated account or someone of another team (as a Slack Connect
        channel shows them) when asked."""
        self.users[user_id] = name
        self.user_flags[user_id] = {
            "team_id": team_id,
            "deleted": deleted,
            "is_bot": is_bot,
            "is_app_user": is_app_user,
        }

    def add_usergroup(
        self, group_id: str, members: Iterable[str], *, disabled: bool = False
    ) -> None:
        """A user group (`S…`) with these members, for usergroups.users.list."""
        self.usergroups[group_id] = list(members)
        if disabled:
            self.disabled_usergroups.add(group_id)
        else:
            self.disabled_usergroups.discard(group_id)

    def revoke_scope(self, scope: str) -> None:
        """From now on the token lacks `scope` (as when the app was installed before it was
        added to the manifest): methods needing it answer missing_scope."""
        self.missing_scopes.add(scope)

    def add_channel(self, channel_id: str, name: str) -> None:
        """Make a channel known by name to conversations.info."""
        self.channels[channel_id] = name
        self.missing_channels.discard(channel_id)

    def remove_channel(self, channel_id: str) -> None:
        """From now on the channel answers channel_not_found."""
        self.channels.pop(channel_id, None)
        self.missing_channels.add(channel_id)

    def rate_limit(
        self,
        calls: int | None = None,
        *,
        until: datetime | None = None,
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer 429 + `Retry-After` for the next `calls` calls (default 1) or until a time."""
        self._add_failure("ratelimited", calls, until, retry_after=retry_after, methods=methods)

    def fail(
        self,
        status: int = 500,
        calls: int | None = None,
        *,
        until: datetime | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer HTTP `status` for the next `calls` calls (default 1) or until a time."""
        self._add_failure("http", calls, until, status=status, methods=methods)

    def drop_connections(
        self,
        calls: int | None = None,
        *,
        until: datetime | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Close the connection without answering for the next `calls` calls or until a time."""
        self._add_failure("drop", calls, until, methods=methods)

    def trigger(self, user: str) -> str:
        """A trigger_id as Slack sends with an interaction by `user` (a click, a command):
        views.open takes it once, within three seconds of this moment."""
        stamp = int(self.clock().timestamp())
        trigger = f"{next(self._trigger_ids)}.{stamp}.{secrets.token_hex(6)}"
        self.triggers[trigger] = (self.clock(), user)
        return trigger

    def submission(self, view_id: str, values: dict[str, dict[str, str]]) -> dict[str, Any]:
        """The `view_submission` payload Slack sends when the person who opened a modal submits
        it with these input values (block id → action id → text)."""
        view = self.views[view_id]
        state = {
            block: {
                action: {"type": "plain_text_input", "value": value}
                for action, value in actions.items()
            }
            for block, actions in values.items()
        }
        user = str(view["_user"])
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "golive-sandbox"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0GOLIVE",
            "token": "legacy-verification-token",
            "trigger_id": self.trigger(user),
            "view": {
                **{k: v for k, v in view.items() if not k.startswith("_")},
                "state": {"values": state},
            },
            "response_urls": [],
            "is_enterprise_install": False,
        }

    def dms(self, user: str) -> list[SlackMessage]:
        """Messages the bot posted in its direct conversation with `user`."""
        channel = self.dm_channels.get(user)
        return self.posts(channel) if channel else []

    def clear_failures(self) -> None:
        """Answer normally again."""
        self._failures.clear()

    def _add_failure(
        self,
        kind: str,
        calls: int | None,
        until: datetime | None,
        *,
        status: int = 500,
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        remaining = calls if calls is not None or until is not None else 1
        wanted = frozenset(methods) if methods is not None else None
        self._failures.append(_Failure(kind, remaining, until, status, retry_after, wanted))

    def _take_failure(self, method: str) -> _Failure | None:
        now = self.clock()
        self._failures = [
            f
            for f in self._failures
            if (f.remaining is None or f.remaining > 0) and (f.until is None or f.until > now)
        ]
        for failure in self._failures:
            if failure.methods is None or method in failure.methods:
                if failure.remaining is not None:
                    failure.remaining -= 1
                return failure
        return None

    # -- reading what happened ----------------------------------------------------------------
    def calls_to(self, method: str) -> list[SlackCall]:
        """Every call of `method`, failed ones included, oldest first."""
        return [c for c in self.calls if c.method == method]

    def posts(self, channel: str) -> list[SlackMessage]:
        """Messages posted to `channel` (top level and thread replies), in posting order."""
        return [m for m in self.messages if m.channel == channel and m.ephemeral_to is None]

    def top_level(self, channel: str) -> list[SlackMessage]:
        """Messages posted to `channel` outside threads."""
        return [m for m in self.posts(channel) if m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[SlackMessage]:
        """Replies in the thread under `thread_ts`."""
        return [m for m in self.posts(channel) if m.thread_ts == thread_ts]

    def texts(self, channel: str) -> list[str]:
        """The current text of each message in `channel`, in posting order."""
        return [m.text for m in self.posts(channel)]

    def message(self, channel: str, ts: str) -> SlackMessage | None:
        """The message with timestamp `ts` in `channel`."""
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def text(self, channel: str, ts: str) -> str:
        """The current text of one message (after every chat.update)."""
        found = self.message(channel, ts)
        if found is None:
            raise KeyError(f"no message {ts} in {channel}")
        return found.text

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[SlackMessage]:
        """Ephemeral messages, optionally for one channel and/or user."""
        return [
            m
            for m in self.messages
            if m.ephemeral_to is not None
            and (channel is None or m.channel == channel)
            and (user is None or m.ephemeral_to == user)
        ]

    def uploads(self, channel: str | None = None) -> list[SlackFile]:
        """Completed file uploads, optionally shared to one channel."""
        return [
            f
            for f in self.files.values()
            if f.completed and (channel is None or f.channel == channel)
        ]

    # -- HTTP --------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        """`/api/{method}` (GET or POST) and the upload URL of files_upload_v2."""
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)

    def _next_ts(self) -> str:
        micros = max(int(self.clock().timestamp() * 1_000_000), self._last_us + 100)
        self._last_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _authorized(self, request: web.Request, params: dict[str, Any]) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else str(params.get("token") or "")
        if not token:
            return "not_authed"
        return None if token == self.token else "invalid_auth"

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        content_type = request.headers.get("Content-Type", "")
        params = _merge_params(request.query.items(), content_type, await request.read())
        headers = {k.lower(): v for k, v in request.headers.items()}
        failure = self._take_failure(method)
        if failure is not None:
            return self._fail(request, method, params, headers, failure)
        error = self._authorized(request, params)
        scope = SCOPES.get(method)
        if error is None and scope in self.missing_scopes:
            body: dict[str, Any] = {"ok": False, "error": "missing_scope", "needed": scope}
        elif error is None:
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            body = handler(request, params) if handler else {"ok": False, "error": "unknown_method"}
        else:
            body = {"ok": False, "error": error}
        outcome = "ok" if body.get("ok") else str(body.get("error"))
        self.calls.append(SlackCall(method, params, headers, outcome, self.clock()))
        return json_response(body)

    def _fail(
        self,
        request: web.Request,
        method: str,
        params: dict[str, Any],
        headers: dict[str, str],
        failure: _Failure,
    ) -> web.StreamResponse:
        outcome = {"ratelimited": "ratelimited", "drop": "dropped"}.get(
            failure.kind, f"http_{failure.status}"
        )
        self.calls.append(SlackCall(method, params, headers, outcome, self.clock()))
        if failure.kind == "ratelimited":
            return json_response(
                {"ok": False, "error": "ratelimited"},
                429,
                headers={"Retry-After": str(failure.retry_after)},
            )
        if failure.kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        return web.Response(status=failure.status, text=f"{failure.status} upstream error\n")

    # -- methods -------------------------------------------------------------------------------
    def _channel_error(self, channel: Any) -> dict[str, Any] | None:
        if not isinstance(channel, str) or not channel or channel in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        return None

    def _m_auth_test(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://golive-sandbox.slack.com/",
            "team": "golive sandbox",
            "user": "golive",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        error = self._channel_error(channel)
        if error:
            return error
        text = params.get("text")
        if not text and not params.get("blocks") and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        thread_ts = params.get("thread_ts") or None
        if thread_ts and self.message(str(channel), str(thread_ts)) is None:
            return {"ok": False, "error": "thread_not_found"}
        message = SlackMessage(
            str(channel), self._next_ts(), str(text or ""), params.get("blocks"), thread_ts
        )
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_json()}

    def _m_chat_update(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        error = self._channel_error(channel)
        if error:
            return error
        message = self.message(str(channel), str(ts))
        if message is None or message.ephemeral_to is not None:
            return {"ok": False, "error": "message_not_found"}
        message.history.append(message.text)
        if "text" in params:
            message.text = str(params["text"])
        if "blocks" in params:
            message.blocks = params["blocks"]
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_json(),
        }

    def _m_chat_postEphemeral(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        channel, user = params.get("channel"), params.get("user")
        error = self._channel_error(channel)
        if error:
            return error
        if user not in self.users:
            return {"ok": False, "error": "user_not_in_channel"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message = SlackMessage(
            str(channel),
            self._next_ts(),
            str(params.get("text") or ""),
            params.get("blocks"),
            params.get("thread_ts") or None,
            ephemeral_to=str(user),
        )
        self.messages.append(message)
        return {"ok": True, "message_ts": message.ts}

    def _m_chat_delete(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        message = self.message(str(params.get("channel")), str(params.get("ts")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        self.messages.remove(message)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _m_chat_getPermalink(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel")), str(params.get("message_ts"))
        error = self._channel_error(channel)
        if error:
            return error
        found = self.message(channel, ts)
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        link = f"https://golive-sandbox.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if found.thread_ts:  # a reply: the link opens its thread
            link += f"?thread_ts={found.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _m_conversations_open(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users and not params.get("channel"):
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) != 1:
            return {"ok": False, "error": "not_enough_users" if not users else "too_many_users"}
        (user,) = users
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        if self.user_flags.get(user, {}).get("deleted"):
            return {"ok": False, "error": "user_disabled"}
        already = user in self.dm_channels
        channel = self.dm_channels.setdefault(user, f"D0{user[1:9]}")
        body: dict[str, Any] = {"ok": True, "channel": {"id": channel}}
        if already:
            body["already_open"] = True
        return body

    def _view_problem(self, view: Any, kind: str) -> str | None:
        """Why Slack would refuse this view (invalid_arguments), or None."""
        if not isinstance(view, dict) or view.get("type") != kind:
            return f"view.type must be {kind}"
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
            return f"view.blocks must be a list of at most {MAX_VIEW_BLOCKS} blocks"
        if len(str(view.get("private_metadata") or "")) > MAX_PRIVATE_METADATA:
            return "view.private_metadata is too long"
        if len(str(view.get("callback_id") or "")) > MAX_CALLBACK_ID:
            return "view.callback_id is too long"
        if kind != "modal":
            return None
        for field_name in ("title", "submit", "close"):
            text = (view.get(field_name) or {}).get("text")
            if field_name == "title" and not text:
                return "view.title is required"
            if text is not None and len(str(text)) > MAX_VIEW_TITLE:
                return f"view.{field_name}.text must be at most {MAX_VIEW_TITLE} characters"
        if any(b.get("type") == "input" for b in blocks) and not view.get("submit"):
            return "view.submit is required with an input block"
        return None

    def _stored_view(self, view: dict[str, Any], kind: str) -> dict[str, Any]:
        return {
            **view,
            "id": f"V0SBX{next(self._view_ids):05d}",
            "team_id": TEAM_ID,
            "type": kind,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock().timestamp())}.{next(self._view_ids):08x}",
            "app_id": "A0GOLIVE",
            "bot_id": BOT_ID,
        }

    def _m_views_open(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        trigger = str(params.get("trigger_id") or "")
        if not _TRIGGER.match(trigger) or trigger not in self.triggers:
            return {"ok": False, "error": "invalid_trigger_id"}
        if trigger in self.used_triggers:
            return {"ok": False, "error": "exchanged_trigger_id"}
        issued, user = self.triggers[trigger]
        if self.clock() - issued > TRIGGER_LIFETIME:
            return {"ok": False, "error": "expired_trigger_id"}
        problem = self._view_problem(params.get("view"), "modal")
        if problem:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [problem]},
            }
        self.used_triggers.add(trigger)
        view = self._stored_view(params["view"], "modal")
        self.views[view["id"]] = {**view, "_user": user}
        return {"ok": True, "view": view}

    def _m_views_publish(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        user = params.get("user_id")
        if not isinstance(user, str) or user not in self.users:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": ["invalid `user_id`"]},
            }
        if not self.home_tab_enabled:
            return {"ok": False, "error": "not_enabled"}
        problem = self._view_problem(params.get("view"), "home")
        if problem:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [problem]},
            }
        view = self._stored_view(params["view"], "home")
        self.homes[user] = view
        return {"ok": True, "view": view}

    def _m_reactions_add(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        message = self.message(str(params.get("channel")), str(params.get("timestamp")))
        name = params.get("name")
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not name:
            return {"ok": False, "error": "invalid_name"}
        users = message.reactions.setdefault(str(name), [])
        if BOT_USER_ID in users:
            return {"ok": False, "error": "already_reacted"}
        users.append(BOT_USER_ID)
        return {"ok": True}

    def _user_json(self, user_id: str) -> dict[str, Any]:
        name = self.users[user_id]
        flags = self.user_flags.get(user_id, {})
        data: dict[str, Any] = {
            "id": user_id,
            "team_id": flags.get("team_id", TEAM_ID),
            "name": name,
            "real_name": name.title(),
            "tz": "Europe/Berlin",
            "is_bot": bool(flags.get("is_bot")),
            "is_app_user": bool(flags.get("is_app_user")),
            "deleted": bool(flags.get("deleted")),
            "profile": {"display_name": name, "real_name": name.title()},
        }
        if data["is_bot"]:
            data["profile"]["bot_id"] = f"B{user_id[1:]}"
        return data

    def _m_users_info(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        user = params.get("user")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user_json(str(user))}

    def _m_usergroups_users_list(
        self, request: web.Request, params: dict[str, Any]
    ) -> dict[str, Any]:
        group = params.get("usergroup")
        if not group:
            return {"ok": False, "error": "invalid_arguments"}
        include_disabled = str(params.get("include_disabled", "")).lower() in ("1", "true")
        if group not in self.usergroups or (
            group in self.disabled_usergroups and not include_disabled
        ):
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[str(group)])}

    def _m_users_list(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        ids = sorted(self.users)
        try:
            limit = max(int(params.get("limit") or 200), 1)
            start = int(params.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        page = ids[start : start + limit]
        cursor = str(start + limit) if start + limit < len(ids) else ""
        return {
            "ok": True,
            "members": [self._user_json(u) for u in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def _m_conversations_info(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        error = self._channel_error(channel)
        if error:
            return error
        name = self.channels.get(str(channel), str(channel).lower())
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": name,
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
            },
        }

    def _m_files_getUploadURLExternal(
        self, request: web.Request, params: dict[str, Any]
    ) -> dict[str, Any]:
        filename = params.get("filename")
        try:
            length = int(params.get("length") or "")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not filename:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F0SBX{next(self._file_ids):06d}"
        self.files[file_id] = SlackFile(file_id, str(filename), length)
        upload_url = f"{request.url.origin()}/upload/v1/{file_id}"
        return {"ok": True, "upload_url": upload_url, "file_id": file_id}

    def _m_files_completeUploadExternal(
        self, request: web.Request, params: dict[str, Any]
    ) -> dict[str, Any]:
        items = params.get("files")
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        channel = params.get("channel_id") or params.get("channels") or None
        if isinstance(channel, list):
            channel = channel[0] if channel else None
        if channel is not None and self._channel_error(channel):
            return {"ok": False, "error": "channel_not_found"}
        done: list[SlackFile] = []
        for item in items:
            found = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if found is None or found.content is None:
                return {"ok": False, "error": "file_not_found"}
            found.title = item.get("title") or found.filename
            done.append(found)
        for found in done:
            found.completed = True
            found.channel = channel
            found.thread_ts = params.get("thread_ts") or None
            found.initial_comment = params.get("initial_comment") or None
        return {
            "ok": True,
            "files": [
                {"id": f.id, "title": f.title, "name": f.filename, "size": f.length} for f in done
            ],
        }

    async def _upload(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return web.Response(status=404, text="not found")
        body = await request.read()
        if request.content_type.startswith("multipart/"):
            parts = _multipart_fields(request.headers["Content-Type"], body)
            body = next((v for v in parts.values() if isinstance(v, bytes)), b"")
        found.content = body
        return web.Response(text=f"OK - {len(body)}")
