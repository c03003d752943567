"""`/golive start <version> [major] [services=a,b] [at=<time>] [role=@user ...]`.

Roles: `backend=`, `frontend=`, `on_call=` override the configured owners for this release, and
`commander=` hands the release to someone else from the start. Whoever they name is vetted by the
engine (`ReleaseService.vet`) before the release exists.
"""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.engine.service import StartRequest
from bot.render.fmt import code
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
                raise UsageError(f"one version at a time: {code(version)} and {code(token)}")
            continue
        key = key.lower()
        if not value:
            raise UsageError(f"{code(key + '=')} needs a value")
        if key == "services":
            services = tuple(s.strip() for s in value.split(",") if s.strip())
            if not services:
                raise UsageError("`services=` needs at least one service name")
        elif key == "at":
            at = parse_time(value, service.config.tz, service.clock.now())
        elif key in ROLE_KEYS:
            roles[ROLE_KEYS[key]] = parse_user(value, inv.directory)
        else:
            raise UsageError(f"unknown option {code(key + '=')}")
    if version is None:
        raise UsageError("which version? e.g. `/golive start v2.4.0`")
    return StartRequest(version, major, services, at, roles, take_freeze)


async def ask(inv: Invocation) -> None:
    """Ask the directory about everyone who is to hold a role, before anything is written."""
    await inv.service.vet_start(inv.channel, inv.user, parse_start(inv))


def run(inv: Invocation) -> Reply:
    """Start (or schedule) a release in this channel."""
    return Reply(inv.service.open_release(inv.channel, inv.user, parse_start(inv)))


COMMAND = Command(
    name="start",
    usage="/golive start <version> [major] [services=a,b] [at=14:00|2026-11-28T14:00] "
    "[backend=@user] [frontend=@user] [on_call=@user] [commander=@user] [take_freeze]",
    summary="start a release here; you become its commander unless `commander=` names someone "
    "else; `at=` schedules the go-live; `take_freeze` takes over the freeze a rolled-back "
    "release kept; you and whoever a role names must be people of this workspace (and of the "
    "role's user group, where one is configured)",
    event=None,
    run=run,
    ask=ask,
)
