"""Shared fixtures: configs, a fake clock, and a console harness over the real engine."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.console import ConsoleSession, ConsoleTransport
from bot.domain.clock import FakeClock
from bot.domain.config import Config, Secrets, validate_config
from bot.engine.actions import Sleep
from bot.engine.runtime import Runtime
from bot.store import OutboxRow, Store

COMMANDER = "U0COMMAND"
ON_CALL = "U0ONCALL1"
BACKEND = "U0BACKEND"
FRONTEND = "U0FRONTEN"
STRANGER = "U0STRANGE"
CHANNEL = "C0RELEASE1"
ANNOUNCE = "C0ENGINEER"
# Tests that run the soak or heightened monitoring below the runbook's floors say so.
SHORTENED = "a test: the timers run in seconds so the suite stays fast"

BASE_CONFIG: dict[str, Any] = {
    "timezone": "UTC",
    "slack": {"release_channels": [CHANNEL], "announce_channels": [ANNOUNCE]},
    "roles": {"on_call": ON_CALL, "backend": BACKEND, "frontend": FRONTEND},
    "users": {
        "alice": COMMANDER,
        "carol": ON_CALL,
        "bob": BACKEND,
        "fran": FRONTEND,
        "sam": STRANGER,
    },
    "services": [
        {"name": "partner-registry", "tier": "backend", "wave": 1, "migrations": True},
        {"name": "billing-api", "tier": "backend", "wave": 2, "migrations": True},
        {"name": "web-portal", "tier": "frontend"},
    ],
    "monitoring": {"soak": {"duration": "15m", "interval": "30s"}},
}


def config_dict(**sections: Any) -> dict[str, Any]:
    """The base test config with some top-level sections replaced."""
    data = copy.deepcopy(BASE_CONFIG)
    data.update(sections)
    return data


def make_config(**sections: Any) -> Config:
    """A validated test config."""
    return validate_config(config_dict(**sections))


class Harness:
    """A console session over a real Runtime: type lines as users, read what golive printed."""

    def __init__(
        self,
        config: Config,
        clock: FakeClock,
        database: str | Path = ":memory:",
        secrets: dict[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`sleep`: how step actions wait between reads of a run (see `fake_time`)."""
        self.config = config
        self.clock = clock
        self.output: list[str] = []
        names = {v: k for k, v in config.users.items()}
        self.runtime = Runtime(
            config,
            Secrets(secrets or {}),
            ConsoleTransport(self.output.append, names),
            clock=clock,
            database=database,
            sleep=sleep,
            gate_pace=0.0,
        )
        self.store = self.runtime.store
        self.session = ConsoleSession(self.runtime, config, COMMANDER, self.output.append)
        self.service = self.runtime.service

    async def say(self, user: str, line: str) -> list[str]:
        """Type a line as `user`; return what was printed because of it."""
        before = len(self.output)
        self.session.user = user
        await self.session.handle(line)
        return self.output[before:]

    async def reply(self, user: str, line: str) -> str:
        """The ephemeral reply to a /golive line."""
        printed = await self.say(user, line)
        replies = [p for p in printed if p.startswith("[only @")]
        assert replies, printed
        return replies[0].split("] ", 1)[1]

    async def settle(self) -> None:
        """Run checks, timers and delivery until quiet."""
        await self.runtime.pump()

    def messages(self) -> list[OutboxRow]:
        """Every message of the newest release."""
        rid = self.store.latest_in_channel(CHANNEL)
        assert rid is not None
        return self.store.messages(rid)

    def approval_message(self, step: str) -> OutboxRow:
        """The newest approval request of a step."""
        rows = [m for m in self.messages() if m.kind == "approval" and m.step_key == step]
        assert rows, f"no approval message for {step}"
        return rows[-1]

    async def react(self, user: str, step: str, reaction: str = "white_check_mark") -> list[str]:
        """React to a step's approval message as `user`."""
        message = self.approval_message(step)
        return await self.say(user, f"+:{reaction}: m{message.id}")

    def release(self) -> Any:
        """The newest release's runbook state."""
        rid = self.store.latest_in_channel(CHANNEL)
        assert rid is not None
        return self.store.load(rid).release

    def step(self, key: str) -> Any:
        """One step of the newest release."""
        return self.release().step(key)


def fake_time(clock: FakeClock) -> Sleep:
    """A sleep that moves `clock` instead of waiting: polling loops run at once, and fakes
    sharing the clock see the time pass."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh in-memory database with the schema applied."""
    s = Store(":memory:")
    yield s


@pytest.fixture
async def harness(clock: FakeClock) -> AsyncIterator[Harness]:
    """The console harness with the base config (no automated checks: every step by hand)."""
    h = Harness(make_config(), clock)
    yield h
    await h.runtime.service.close()


@pytest.fixture
def data_dir() -> Path:
    """Test data files."""
    return Path(__file__).parent / "data"


async def walk(h: Harness, until: str | None = None, soak_minutes: float = 15) -> None:
    """Approve every awaiting step by its owner (by reaction), advancing the soak timer, until
    `until` is done or nothing more can move without something else happening."""
    from bot.domain.model import StepStatus

    for _ in range(80):
        release = h.release()
        if until is not None and release.step(until).status is StepStatus.DONE:
            return
        awaiting = [s for s in release.steps if s.status is StepStatus.AWAITING]
        if not awaiting:
            soak = release.find_step("soak")
            if soak is not None and soak.status is StepStatus.TIMING:
                h.clock.advance(soak_minutes * 60)
                await h.settle()
                continue
            return
        step = awaiting[0]
        printed = await h.react(release.roles.user(step.owner), step.key)
        assert not any(line.startswith("[only @") for line in printed), printed
    raise AssertionError("the release did not move")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: spread over the workers (`-n 4`), the long ones (a real Prometheus, the
    demo) start before the many short ones, so no worker is left with one of them at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
