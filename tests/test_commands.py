"""Slash-command parsing, usage help, permissions, and malformed input that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.adapters.console import ConsoleTransport
from bot.domain.clock import FakeClock
from bot.domain.config import Secrets
from bot.engine.runtime import Runtime
from bot.store import Store
from commands import COMMANDS, MappingDirectory, dispatch
from commands.base import Invocation, parse_time, parse_user
from commands.start import parse_start
from tests.conftest import (
    BACKEND,
    CHANNEL,
    COMMANDER,
    FRONTEND,
    ON_CALL,
    STRANGER,
    Harness,
    make_config,
)

DIRECTORY = MappingDirectory({"alice": COMMANDER, "bob": BACKEND})


def _counts(store: Store) -> dict[str, int]:
    tables = ("releases", "steps", "events", "outbox", "approvals", "notes", "waivers")
    return {t: store.db[t].count for t in tables}


@pytest.mark.parametrize(
    ("token", "user"),
    [
        ("<@U0BACKEND|bob>", BACKEND),
        ("<@U0BACKEND>", BACKEND),
        ("@U0BACKEND", BACKEND),
        ("U0BACKEND", BACKEND),
        ("@bob", BACKEND),
        ("@Bob", BACKEND),
    ],
)
def test_user_forms(token: str, user: str) -> None:
    """Mentions in Slack's escaped and plain forms, raw ids and known names all resolve."""
    assert parse_user(token, DIRECTORY) == user


@pytest.mark.parametrize("token", ["@nobody", "bob", "<@bob>", "@"])
def test_unknown_users_are_refused(token: str) -> None:
    """A name nobody configured is refused with a hint, not guessed."""
    with pytest.raises(Exception, match=r"(don.t know|is not a user)"):
        parse_user(token, DIRECTORY)


def _start(harness: Harness, text: str) -> object:
    inv = Invocation(harness.service, COMMANDER, CHANNEL, text.split(), text, DIRECTORY)
    return parse_start(inv)


async def test_start_parses_everything(harness: Harness) -> None:
    """Version, major, services, at and role overrides in both mention forms."""
    harness.clock.set(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    request = _start(
        harness,
        "v2.4.0 major services=billing-api,web-portal at=14:30 backend=<@U0OTHER1|zoe> "
        "on_call=@bob frontend=@U0FRONTEN",
    )
    assert request.version == "v2.4.0" and request.major  # type: ignore[attr-defined]
    assert request.services == ("billing-api", "web-portal")  # type: ignore[attr-defined]
    assert request.at == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # type: ignore[attr-defined]
    assert request.roles == {  # type: ignore[attr-defined]
        "backend": "U0OTHER1",
        "on_call": BACKEND,
        "frontend": FRONTEND,
    }


async def test_role_overrides_apply_to_the_release(harness: Harness) -> None:
    """Overrides replace the configured owners for this release only."""
    await harness.say(
        COMMANDER, "/golive start v2.4.0 backend=<@U0STRANGE|sam> services=billing-api"
    )
    roles = harness.release().roles
    assert (roles.commander, roles.backend, roles.on_call) == (COMMANDER, STRANGER, ON_CALL)
    assert harness.release().services == ("billing-api",)
    assert [s.key for s in harness.release().steps if s.key.startswith("wave")] == ["wave-2"]
    assert harness.release().find_step("portal") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/golive start", "which version?"),
        ("/golive start latest", "`latest` is not a release version"),
        ("/golive start v2.4", "`v2.4` is not a release version"),
        ("/golive start v2.4.0 v2.5.0", "one version at a time"),
        ("/golive start v2.4.0 services=nope,web-portal", "unknown service: nope (configured:"),
        ("/golive start v2.4.0 services=", "`services=` needs a value"),
        ("/golive start v2.4.0 at=25:00", "`25:00` is not a time of day"),
        ("/golive start v2.4.0 at=tomorrow", "`tomorrow` is not a time"),
        ("/golive start v2.4.0 at=09:00", "09:00 has already passed today"),
        ("/golive start v2.4.0 at=2020-01-01T10:00", "is in the past"),
        ("/golive start v2.4.0 colour=blue", "unknown option `colour=`"),
        ("/golive start v2.4.0 backend=@zoe", "I don't know who `@zoe` is"),
        ("/golive start v٢.٤.٠", "`v٢.٤.٠` is not a release version"),
        ("/golive start ２.4.0", "`２.4.0` is not a release version"),
        ("/golive start v2.4.0-rc.١", "`v2.4.0-rc.١` is not a release version"),
        ("/golive start v2.4.0 at=١٤:٠٠", "`١٤:٠٠` is not a time"),
        ("/golive start v2.4.0 at=99:99", "`99:99` is not a time of day"),
        ("/golive start v2.4.0 at=9999-12-31", "more than 30 days ahead"),
        ("/golive start v2.4.0 at=9999-12-31T23:59-14:00", "is not a time golive can schedule"),
        ("/golive start v2.4.0 at=0001-01-01T00:00+01:00", "is not a time golive can schedule"),
        ("/golive start v2.4.0 at=0001-01-01T00:00", "is in the past"),
        ("/golive start v2.4.0 at=2026-12-28T12:01Z", "more than 30 days ahead"),
        ("/golive start v2.4.0 at=99999999999:00", "is not a time"),
    ],
)
async def test_bad_start_changes_nothing(harness: Harness, text: str, expected: str) -> None:
    """Each malformed start gets a clear reason and the usage line, and writes nothing."""
    before = _counts(harness.store)
    reply = await harness.reply(COMMANDER, text)
    assert expected in reply
    assert "Usage: `/golive start <version>" in reply
    assert _counts(harness.store) == before


async def test_start_outside_a_release_channel(harness: Harness) -> None:
    """Releases start only in a configured release channel."""
    harness.session.channel = "C0RANDOM1"
    reply = await harness.reply(COMMANDER, "/golive start v2.4.0")
    assert reply.startswith("releases start only in a release channel (#C0RELEASE1)")
    assert harness.store.db["releases"].count == 0


async def test_start_without_owners_names_the_missing_role(clock: FakeClock) -> None:
    """A release cannot start without someone in each role."""
    config = make_config(roles={"on_call": ON_CALL})
    h = Harness(config, clock)
    reply = await h.reply(COMMANDER, "/golive start v2.4.0")
    assert reply.startswith("no backend, frontend owner: set roles.backend in golive.yml")
    assert h.store.db["releases"].count == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/golive waive", "which check?"),
        ("/golive waive ci", "a waiver needs a reason"),
        ("/golive retry", "name one step to retry"),
        ("/golive preflight sometimes", "unexpected `sometimes`"),
        ("/golive complete now", "unexpected `now`"),
        ("/golive handover", "name one person"),
        ("/golive abort", "an abort needs a reason"),
        ("/golive note", "say what to record"),
        ("/golive history lots", "at most a number"),
    ],
)
async def test_bad_arguments_get_usage(harness: Harness, text: str, expected: str) -> None:
    """Bad arguments get the reason and that subcommand's usage, and change nothing."""
    await harness.say(COMMANDER, "/golive start v2.4.0")
    before = _counts(harness.store)
    reply = await harness.reply(COMMANDER, text)
    assert expected in reply
    name = text.split()[1]
    assert f"Usage: `{COMMANDS[name].usage}`" in reply
    assert _counts(harness.store) == before


async def test_scheduling_up_to_thirty_days_ahead_is_accepted(harness: Harness) -> None:
    """The far edge of `at=` still schedules: 30 days from now, to the minute."""
    reply = await harness.reply(COMMANDER, "/golive start v2.4.0 at=2026-12-27T12:00Z")
    assert reply.startswith("Release v2.4.0 scheduled for 2026-12-27 12:00 UTC")


@pytest.mark.parametrize("subcommand", ["note", "followup @bob", "abort", "approve backup"])
async def test_text_longer_than_slack_shows_is_refused_whole(
    harness: Harness, subcommand: str
) -> None:
    """Over 3,000 characters a note, follow-up or reason is refused, not cut or over-posted."""
    await harness.say(COMMANDER, "/golive start v2.4.0")
    before = _counts(harness.store)
    reply = await harness.reply(COMMANDER, f"/golive {subcommand} " + "log line\n" * 5000)
    assert "takes at most 3,000 characters and this was" in reply
    assert "nothing was recorded" in reply
    assert _counts(harness.store) == before


async def test_a_note_up_to_the_limit_is_recorded_and_posted_whole(harness: Harness) -> None:
    """A note of 2,990 characters is kept and echoed to the thread in full."""
    await harness.say(COMMANDER, "/golive start v2.4.0")
    text = ("observed " * 400)[:2990].strip()
    assert await harness.reply(COMMANDER, f"/golive note {text}") == "Note recorded."
    assert harness.store.notes(harness.release().id)[0].text == text
    assert harness.messages()[-1].text.endswith(text)


async def test_unknown_subcommand_gets_help(harness: Harness) -> None:
    """An unknown subcommand says so and lists every subcommand."""
    reply = await harness.reply(COMMANDER, "/golive deploy everything")
    assert reply.startswith("I don't know `deploy`.")
    for name in COMMANDS:
        assert f"/golive {name}" in reply


async def test_commands_without_a_release(harness: Harness) -> None:
    """Commands that need a release say how to start one."""
    for text in ("/golive status", "/golive approve", "/golive abort x", "/golive note hi"):
        reply = await harness.reply(COMMANDER, text)
        assert "there is no release in this channel; start one with" in reply, text


async def test_help_for_one_subcommand(harness: Harness) -> None:
    """`help <subcommand>` shows its usage and who may run it."""
    reply = await harness.reply(COMMANDER, "/golive help rollback")
    assert reply.startswith("`/golive rollback <reason>`") and "(on-call only)" in reply


def test_every_subcommand_declares_usage_and_permission() -> None:
    """Usage starts with the subcommand; a command that moves a release names the runbook event
    whose permission (the runbook's one table) applies, and anyone may run the others."""
    moving = {
        name for name, command in COMMANDS.items() if command.event is not None and command.who
    }
    assert moving == {
        "approve",
        "waive",
        "retry",
        "reject",
        "snooze",
        "preflight",
        "handover",
        "rollback",
        "abort",
        "complete",
        "unfreeze",
        "freeze",
    }
    for name, command in COMMANDS.items():
        assert command.usage.startswith(f"/golive {name}")
        assert command.summary


async def test_slack_escaping_is_undone() -> None:
    """Slack's &amp; &lt; &gt; in notes are stored as the characters people typed (render
    escapes them again wherever they are shown)."""
    config = make_config()
    runtime = Runtime(
        config,
        Secrets({}),
        ConsoleTransport(lambda _: None),
        clock=FakeClock(),
        database=":memory:",
    )
    store = runtime.store
    service = runtime.service
    await dispatch(service, COMMANDER, CHANNEL, "start v1.0.0", DIRECTORY)
    await dispatch(service, COMMANDER, CHANNEL, "note R&amp;D says &lt;ok&gt;", DIRECTORY)
    assert store.notes(1)[0].text == "R&D says <ok>"


async def test_internal_errors_never_leak(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception becomes a sentence, not a traceback."""

    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("secret-looking internals")

    monkeypatch.setattr(harness.service, "status", boom)
    reply = await dispatch(harness.service, COMMANDER, CHANNEL, "status", DIRECTORY)
    assert reply.text.startswith("golive hit an internal error while handling `/golive status`")
    assert "secret-looking" not in reply.text


def test_time_parsing_uses_the_configured_zone() -> None:
    """`at=14:00` means 14:00 where the team is, stored as UTC."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert parse_time("14:00", berlin, now) == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
    assert parse_time("2026-11-28T09:30", berlin, now) == datetime(2026, 11, 28, 8, 30, tzinfo=UTC)
    assert parse_time("2026-11-28T09:30Z", berlin, now) == datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


async def test_console_roles_name_only_known_people(harness: Harness) -> None:
    """In the console, a role override or a handover naming someone outside `users:` and the
    default owners is refused and changes nothing."""
    before = _counts(harness.store)
    reply = await harness.reply(COMMANDER, "/golive start v2.4.0 on_call=U0NOBODY1")
    assert reply == "`U0NOBODY1` is not a user of this workspace, so they cannot be on-call"
    assert _counts(harness.store) == before
    await harness.say(COMMANDER, "/golive start v2.4.0 commander=@sam")
    assert harness.release().roles.commander == STRANGER
    reply = await harness.reply(STRANGER, "/golive handover <@U0NOBODY1>")
    assert "is not a user of this workspace" in reply
    assert harness.release().roles.commander == STRANGER
