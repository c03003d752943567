"""Which automated checks exist, whether each is configured, and how to build them for a step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from bot.clock import Clock
from bot.config import Config, Secrets
from bot.runbook import Release, Step
from checks.base import Check
from checks.health import check_health


@dataclass(frozen=True)
class CheckContext:
    """Everything a check factory may use."""

    config: Config
    secrets: Secrets
    client: httpx.AsyncClient
    clock: Clock
    release: Release
    step: Step


Factory = Callable[[CheckContext], Sequence[Check]]
Available = Callable[[Config, tuple[str, ...]], bool]


def _health_available(config: Config, services: tuple[str, ...]) -> bool:
    found = [config.service(name) for name in services]
    return bool(found) and all(s is not None and s.health_url for s in found)


def _health_checks(ctx: CheckContext) -> list[Check]:
    checks = []
    for name in ctx.step.current.services:
        service = ctx.config.service(name)
        if service is None or service.health_url is None:
            continue
        url = service.health_url

        def run(n: str = name, u: str = url):  # type: ignore[no-untyped-def]
            return check_health(ctx.client, n, u)

        checks.append(Check(f"health:{name}", run, timeout=30.0))
    return checks


class CheckBook:
    """The registry of check implementations: name → (is it configured?, build it)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Available, Factory]] = {}

    def register(self, name: str, available: Available, factory: Factory) -> None:
        """Add a check implementation under a name the runbook uses."""
        self._entries[name] = (available, factory)

    def available(self, config: Config, name: str, services: tuple[str, ...]) -> bool:
        """True when the check is implemented and its config section is present."""
        entry = self._entries.get(name)
        return entry is not None and entry[0](config, services)

    def build(self, name: str, ctx: CheckContext) -> list[Check]:
        """The runnable checks for a step's check stage."""
        entry = self._entries.get(name)
        if entry is None:
            return []
        return list(entry[1](ctx))

    def names(self) -> list[str]:
        """Registered check names."""
        return sorted(self._entries)


def default_checkbook() -> CheckBook:
    """Every check golive implements."""
    book = CheckBook()
    book.register("health", _health_available, _health_checks)
    return book
