"""`/golive start <version> [major] [services=a,b] [at=<time>] [role=@user ...]`."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.engine.service import StartRequest
from commands.base import Command, Invocation, Reply, parse_time, parse_user

ROLE_KEYS = {
    "on_call": "on_call",
    "on-call": "on_call",
    "oncall": "on_call",
    "backend": "backend",
    "frontend": "frontend",
    "commander": "commander",
}


def parse_start(inv: Invocation) -> StartRequest:
    """Read the version, flags and overrides of a start command."""
    version: str | None = None
    major = False
    services: tuple[str, ...] = ()
    at = None
    roles: dict[str, str] = {}
    take_freeze = False
    service = inv.service
    for token in inv.args:
        key, sep, value = token.partition("=")
        if not sep:
            if token.lower() == "major":
                major = True
            elif token.lower() in ("take_freeze", "take-freeze"):
                take_freeze = True
            elif version is None:
                version = token
            else:
                raise UsageError(f"one version at a time: `{version}` and `{token}`")
            continue
        key = key.lower()
        if not value:
            raise UsageError(f"`{key}=` needs a value")
        if key == "services":
            services = tuple(s.strip() for s in value.split(",") if s.strip())
            if not services:
                raise UsageError("`services=` needs at least one service name")
        elif key == "at":
            at = parse_time(value, service.config.tz, service.clock.now())
        elif key in ROLE_KEYS:
            roles[ROLE_KEYS[key]] = parse_user(value, inv.directory)
        else:
            raise UsageError(f"unknown option `{key}=`")
    if version is None:
        raise UsageError("which version? e.g. `/golive start v2.4.0`")
    return StartRequest(version, major, services, at, roles, take_freeze)


def run(inv: Invocation) -> Reply:
    """Start (or schedule) a release in this channel."""
    request = parse_start(inv)
    return Reply(inv.service.start(inv.channel, inv.user, request))


COMMAND = Command(
    name="start",
    usage="/golive start <version> [major] [services=a,b] [at=14:00|2026-11-28T14:00] "
    "[backend=@user] [frontend=@user] [on_call=@user] [take_freeze]",
    summary="start a release here (you become its commander); `at=` schedules the go-live",
    event=None,
    run=run,
)
