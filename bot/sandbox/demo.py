"""`golive demo`: a whole release in about two minutes, on this machine, with nothing to set up.

The sandbox serves GitHub, PagerDuty, an image registry, the product API with live traffic and a
Prometheus-compatible endpoint on loopback; golive runs against it with short timers in the
console. Interactively you are the release commander and can act as every owner; with `--auto`
the release plays itself — including a 5xx spike during the soak that pages on-call and then
recovers — and the command exits 0 only if every phase did what it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from bot.adapters.console import ConsoleSession, ConsoleTransport, Write, read_stdin
from bot.adapters.webhook import PATH as WEBHOOK_PATH
from bot.adapters.webhook import GitHubWebhook
from bot.domain.config import Config, Secrets, validate_config
from bot.domain.model import ReleaseStatus, StepStatus
from bot.engine.runtime import Runtime
from bot.render.release_notes import MARK_START
from bot.sandbox import LoopbackServer, Sandbox
from bot.sandbox.github import DEFAULT_WEBHOOK_SECRET
from bot.sandbox.sandbox import REPOSITORY
from checks.freeze import CONTEXT

VERSION = "v2.4.0"
CHANNEL = "C0RELEASE1"
ANNOUNCE = "C0ENGINEER"
PEOPLE = {"alice": "U0ALICE", "carol": "U0CAROL", "bob": "U0BOB", "fran": "U0FRAN"}
WEBHOOK_SECRET_ENV = "GITHUB_WEBHOOK_SECRET"

PREFLIGHT = """\
import sys, time
checks = ["database migrations are reversible", "feature flags are defaulted", "config renders"]
if "--include-frontend" in sys.argv:
    checks.append("web portal bundle builds")
for check in checks:
    time.sleep(0.2)
    print("ok  ", check)
print("preflight passed")
"""

GUIDE = """\
golive demo — a rehearsal release against a sandbox on this machine (nothing leaves it).

You are @alice, the release commander, in #{channel}; announcements go to #{announce}.
The other owners: @carol (on-call), @bob (backend), @fran (frontend). Act as them with /as bob.

Try:
  /golive start {version}            start the release (preconditions and baseline run at once)
  /golive status                     where it stands and what waits on whom
  +:white_check_mark: m12            approve the step that message m12 asks for (as its owner)
  /spike on   /spike off             inject or stop a 5xx spike in the sandbox's service
  /slow on    /slow off              push the service's p95 latency above the SLO
  /fault rbac_hole                   break the product API (/fault lists the switches)
  /deploys fail   /deploys ok        make the next deploys fail (GitHub run, Argo CD sync) or not
  /quit                              leave (files and the database stay in {folder})

Approving a wave or the portal deploys it: golive runs the (fake) GitHub workflow or Argo CD
sync and follows it to the end. Timers are short here: the soak lasts {soak} and heightened
monitoring {heightened}.
"""

# The demo's timers at speed 1, in seconds; `--speed N` divides every one of them by N and
# multiplies the sandbox's traffic by N, so the same story (the same ticks, alerts and counts
# per window) plays N times faster.
TIMERS = {
    "window": 10.0,
    "realert": 20.0,
    "soak": 45.0,
    "soak_interval": 3.0,
    "heightened": 30.0,
    "heightened_interval": 3.0,
    "spike_after": 4.0,
}
# Reminders of a step nobody answers (after, escalate_after, every), in seconds at speed 1:
# short when the player stays silent on purpose to show them, calmer for a person typing.
REMINDERS = {"auto": (4.0, 8.0, 4.0), "typed": (60.0, 120.0, 60.0)}


# The demo plays a whole release in about two minutes, so it runs the soak and heightened
# monitoring far below the runbook's minimums, and says so wherever golive reports them.
SHORTENED = "a demo against the sandbox: the whole release plays in about two minutes"
FOLLOW_UP = "tune the billing-api connection pool before the next release"


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "s"



def demo_config(
    sandbox: Sandbox, folder: Path, speed: float = 1.0, auto: bool = False
) -> dict[str, Any]:
    """The embedded default: every check pointed at the sandbox, timers measured in seconds
    (divided by `speed`; reminders come sooner when the release plays itself)."""
    timer = {name: _seconds(seconds / speed) for name, seconds in TIMERS.items()}
    after, escalate_after, every = (
        _seconds(seconds / speed) for seconds in REMINDERS["auto" if auto else "typed"]
    )
    repo = folder / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "release_preflight.py").write_text(PREFLIGHT)
    overrides = sandbox.config_overrides()
    overrides["preconditions"]["ci"].update(
        wait="20s", poll_interval="1s", webhook_secret_env=WEBHOOK_SECRET_ENV
    )
    # The notes are the sandbox GitHub's release of the version: golive checks it is published
    # and writes the issues and follow-up actions into it.
    overrides["preconditions"]["release_notes"] = {"github_release": True}
    return {
        "database": str(folder / "golive.db"),
        "timezone": "UTC",
        "slack": {"release_channels": [CHANNEL], "announce_channels": [ANNOUNCE]},
        "roles": {"on_call": PEOPLE["carol"], "backend": PEOPLE["bob"], "frontend": PEOPLE["fran"]},
        "users": dict(PEOPLE),
        "services": overrides["services"],
        "preconditions": overrides["preconditions"],
        "preflight": {
            "workdir": str(repo),
            "quick": [sys.executable, "release_preflight.py", "--quick"],
            "full": [sys.executable, "release_preflight.py", "--include-frontend"],
            "timeout": "30s",
        },
        "monitoring": {
            **overrides["monitoring"],
            "window": timer["window"],
            "baseline_window": "10m",
            "min_requests": 100,
            "realert": timer["realert"],
            "soak": {"duration": timer["soak"], "interval": timer["soak_interval"]},
            "heightened": {
                "duration": timer["heightened"],
                "interval": timer["heightened_interval"],
            },
            "shortened_reason": SHORTENED,
        },
        "verification": overrides["verification"],
        "reminders": {"after": after, "escalate_after": escalate_after, "every": every},
        "actions": sandbox.action_overrides(poll=_seconds(1.0 / speed)),
    }


class DemoSession(ConsoleSession):
    """The console plus switches that break the sandbox on purpose."""

    def __init__(self, runtime: Runtime, config: Config, write: Write, sandbox: Sandbox) -> None:
        super().__init__(runtime, config, PEOPLE["alice"], write)
        self.sandbox = sandbox

    async def handle(self, line: str) -> bool:
        """Sandbox switches first; everything else as in the console."""
        words = line.split()
        switches = {
            "/spike": self._spike,
            "/slow": self._slow,
            "/fault": self._fault,
            "/deploys": self._deploys,
        }
        switch = switches.get(words[0] if words else "")
        if switch is None:
            return await super().handle(line)
        switch(words[1:])
        return True

    def _spike(self, args: list[str]) -> None:
        on = args[:1] != ["off"]
        self.sandbox.product.set_traffic(error_ratio=0.08 if on else 0.005)
        self.write(f"(sandbox: 5xx ratio now {'8%' if on else '0.5%'})")

    def _slow(self, args: list[str]) -> None:
        on = args[:1] != ["off"]
        self.sandbox.product.set_traffic(p95=0.9 if on else 0.12)
        self.write(f"(sandbox: p95 latency now {'900' if on else '120'} ms)")

    def _deploys(self, args: list[str]) -> None:
        fail = args[:1] == ["fail"]
        self.sandbox.github.actions.fail_runs(fail, job="deploy")
        self.sandbox.argocd.fail_syncs("degraded" if fail else "healthy")
        self.write(f"(sandbox: deploys from now on {'fail' if fail else 'succeed'})")

    def _fault(self, args: list[str]) -> None:
        faults = self.sandbox.product.faults
        if not args or args[0] not in faults:
            self.write("(sandbox faults: " + ", ".join(sorted(faults)) + "; /fault NAME [off])")
            return
        on = args[1:2] != ["off"]
        self.sandbox.product.set_fault_switch(args[0], on)
        self.write(f"(sandbox: {args[0]} {'on' if on else 'off'})")


class Player:
    """Plays the release for `--auto`: types what each owner would, waits for the bot."""

    def __init__(
        self, session: DemoSession, runtime: Runtime, write: Write, speed: float = 1.0
    ) -> None:
        self.session = session
        self.speed = speed
        self.runtime = runtime
        self.write = write
        self.changed = asyncio.Event()
        runtime.service.on_change(self.changed.set)
        self.started = time.monotonic()
        self.problems: list[str] = []
        self.hotfix_sha: str | None = None
        self.gated_at_once = False

    def note(self, text: str) -> None:
        """A line of the transcript that says what the player does next."""
        elapsed = time.monotonic() - self.started
        self.write(f"\n▶ [{elapsed:5.1f}s] {text}")

    async def type(self, user: str, line: str) -> None:
        """Type a console line as one of the people."""
        self.session.user = PEOPLE[user]
        self.write(f"{user}> {line}")
        await self.session.handle(line)

    def release(self) -> Any:
        """The demo release's state."""
        store = self.runtime.store
        rid = store.latest_in_channel(CHANNEL)
        assert rid is not None
        return store.load(rid).release

    async def until(self, what: str, ready: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Wait for the bot (woken by its changes, re-checked twice a second)."""
        deadline = time.monotonic() + timeout
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                self.problems.append(f"timed out waiting for {what}")
                self.write(f"✗ timed out after {timeout:.0f}s waiting for {what}")
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=min(left, 0.5))
        return True

    def awaiting(self, step: str) -> Callable[[], bool]:
        """A condition: the step waits for its owner."""
        return lambda: self.release().step(step).status is StepStatus.AWAITING

    async def approve(self, user: str, step: str) -> None:
        """Wait until `step` asks for approval, then react to its request as `user`."""
        if not await self.until(f"{step} to ask for approval", self.awaiting(step)):
            return
        request = self.runtime.store.latest_request(self.release().id, step)
        assert request is not None
        await self.type(user, f"+:white_check_mark: m{request.id}")

    def reminders(self) -> list[tuple[str, str]]:
        """(step, kind) of every reminder, escalation and snooze of the demo release."""
        rows = self.runtime.store.reminders(self.release().id)
        return [(r.step_key, r.kind) for r in rows]

    def alerts(self) -> list[tuple[str, str]]:
        """(signal, action) of every alert of the demo release."""
        return [(a.signal, a.action) for a in self.runtime.store.alerts(self.release().id)]

    async def play(self, sandbox: Sandbox) -> None:
        """The whole runbook, as the four owners would walk it."""
        self.note("The commander starts the release; preconditions and the baseline run at once")
        await self.type("alice", f"/golive start {VERSION}")
        self.note(
            "CI, incidents, rollback images and the baseline check themselves; "
            "alice approves the release notes"
        )
        await self.approve("alice", "notes")
        self.note("The preflight script runs; then alice freezes merges")
        await self.approve("alice", "freeze")
        await self.hotfix(sandbox)
        self.note(
            "bob records the restore point and applies migrations; each wave he approves is "
            "deployed by golive (a GitHub workflow run it follows to the end), then health-checked"
        )
        if await self.until("the backup step", self.awaiting("backup")):
            await self.type("bob", "/golive approve backup rp-demo-0001")
        if await self.until("the migrations to wait on bob", self.awaiting("migrations")):
            after, escalate_after, _ = (t / self.speed for t in REMINDERS["auto"])
            self.note(
                f"bob steps away: golive reminds him after {after:g} s, and after "
                f"{escalate_after:g} s brings in alice too"
            )
            await self.until(
                "the migrations to be escalated",
                lambda: ("migrations", "escalation") in self.reminders(),
                escalate_after + 30,
            )
        await self.approve("bob", "migrations")
        await self.approve("bob", "wave-1")
        await self.approve("bob", "wave-2")
        self.note(
            "The bot confirmed backend health; fran approves the portal and golive syncs it in "
            "Argo CD until it is Synced and Healthy"
        )
        await self.approve("fran", "portal")
        soaking = lambda: self.release().step("soak").status is StepStatus.TIMING  # noqa: E731
        if not await self.until("the soak to start", soaking):
            return
        soak = TIMERS["soak"] / self.speed
        self.note(f"The soak runs ({soak:.0f} s). In a moment the sandbox answers 8% 5xx…")
        await asyncio.sleep(TIMERS["spike_after"] / self.speed)
        await self.type("alice", "/spike on")
        opened = await self.until(
            "on-call to be paged", lambda: ("errors", "open") in self.alerts(), 30
        )
        if opened:
            self.note("On-call was paged (channel + PagerDuty). The spike stops; watch recovery")
        await self.type("alice", "/spike off")
        await self.until("the 5xx recovery", lambda: ("errors", "recover") in self.alerts(), 40)
        self.note("The soak ends without an open breach; carol widens traffic")
        await self.approve("carol", "soak")
        self.note("The money paths verify themselves; fran confirms the portal's critical paths")
        await self.approve("fran", "portal-paths")
        done = lambda: self.release().step("criteria").status is StepStatus.DONE  # noqa: E731
        if not await self.until("the success criteria", done):
            return
        self.note("Success criteria met: the commander calls it")
        await self.type("alice", "/golive complete")
        heightened = TIMERS["heightened"] / self.speed
        self.note(f"Heightened monitoring runs for {heightened:.0f} s, then closes")
        await self.type("carol", f"/golive followup @bob {FOLLOW_UP}")
        await self.until(
            "heightened monitoring to close",
            lambda: not self.runtime.monitor.periods(),
            45,
        )

    def gate(self, sandbox: Sandbox, sha: str) -> str | None:
        """What the fake GitHub's merge gate shows on a commit."""
        status = sandbox.github.latest_status(REPOSITORY, sha, CONTEXT)
        return status.state if status else None

    async def hotfix(self, sandbox: Sandbox) -> None:
        """A pull request opened during the freeze is gated at once (GitHub's webhook); alice
        lets it through as a hotfix."""
        self.note("Someone opens a hotfix pull request: GitHub's webhook reaches golive")
        pull = await sandbox.github.open_pull(REPOSITORY, "Hotfix: invoice rounding")
        self.hotfix_sha = pull.head_sha
        self.write(f"(sandbox GitHub: #{pull.number} opened; webhook answered HTTP "
                   f"{sandbox.github.deliveries[-1].status})")
        frozen = lambda: self.gate(sandbox, pull.head_sha) == "failure"  # noqa: E731
        if not await self.until("the gate to freeze the new pull request", frozen, 10):
            return
        self.gated_at_once = True
        self.note(f"#{pull.number} is frozen on GitHub; alice lets it through as a hotfix")
        await self.type("alice", f"/golive freeze allow {pull.number} invoice rounding hotfix")
        allowed = lambda: self.gate(sandbox, pull.head_sha) == "success"  # noqa: E731
        await self.until("the hotfix to be allowed", allowed, 10)

    def verdict(self, sandbox: Sandbox, folder: Path) -> int:
        """Check every phase did what it should; print the outcome; 0 when all did."""
        release = self.release()
        found = [r for r in sandbox.github.repo(REPOSITORY).releases if r.tag_name == VERSION]
        notes = (found[0].body or "") if found else ""
        expectations: list[tuple[str, bool]] = [
            ("the release completed", release.status is ReleaseStatus.COMPLETED),
            ("every step finished", release.all_done),
            ("no step needed a waiver", not release.waivers),
            (
                "merges were frozen and the freeze lifted",
                not release.frozen
                and any(m.text.startswith("🧊") for m in self.runtime.store.messages(release.id)),
            ),
            (
                "the 5xx spike paged on-call, then recovered",
                [a for a in self.alerts() if a[0] == "errors"]
                == [("errors", "open"), ("errors", "recover")],
            ),
            (
                "the migrations nobody answered were reminded, then escalated",
                [r for r in self.reminders() if r[0] == "migrations"][:2]
                == [("migrations", "reminder"), ("migrations", "escalation")],
            ),
            (
                "PagerDuty got a trigger and a resolve",
                [e["event_action"] for e in sandbox.pagerduty.events] == ["trigger", "resolve"],
            ),
            (
                "golive deployed each wave (a GitHub workflow run per service, each a success)",
                sorted(r.inputs.get("service", "") for r in sandbox.github.actions.runs())
                == ["billing-api", "partner-registry"]
                and all(
                    r.conclusion(sandbox.github.clock()) == "success"
                    for r in sandbox.github.actions.runs()
                ),
            ),
            (
                "golive synced the portal in Argo CD to the release",
                [op.revision for op in sandbox.argocd.syncs("web-portal")] == [VERSION],
            ),
            (
                "the merge gate marked the open pull requests",
                len(sandbox.github.statuses_posted(context=CONTEXT)) >= 4,
            ),
            ("a pull request opened during the freeze was gated at once", self.gated_at_once),
            (
                "the commander let the hotfix through the freeze",
                self.hotfix_sha is not None and self.gate(sandbox, self.hotfix_sha) == "success",
            ),
            (
                "the release record was written",
                (folder / "golive-files" / f"release-{VERSION}.md").exists(),
            ),
            (
                "the soak chart was drawn",
                (folder / "golive-files" / f"soak-{VERSION}.png").exists(),
            ),
            (
                "the final record was written when monitoring ended",
                (folder / "golive-files" / f"release-{VERSION}-final.md").exists(),
            ),
            (
                "the follow-up was written into the GitHub release notes",
                FOLLOW_UP in notes and notes.count(MARK_START) == 1,
            ),
        ]
        self.write("\n=== golive demo: outcome ===")
        for what, ok in expectations:
            self.write(f"{'✓' if ok else '✗'} {what}")
        for problem in self.problems:
            self.write(f"✗ {problem}")
        ok = all(ok for _, ok in expectations) and not self.problems
        elapsed = time.monotonic() - self.started
        self.write(
            f"{'Every phase did what it should' if ok else 'Something went wrong'} "
            f"({elapsed:.0f} s)."
        )
        self.write(f"Files: {folder / 'golive-files'}")
        self.write(f"Record: golive report {VERSION} --config {folder / 'golive.yml'}")
        return 0 if ok else 1


async def run_demo(
    auto: bool, folder: Path | None = None, write: Write = print, speed: float = 1.0
) -> int:
    """Start the sandbox and golive against it; interactive console, or `--auto`.

    `speed` plays the same release N times faster: every timer divided, the traffic multiplied.
    """
    place = folder or Path(tempfile.mkdtemp(prefix="golive-demo-"))
    place.mkdir(parents=True, exist_ok=True)
    for stale in place.glob("golive.db*"):
        stale.unlink()
    async with Sandbox.start(history=3600, speed=speed) as sandbox:
        data = demo_config(sandbox, place, speed, auto)
        (place / "golive.yml").write_text(yaml.safe_dump(data, sort_keys=False))
        config = validate_config(data)
        names = {v: k for k, v in PEOPLE.items()}
        transport = ConsoleTransport(write, names, place / "golive-files")
        secret = DEFAULT_WEBHOOK_SECRET
        runtime = Runtime(
            config, Secrets({**sandbox.tokens, WEBHOOK_SECRET_ENV: secret}), transport
        )
        session = DemoSession(runtime, config, write, sandbox)
        await runtime.start()
        receiver = web.Application()
        receiver.router.add_post(WEBHOOK_PATH, GitHubWebhook(runtime, secret).receive)
        hooks = LoopbackServer(receiver)
        await hooks.start()
        await sandbox.github.add_webhook(REPOSITORY, hooks.url + WEBHOOK_PATH, secret)
        try:
            if auto:
                write(
                    f"golive demo --auto: a scripted release of {VERSION} against the sandbox "
                    f"(files in {place})"
                )
                player = Player(session, runtime, write, speed)
                await player.play(sandbox)
                await runtime.pump()
                return player.verdict(sandbox, place)
            write(
                GUIDE.format(
                    channel=CHANNEL,
                    announce=ANNOUNCE,
                    version=VERSION,
                    folder=place,
                    soak=f"{TIMERS['soak'] / speed:.0f} s",
                    heightened=f"{TIMERS['heightened'] / speed:.0f} s",
                )
            )
            await read_stdin(session.handle)
            return 0
        finally:
            await hooks.stop()
            await runtime.stop()
