"""Step actions against the fake GitHub, Argo CD and registry on loopback: an owner's approval
starts the deploy, golive follows the run to its end, and only then moves on."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.model import ReleaseStatus, StepStatus
from bot.sandbox import FakeArgoCD, FakeGitHub, FakeProduct, FakeRegistry
from bot.sandbox import argocd as argocd_fake
from bot.sandbox import github as github_fake
from bot.sandbox import registry as registry_fake
from tests.conftest import (
    BACKEND,
    CHANNEL,
    COMMANDER,
    FRONTEND,
    ON_CALL,
    Harness,
    config_dict,
    fake_time,
    walk,
)

REPO = "acme/platform"
RUN_NAME = "Deploy ${{ inputs.service }} [${{ inputs.golive_run }}]"
TAGS = ("2.2.0", "2.3.0", "2.3.1", "2.4.0-rc.1")
DEPLOY = {
    "github_workflow": {
        "workflow": "deploy.yml",
        "ref": "main",
        "inputs": {"service": "{service}", "version": "{version}"},
        "timeout": "5m",
        "poll_interval": "1s",
    }
}


@dataclass
class Fakes:
    """The providers of these tests, sharing the test's clock."""

    github: FakeGitHub
    argocd: FakeArgoCD
    product: FakeProduct
    registry: FakeRegistry

    def secrets(self) -> dict[str, str]:
        """The tokens the fakes expect, by the names the config gives."""
        return {
            "GITHUB_TOKEN": github_fake.DEFAULT_TOKEN,
            "ARGOCD_TOKEN": argocd_fake.DEFAULT_TOKEN,
            "REGISTRY_TOKEN": registry_fake.DEFAULT_TOKEN,
        }

    def config(
        self,
        actions: dict[str, Any],
        *,
        services: list[dict[str, Any]] | None = None,
        rollback_targets: bool = False,
        database: str = ":memory:",
    ) -> Any:
        """The test config: health URLs on the fake product, and the given actions."""
        listed = services or [
            {"name": "partner-registry", "tier": "backend", "wave": 1, "migrations": True},
            {"name": "billing-api", "tier": "backend", "wave": 2, "migrations": True},
            {"name": "web-portal", "tier": "frontend"},
        ]
        for service in listed:
            service.setdefault("health_url", f"{self.product.url}/health/{service['name']}")
            service.setdefault("image", f"platform/{service['name']}")
        actions = copy.deepcopy(actions)
        for action in actions.values():
            workflow = action.get("github_workflow")
            if workflow is not None:
                workflow.setdefault("repository", REPO)
                workflow.setdefault("github_url", self.github.url)
        preconditions: dict[str, Any] = {}
        if rollback_targets:
            preconditions["rollback"] = {
                "registry_url": self.registry.url,
                "token_env": "REGISTRY_TOKEN",
            }
        return validate_config(
            config_dict(
                services=listed, actions=actions, preconditions=preconditions, database=database
            )
        )


@pytest.fixture
async def fakes(clock: FakeClock) -> AsyncIterator[Fakes]:
    """GitHub with a deploy and a rollback workflow, Argo CD with the portal, the product's
    health endpoints and a registry with rollback images, all on loopback."""
    github = FakeGitHub(clock=clock.now, run_durations=(2.0, 6.0))
    github.set_ref(REPO, "main")
    github.actions.add_workflow(
        REPO,
        "deploy.yml",
        required=("service", "version"),
        inputs=("golive_run",),
        run_name=RUN_NAME,
        jobs=("build", "deploy"),
    )
    github.actions.add_workflow(
        REPO,
        "rollback.yml",
        required=("service", "image", "tag"),
        run_name="Roll back ${{ inputs.service }}",
        jobs=("rollback",),
    )
    argocd = FakeArgoCD(clock=clock.now, durations=(3.0, 4.0))
    argocd.add_app("web-portal")
    product = FakeProduct(clock=clock.now)
    registry = FakeRegistry(clock=clock.now)
    for name in ("partner-registry", "billing-api", "web-portal"):
        registry.set_tags(f"platform/{name}", TAGS)
    found = Fakes(github, argocd, product, registry)
    for fake in (github, argocd, product, registry):
        await fake.start()
    try:
        yield found
    finally:
        for fake in (github, argocd, product, registry):
            await fake.stop()


async def started(fakes: Fakes, clock: FakeClock, actions: dict[str, Any], **kw: Any) -> Harness:
    """A harness whose actions wait on the fake clock, with a release started."""
    config = fakes.config(actions, **kw)
    h = Harness(config, clock, config.database, fakes.secrets(), sleep=fake_time(clock))
    await h.say(COMMANDER, "/golive start v2.4.0")
    return h


def run_reads(github: FakeGitHub, run_id: int) -> list[Any]:
    """Every read of one workflow run."""
    return github.requests_to(f"/repos/{REPO}/actions/runs/{run_id}", "GET")


async def test_wave_approval_dispatches_follows_the_run_then_checks_health(
    fakes: Fakes, clock: FakeClock
) -> None:
    """Approving wave 1 dispatches the workflow with the templated inputs; golive follows the
    run to success, then checks the wave's health, and only then asks for wave 2."""
    h = await started(fakes, clock, {"wave-1": DEPLOY, "wave-2": DEPLOY})
    await walk(h, "migrations")
    assert h.step("wave-1").status is StepStatus.AWAITING
    await h.react(BACKEND, "wave-1")
    (dispatch,) = fakes.github.actions.dispatches
    assert dispatch["workflow"] == "deploy.yml"
    assert dispatch["body"] == {
        "ref": "main",
        "inputs": {"service": "partner-registry", "version": "v2.4.0"},
        "return_run_details": True,
    }
    (run,) = fakes.github.actions.runs()
    assert len(run_reads(fakes.github, run.id)) >= 3  # queued, in progress, completed
    health = fakes.product.requests_to("/health/partner-registry")
    assert health and health[0].at >= run.ends_at()  # health was checked after the deploy
    assert h.step("wave-1").status is StepStatus.DONE
    assert h.step("wave-2").status is StepStatus.AWAITING
    results = h.store.check_results(h.release().id, "wave-1")
    assert [(r.name, r.status) for r in results] == [
        ("deploy:partner-registry", "pass"),
        ("health:partner-registry", "pass"),
    ]
    link = f"https://github.com/{REPO}/actions/runs/{run.id}"
    step_updates = [m.text for m in h.messages() if m.kind == "update" and m.step_key == "wave-1"]
    assert any(text.startswith("🔄") and link in text for text in step_updates)
    assert step_updates[-1].startswith("✅") and link in step_updates[-1]
    card = h.store.load(h.release().id).card_message
    card_updates = [str(m.blocks) for m in h.messages() if m.update_of == card]
    assert any(f"Backend wave 1 — running: {link}" in blocks for blocks in card_updates)
    await h.runtime.service.close()


async def test_services_of_one_wave_deploy_concurrently(fakes: Fakes, clock: FakeClock) -> None:
    """Two services in one wave: both runs are dispatched before either finishes."""
    services = [
        {"name": "partner-registry", "tier": "backend", "wave": 1},
        {"name": "billing-api", "tier": "backend", "wave": 1},
    ]
    h = await started(fakes, clock, {"wave-1": DEPLOY}, services=services)
    await walk(h, "migrations")
    await h.react(BACKEND, "wave-1")
    runs = fakes.github.actions.runs()
    assert sorted(r.inputs["service"] for r in runs) == ["billing-api", "partner-registry"]
    assert max(r.created_at for r in runs) < min(r.ends_at() for r in runs)
    assert h.step("wave-1").status is StepStatus.DONE
    await h.runtime.service.close()


async def test_failing_run_blocks_with_its_link_and_jobs_and_retry_starts_a_new_run(
    fakes: Fakes, clock: FakeClock
) -> None:
    """A run that fails blocks the wave with the run's link and the failed job; no health check
    runs. `retry` dispatches a new run and never reads the failed one again."""
    h = await started(fakes, clock, {"wave-1": DEPLOY})
    await walk(h, "migrations")
    fakes.github.actions.fail_runs(job="deploy")
    await h.react(BACKEND, "wave-1")
    step = h.step("wave-1")
    assert step.status is StepStatus.BLOCKED and step.failing == ("deploy:partner-registry",)
    (failed,) = fakes.github.actions.runs()
    link = f"https://github.com/{REPO}/actions/runs/{failed.id}"
    blocked = [m.text for m in h.messages() if m.text.startswith("❌ *Backend wave 1* is blocked")]
    assert len(blocked) == 1
    assert link in blocked[0] and "ended failure; failed jobs: deploy" in blocked[0]
    assert fakes.product.requests_to("/health/") == []
    assert h.store.approvals(h.release().id)[-1].step_key == "wave-1"

    fakes.github.actions.fail_runs(False)
    reads_before = len(run_reads(fakes.github, failed.id))
    reply = await h.reply(BACKEND, "/golive retry wave-1")
    assert reply == "Running Backend wave 1 again."
    first, second = fakes.github.actions.runs()
    assert first is failed and second.id != failed.id
    assert len(fakes.github.actions.dispatches) == 2
    assert len(run_reads(fakes.github, failed.id)) == reads_before
    assert h.step("wave-1").status is StepStatus.DONE
    await h.runtime.service.close()


async def test_restart_mid_run_resumes_polling_without_a_second_dispatch(
    fakes: Fakes, clock: FakeClock, tmp_path: Path
) -> None:
    """golive stops while the run is in progress; the next process follows the same run id
    to its end and never dispatches again."""
    database = str(tmp_path / "golive.db")
    config = fakes.config({"wave-1": DEPLOY}, database=database)
    first = Harness(config, clock, database, fakes.secrets(), sleep=fake_time(clock))
    await first.say(COMMANDER, "/golive start v2.4.0")
    await walk(first, "migrations")
    polling = asyncio.Event()

    async def stall(seconds: float) -> None:
        polling.set()
        await asyncio.Event().wait()  # this process never wakes up again

    stalled = Harness(config, clock, database, fakes.secrets(), sleep=stall)
    await first.runtime.service.close()
    first.store.close()
    stalled.service.approve(CHANNEL, BACKEND, "wave-1", via="console")
    await asyncio.wait_for(polling.wait(), timeout=10)
    (recorded,) = stalled.store.action_runs(stalled.release().id, "wave-1")
    (run,) = fakes.github.actions.runs()
    assert recorded.state == "running" and recorded.run_id == str(run.id)
    await stalled.runtime.service.close()
    stalled.store.close()

    second = Harness(config, clock, database, fakes.secrets(), sleep=fake_time(clock))
    await second.settle()
    assert len(fakes.github.actions.dispatches) == 1
    assert len(fakes.github.actions.runs()) == 1
    assert second.step("wave-1").status is StepStatus.DONE
    (done,) = second.store.action_runs(second.release().id, "wave-1")
    assert done.state == "succeeded" and done.run_id == str(run.id)
    assert any(r.at >= run.ends_at() for r in run_reads(fakes.github, run.id))
    await second.runtime.service.close()


async def test_enterprise_server_fallback_finds_its_own_run_among_others(
    fakes: Fakes, clock: FakeClock
) -> None:
    """A server that refuses return_run_details (GHES) gets the dispatch again with a unique
    golive_run input; golive follows the run carrying it, not the other dispatches around."""
    actions = fakes.github.actions
    actions.run_details = False
    actions.list_delay = 0.0  # the other runs are listed, newest first, when golive looks
    h = await started(fakes, clock, {"wave-1": DEPLOY})
    await walk(h, "migrations")
    older = actions.add_run(
        REPO,
        "deploy.yml",
        {"service": "partner-registry", "version": "v2.3.9", "golive_run": "golive-0123456789ab"},
        created_at=clock.now() - timedelta(minutes=1),
    )
    newer = actions.add_run(
        REPO,
        "deploy.yml",
        {"service": "partner-registry", "version": "v2.4.0", "golive_run": "golive-ba9876543210"},
        created_at=clock.now() + timedelta(seconds=0.5),
    )
    await h.react(BACKEND, "wave-1")
    posts = fakes.github.requests_to(f"/repos/{REPO}/actions/workflows/deploy.yml/dispatches")
    assert [("return_run_details" in p.json()) for p in posts] == [True, False]
    (dispatch,) = actions.dispatches
    token = dispatch["body"]["inputs"]["golive_run"]
    ours = next(r for r in actions.runs() if r.id == dispatch["run"])
    assert ours.inputs == {"service": "partner-registry", "version": "v2.4.0", "golive_run": token}
    assert run_reads(fakes.github, ours.id)
    assert run_reads(fakes.github, older.id) == run_reads(fakes.github, newer.id) == []
    (recorded,) = h.store.action_runs(h.release().id, "wave-1")
    assert recorded.run_id == str(ours.id) and recorded.token == token
    assert h.step("wave-1").status is StepStatus.DONE
    await h.runtime.service.close()


PORTAL_SYNC = {
    "argocd_sync": {
        "server": "",
        "app": "web-portal",
        "token_env": "ARGOCD_TOKEN",
        "revision": "{version}",
        "timeout": "5m",
        "poll_interval": "1s",
    }
}


def portal_sync(fakes: Fakes) -> dict[str, Any]:
    """The portal's Argo CD sync action pointed at the fake."""
    return {"argocd_sync": {**PORTAL_SYNC["argocd_sync"], "server": fakes.argocd.url}}


async def test_portal_sync_waits_until_synced_and_healthy(fakes: Fakes, clock: FakeClock) -> None:
    """The portal's approval syncs the Argo CD app to the release revision; the step ends only
    once the operation finished and the app is Synced and Healthy."""
    h = await started(fakes, clock, {"portal": portal_sync(fakes)})
    await walk(h, "wave-2")
    await h.react(FRONTEND, "portal")
    (sync,) = fakes.argocd.syncs("web-portal")
    assert sync.revision == "v2.4.0"
    healthy_from = sync.started_at + timedelta(seconds=7)
    reads = fakes.argocd.requests_to("/api/v1/applications/web-portal", "GET")
    assert reads[-1].at >= healthy_from  # it waited out the Progressing health
    assert h.step("portal").status is StepStatus.DONE
    (result,) = h.store.check_results(h.release().id, "portal")[-1:]
    assert result.name == "deploy:web-portal" and "Synced and Healthy" in result.summary
    await h.runtime.service.close()


async def test_argocd_degraded_app_fails_the_portal(fakes: Fakes, clock: FakeClock) -> None:
    """A sync that leaves the app Degraded blocks the portal step with Argo CD's message."""
    fakes.argocd.fail_syncs("degraded", message="web-portal: ImagePullBackOff")
    h = await started(fakes, clock, {"portal": portal_sync(fakes)})
    await walk(h, "wave-2")
    await h.react(FRONTEND, "portal")
    step = h.step("portal")
    assert step.status is StepStatus.BLOCKED and step.failing == ("deploy:web-portal",)
    blocked = [m.text for m in h.messages() if m.text.startswith("❌ *Web portal deploy*")]
    assert "web-portal is Degraded: web-portal: ImagePullBackOff" in blocked[0]
    assert f"{fakes.argocd.url}/applications/web-portal" in blocked[0]
    await h.runtime.service.close()


ROLLBACK = {
    "github_workflow": {
        "workflow": "rollback.yml",
        "inputs": {"service": "{service}", "image": "{image}", "tag": "{rollback_tag}"},
        "timeout": "5m",
        "poll_interval": "1s",
    }
}


async def test_confirmed_rollback_runs_each_service_last_wave_first(
    fakes: Fakes, clock: FakeClock
) -> None:
    """`/golive rollback` proposes the plan; nothing runs until on-call confirms it; then each
    service's rollback action runs with its rollback image, the portal first and wave 1 last,
    one after the other; the freeze and the monitoring stay."""
    h = await started(fakes, clock, {"rollback": ROLLBACK}, rollback_targets=True)
    await walk(h, "portal")
    assert h.release().frozen
    reply = await h.reply(ON_CALL, "/golive rollback 5xx doubled after the portal")
    assert reply == "The rollback plan is in the channel; confirm it there to run it."
    assert h.release().status is ReleaseStatus.ACTIVE
    assert fakes.github.actions.dispatches == []
    (proposal,) = [m for m in h.messages() if m.kind == "confirm"]
    assert "web-portal → billing-api → partner-registry" in proposal.text
    assert proposal.blocks is not None
    assert proposal.blocks[1]["elements"][0]["action_id"] == "golive_confirm_rollback"
    refused = await h.say(COMMANDER, f"+:white_check_mark: m{proposal.id}")
    assert any("only on-call (@carol) can confirm the rollback of" in line for line in refused)
    assert fakes.github.actions.dispatches == []

    await h.say(ON_CALL, f"+:white_check_mark: m{proposal.id}")
    release = h.release()
    assert release.status is ReleaseStatus.ROLLED_BACK and release.frozen
    assert release.reason == "5xx doubled after the portal"
    inputs = [d["body"]["inputs"] for d in fakes.github.actions.dispatches]
    assert inputs == [
        {"service": "web-portal", "image": "platform/web-portal", "tag": "2.3.1"},
        {"service": "billing-api", "image": "platform/billing-api", "tag": "2.3.1"},
        {"service": "partner-registry", "image": "platform/partner-registry", "tag": "2.3.1"},
    ]
    runs = fakes.github.actions.runs()
    assert all(b.created_at >= a.ends_at() for a, b in itertools.pairwise(runs))
    texts = [m.text for m in h.messages()]
    assert sum("rolled back:" in t and t.startswith("⏪ ✅") for t in texts) == 3
    assert any(t.startswith("⏪ Rollback of v2.4.0 done") for t in texts)
    assert h.store.monitoring_windows() or not h.config.monitoring.prometheus_url
    events = [e.type for e in h.store.events(release.id)]
    assert "confirm_rollback" in events and events[-1] == "rollback_done"
    assert {r.state for r in h.store.action_runs(release.id, "rollback")} == {"succeeded"}
    (record,) = [m for m in h.messages() if m.kind == "file"][-1:]
    assert record.file is not None and "| rollback #1 | partner-registry | succeeded |" in str(
        record.file["content"]
    )
    await h.runtime.service.close()


async def test_failed_rollback_stops_before_the_earlier_waves(
    fakes: Fakes, clock: FakeClock
) -> None:
    """When a service's rollback fails, the waves before it are not rolled back: on-call is
    told what failed and what is left."""
    h = await started(fakes, clock, {"rollback": ROLLBACK}, rollback_targets=True)
    await walk(h, "portal")
    await h.say(ON_CALL, "/golive rollback latency")
    (proposal,) = [m for m in h.messages() if m.kind == "confirm"]
    fakes.github.actions.fail_runs(job="rollback")
    await h.say(ON_CALL, f"+:white_check_mark: m{proposal.id}")
    assert [d["body"]["inputs"]["service"] for d in fakes.github.actions.dispatches] == [
        "web-portal"
    ]
    states = {r.target: r.state for r in h.store.action_runs(h.release().id, "rollback")}
    assert states == {
        "web-portal": "failed",
        "billing-api": "skipped",
        "partner-registry": "skipped",
    }
    done = [m.text for m in h.messages() if m.text.startswith("⏪ Rollback of v2.4.0 stopped")]
    assert "web-portal failed; not attempted: billing-api, partner-registry" in done[0]
    await h.runtime.service.close()
