"""Step actions piece by piece: their config, the runbook's rules for them, the provider
drivers against mocked answers, and a crash between asking GitHub and recording its answer."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlite_utils import Database

from bot.adapters.cli import main
from bot.domain.clock import FakeClock
from bot.domain.config import fill_templates, template_names, validate_config
from bot.domain.errors import ConfigError, IllegalMove, NotAllowed
from bot.domain.events import (
    ActionFinished,
    Approve,
    ConfirmRollback,
    Retry,
    Rollback,
    RollbackProposed,
    RollbackStarted,
    RunAction,
    Waive,
)
from bot.domain.model import Outcome, Release, ReleaseStatus, Roles, StageKind, StepStatus
from bot.domain.plan import PlannedService, plan_steps, rollback_order
from bot.domain.transition import transition
from bot.render.refusals import refusal
from bot.sandbox import FakeGitHub
from bot.sandbox import github as github_fake
from bot.store import Store, migrations
from checks.actions import WebhookDriver, WorkflowDriver
from checks.http import ProviderError
from tests.conftest import (
    BACKEND,
    COMMANDER,
    Harness,
    config_dict,
    fake_time,
    walk,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ROLES = Roles(commander="UCOM", on_call="UONC", backend="UBAC", frontend="UFRO")
SERVICES = [
    PlannedService("partner-registry", "backend", 1, True),
    PlannedService("billing-api", "backend", 2, True),
    PlannedService("ledger", "backend", 2, False),
    PlannedService("web-portal", "frontend", 1, False),
]


def problems(actions: dict[str, Any], **sections: Any) -> list[str]:
    """What check-config says of these actions."""
    with pytest.raises(ConfigError) as caught:
        validate_config(config_dict(actions=actions, **sections))
    return caught.value.problems


# -- config ------------------------------------------------------------------------------------


def test_unknown_steps_and_bad_templates_are_named_with_their_paths() -> None:
    """Step keys that take no action, placeholders that do not exist or have no value in that
    step, and stray braces are each reported with their field path."""
    found = problems(
        {
            "soak": {"webhook": {"url": "https://ops.example.com/x"}},
            "wave-7": {"webhook": {"url": "https://ops.example.com/x"}},
            "backup": {
                "webhook": {
                    "url": "https://ops.example.com/{service}",
                    "body": {"v": "{verison}", "r": "{release_id", "ok": "{version}"},
                }
            },
            "wave-1": {
                "webhook": {"url": "https://ops.example.com/{rollback_tag}"},
            },
        }
    )
    assert found == [
        "actions.soak: no step takes an action by that name (actions run for backup, "
        "migrations, wave-N, portal, rollback)",
        "actions.wave-7: no backend service deploys in wave-7 (wave-1, wave-2)",
        "actions.backup.webhook.url: {service} has no value in the backup step "
        "(there: {version}, {release_id})",
        "actions.backup.webhook.body.v: unknown placeholder {verison} (known: {version}, "
        "{service}, {wave}, {image}, {rollback_tag}, {release_id})",
        "actions.backup.webhook.body.r: bad template '{release_id': a '{' without its '}'",
        "actions.wave-1.webhook.url: {rollback_tag} has no value in the wave-1 step "
        "(there: {version}, {service}, {wave}, {image}, {release_id})",
    ]


def test_an_action_names_exactly_one_kind_and_a_workflow_needs_a_repository() -> None:
    """Two kinds at once, none, or a workflow with neither its own repository nor
    preconditions.ci are refused."""
    shape = problems(
        {
            "portal": {},
            "wave-1": {
                "webhook": {"url": "https://ops.example.com/x"},
                "argocd_sync": {"server": "https://cd.example.com", "app": "x"},
            },
        }
    )
    assert any(p.startswith("actions.portal: name exactly one of") for p in shape)
    assert any("(got argocd_sync, webhook)" in p for p in shape)
    orphan = problems({"wave-1": {"github_workflow": {"workflow": "deploy.yml"}}})
    assert orphan == [
        "actions.wave-1.github_workflow: name a repository, or configure preconditions.ci"
    ]
    reserved = problems(
        {"wave-1": {"github_workflow": {"workflow": "d.yml", "inputs": {"golive_run": "x"}}}}
    )
    assert any("golive_run is golive's own input" in p for p in reserved)


def test_image_placeholder_needs_every_service_image() -> None:
    """`{image}` in a step whose services have no `image` would be empty: refused."""
    found = problems({"rollback": {"webhook": {"url": "https://ops.example.com/{image}"}}})
    assert found == [
        "actions.rollback.webhook.url: {image} is empty for partner-registry, billing-api, "
        "web-portal (set services[].image)"
    ]


def test_check_config_names_the_tokens_actions_need(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`golive check-config` lists each action's missing token by variable and field path."""
    data = config_dict(
        actions={
            "portal": {"argocd_sync": {"server": "https://cd.example.com", "app": "web"}},
            "wave-1": {
                "github_workflow": {"workflow": "deploy.yml", "repository": "acme/platform"}
            },
            "backup": {"webhook": {"url": "https://ops.example.com/b", "token_env": "OPS_TOKEN"}},
        }
    )
    path = tmp_path / "golive.yml"
    path.write_text(yaml.safe_dump(data))
    for name in ("ARGOCD_TOKEN", "GITHUB_TOKEN", "OPS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ARGOCD_TOKEN is not set (actions.portal.argocd_sync.token_env)" in out
    assert "GITHUB_TOKEN is not set (actions.wave-1.github_workflow.token_env)" in out
    assert "OPS_TOKEN is not set (actions.backup.webhook.token_env)" in out


def test_templates_fill_strings_and_keep_everything_else() -> None:
    """Placeholders are filled in nested strings; numbers, booleans and keys stay as written."""
    values = {"version": "v2.4.0", "service": "billing-api"}
    body = {"{service}": ["{version}", 3, True], "note": "deploy {service} at {version}"}
    assert fill_templates(body, values) == {
        "{service}": ["v2.4.0", 3, True],
        "note": "deploy billing-api at v2.4.0",
    }
    assert template_names("a {version} b {service}") == ["version", "service"]
    with pytest.raises(ValueError):
        template_names("a } b")


# -- the runbook's rules -----------------------------------------------------------------------


def planned(actions: tuple[str, ...]) -> Release:
    """An active release of SERVICES with these steps' actions, at wave 1."""
    steps = plan_steps(SERVICES, lambda name, scope: name == "health", 900.0, actions=actions)
    release = Release(
        1,
        "C1",
        "v2.4.0",
        ReleaseStatus.ACTIVE,
        ROLES,
        steps,
        services=tuple(s.name for s in SERVICES),
    )
    done = tuple(
        replace(s, status=StepStatus.DONE)
        if s.phase.value != "deployment" or s.key in ("freeze", "backup", "migrations")
        else s
        for s in release.steps
    )
    wave = next(s for s in done if s.key == "wave-1")
    return replace(
        release,
        steps=tuple(replace(s, status=StepStatus.AWAITING) if s is wave else s for s in done),
    )


def test_approval_starts_the_action_in_the_same_transition() -> None:
    """The owner's approval of a step with an action moves it straight to `acting` and asks
    for the action's run; without an action the approval leads to the health check."""
    with_action = transition(planned(("wave-1",)), Approve("wave-1", "UBAC"), NOW)
    step = with_action.release.step("wave-1")
    assert step.status is StepStatus.ACTING and step.current.kind is StageKind.ACTION
    assert RunAction("wave-1", step.attempt) in with_action.effects
    without = transition(planned(()), Approve("wave-1", "UBAC"), NOW)
    assert without.release.step("wave-1").status is StepStatus.RUNNING
    assert not any(isinstance(e, RunAction) for e in without.effects)


def test_action_results_pass_or_block_and_retry_starts_a_new_attempt() -> None:
    """A failed run blocks the step; retry enters the action again with a new attempt (a new
    run), and a result of the old attempt is ignored."""
    acting = transition(planned(("wave-1",)), Approve("wave-1", "UBAC"), NOW).release
    first = acting.step("wave-1").attempt
    blocked = transition(
        acting, ActionFinished("wave-1", first, (("deploy:partner-registry", False),)), NOW
    ).release
    assert blocked.step("wave-1").failing == ("deploy:partner-registry",)
    again = transition(blocked, Retry("wave-1", "UBAC"), NOW)
    step = again.release.step("wave-1")
    assert step.status is StepStatus.ACTING and step.attempt == first + 1
    assert RunAction("wave-1", first + 1) in again.effects
    stale = ActionFinished("wave-1", first, (("deploy:partner-registry", True),))
    assert transition(again.release, stale, NOW).release == again.release
    passed = transition(
        again.release,
        ActionFinished("wave-1", first + 1, (("deploy:partner-registry", True),)),
        NOW,
    ).release
    assert passed.step("wave-1").status is StepStatus.RUNNING  # the wave's health check


def test_a_failed_action_can_be_waived_and_the_health_check_follows() -> None:
    """The commander waives a failed deploy (done by hand, say): the step goes on to its
    health check, and the waiver is on the record."""
    acting = transition(planned(("wave-1",)), Approve("wave-1", "UBAC"), NOW).release
    attempt = acting.step("wave-1").attempt
    failed = ActionFinished("wave-1", attempt, (("deploy:partner-registry", False),))
    blocked = transition(acting, failed, NOW).release
    waived = transition(blocked, Waive("wave-1", "UCOM", "deployed by hand"), NOW)
    step = waived.release.step("wave-1")
    assert step.status is StepStatus.RUNNING and step.current.check == "health"
    assert Outcome.WAIVED in step.outcomes and "wave-1" in waived.release.waivers


def test_rollback_with_actions_waits_for_on_call_to_confirm() -> None:
    """With rollback actions, /golive rollback only proposes; on-call alone confirms; the
    confirmation rolls back and starts the runs, the portal first and wave 1 last."""
    release = planned(("rollback",))
    proposed = transition(release, Rollback("UONC", "5xx doubled", confirm=True), NOW)
    assert proposed.release.status is ReleaseStatus.ACTIVE
    assert proposed.release.proposed_rollback == "5xx doubled"
    assert proposed.effects == (RollbackProposed("UONC", "5xx doubled"),)
    with pytest.raises(NotAllowed):
        transition(proposed.release, ConfirmRollback("UCOM"), NOW)
    confirmed = transition(proposed.release, ConfirmRollback("UONC"), NOW)
    assert confirmed.release.status is ReleaseStatus.ROLLED_BACK
    assert confirmed.release.reason == "5xx doubled"
    assert confirmed.release.proposed_rollback is None
    order = (("web-portal",), ("billing-api", "ledger"), ("partner-registry",))
    assert RollbackStarted("UONC", order) in confirmed.effects
    assert rollback_order(release) == order
    with pytest.raises(IllegalMove) as caught:
        transition(release, ConfirmRollback("UONC"), NOW)
    assert refusal(caught.value).startswith("no rollback of v2.4.0 waits for confirmation")


# -- drivers against mocked answers ------------------------------------------------------------


def mocked(handler: Any) -> httpx.AsyncClient:
    """A client whose every request is answered by `handler`."""
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_webhook_passes_on_2xx_or_on_what_its_poll_url_says() -> None:
    """Without a poll URL a 2xx passes; with one, `succeeded`/`failed` decide and anything
    else is still going; a refusal is an error naming the status and the words."""
    seen: list[httpx.Request] = []
    states = iter(["running", "succeeded", "failed"])

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(202, json={"accepted": True})
        return httpx.Response(200, json={"status": next(states), "detail": "restore point rp-7"})

    client = mocked(answer)
    plain = WebhookDriver(
        client, url="https://ops.test/b", token="t0k", body={"v": 1}, poll_url=None
    )
    started = await plain.start("tok")
    assert (await plain.poll(started.run_id or "")).ok
    assert seen[0].headers["authorization"] == "Bearer t0k"
    assert json.loads(seen[0].content) == {"v": 1}
    polled = WebhookDriver(
        client, url="https://ops.test/b", token=None, body={}, poll_url="https://ops.test/b/1"
    )
    run = (await polled.start("tok")).run_id
    assert run == "https://ops.test/b/1"
    first, second, third = [await polled.poll(run) for _ in range(3)]
    assert not first.done and first.summary == "running: restore point rp-7"
    assert second.done and second.ok
    assert third.done and not third.ok and third.summary == "failed: restore point rp-7"
    refused = WebhookDriver(
        mocked(lambda r: httpx.Response(403, json={"message": "not on the allow list"})),
        url="https://ops.test/b",
        token=None,
        body={},
        poll_url=None,
    )
    with pytest.raises(ProviderError, match=r"refused .* \(HTTP 403\): not on the allow list"):
        await refused.start("tok")


async def test_workflow_refusal_quotes_github() -> None:
    """A dispatch GitHub refuses (an input the workflow does not declare) fails with GitHub's
    own message, and is not sent again."""
    posts: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(422, json={"message": 'Unexpected inputs provided: ["colour"]'})

    driver = WorkflowDriver(
        mocked(answer),
        api="https://api.github.test",
        repository="acme/platform",
        token="t",
        workflow="deploy.yml",
        ref="main",
        inputs={"colour": "blue"},
        run_input="golive_run",
    )
    with pytest.raises(ProviderError, match='Unexpected inputs provided: \\["colour"\\]'):
        await driver.start("tok")
    assert len(posts) == 1


# -- a crash between asking and recording ------------------------------------------------------


def wave_deploy(github: FakeGitHub) -> dict[str, Any]:
    """`actions:` deploying wave 1 with the fake GitHub's deploy workflow."""
    workflow = {
        "workflow": "deploy.yml",
        "repository": "acme/platform",
        "github_url": github.url,
        "inputs": {"service": "{service}"},
        "poll_interval": "1s",
    }
    return {"wave-1": {"github_workflow": workflow}}


async def crashed_while_dispatching(
    tmp_path: Path, clock: FakeClock, github: FakeGitHub
) -> Harness:
    """A database whose wave-1 run was being dispatched when golive stopped."""
    database = str(tmp_path / "golive.db")
    config = validate_config(config_dict(actions=wave_deploy(github), database=database))
    secrets = {"GITHUB_TOKEN": github_fake.DEFAULT_TOKEN}
    first = Harness(config, clock, database, secrets, sleep=fake_time(clock))
    await first.say(COMMANDER, "/golive start v2.4.0")
    await walk(first, "migrations")
    release = first.release()
    step = release.step("wave-1")
    # What the service records when wave-1 is approved, then the runner's first write:
    moved = transition(release, Approve("wave-1", BACKEND), clock.now()).release
    with first.store.transaction():
        first.store.save_release(release, moved, clock.now())
        row = first.store.add_action_run(
            release.id,
            "wave-1",
            step.attempt + 1,
            0,
            "partner-registry",
            "github_workflow",
            "golive-0a1b2c3d4e5f",
            clock.now(),
        )
        first.store.update_action_run(row, clock.now(), state="dispatching", started_at=clock.now())
    await first.runtime.service.close()
    first.store.close()
    return Harness(config, clock, database, secrets, sleep=fake_time(clock))


async def test_a_run_lost_while_dispatching_is_found_by_its_mark(
    tmp_path: Path, clock: FakeClock
) -> None:
    """golive stopped after GitHub took a marked dispatch but before the answer was recorded:
    the restart finds the run by its golive_run mark and follows it; nothing is sent again."""
    async with FakeGitHub(clock=clock.now, run_durations=(1.0, 2.0)) as github:
        github.set_ref("acme/platform", "main")
        github.actions.add_workflow(
            "acme/platform",
            "deploy.yml",
            inputs=("service", "golive_run"),
            run_name="Deploy [${{ inputs.golive_run }}]",
        )
        github.actions.add_run(
            "acme/platform",
            "deploy.yml",
            {"service": "partner-registry", "golive_run": "golive-0a1b2c3d4e5f"},
        )
        h = await crashed_while_dispatching(tmp_path, clock, github)
        await h.settle()
        assert (
            github.requests_to("/repos/acme/platform/actions/workflows/deploy.yml/dispatches") == []
        )
        (run,) = h.store.action_runs(h.release().id, "wave-1")
        assert run.state == "succeeded" and run.run_id == str(github.actions.runs()[0].id)
        step = h.step("wave-1")  # on to the health confirmation (no health_url here)
        assert step.status is StepStatus.AWAITING and step.current.check == "health"
        await h.runtime.service.close()


async def test_a_run_lost_without_a_mark_blocks_the_step_instead_of_dispatching_again(
    tmp_path: Path, clock: FakeClock
) -> None:
    """When no run carries the mark (GitHub answered with the run's details, which were lost),
    golive cannot tell whether it started: the step blocks saying so, nothing is sent again."""
    async with FakeGitHub(clock=clock.now) as github:
        github.set_ref("acme/platform", "main")
        github.actions.add_workflow("acme/platform", "deploy.yml", inputs=("service",))
        h = await crashed_while_dispatching(tmp_path, clock, github)
        await h.settle()
        assert github.actions.dispatches == []
        step = h.step("wave-1")
        assert step.status is StepStatus.BLOCKED
        (result,) = h.store.check_results(h.release().id, "wave-1")
        assert "cannot tell whether it started" in result.summary
        assert result.status == "error"
        await h.runtime.service.close()


def test_a_database_from_before_actions_upgrades_and_its_release_carries_on(
    tmp_path: Path,
) -> None:
    """A database written before step actions gains their table and the proposed rollback;
    its release loads as it was, with no rollback proposed."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m007_actions")
    assert "action_runs" not in old.table_names()
    old.close()
    store = Store(path)
    release = planned(())
    rid = store.insert_release(release, created_at=NOW, created_by="UCOM", activate_at=NOW)
    assert "m007_actions" in store.schema_version()
    assert store.load(rid).release.proposed_rollback is None
    assert store.action_runs(rid) == []
    store.close()


async def test_a_run_is_recorded_even_when_the_database_refuses_a_write_at_first(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is locked once while golive records a run: the record waits with backoff
    and is written, and the run is followed to its end."""
    async with FakeGitHub(clock=clock.now, run_durations=(1.0, 2.0)) as github:
        github.set_ref("acme/platform", "main")
        github.actions.add_workflow("acme/platform", "deploy.yml", inputs=("service",))
        config = validate_config(config_dict(actions=wave_deploy(github)))
        h = Harness(
            config,
            clock,
            ":memory:",
            {"GITHUB_TOKEN": github_fake.DEFAULT_TOKEN},
            sleep=fake_time(clock),
        )
        await h.say(COMMANDER, "/golive start v2.4.0")
        await walk(h, "migrations")
        writes = h.store.writes
        real = writes.run
        refused: list[str] = []

        async def locked_once(unit: Any, **kw: Any) -> Any:
            if not refused and "write" in getattr(unit, "__qualname__", ""):
                refused.append("locked")
                raise sqlite3.OperationalError("database is locked")
            return await real(unit, **kw)

        monkeypatch.setattr(writes, "run", locked_once)
        await h.react(BACKEND, "wave-1")
        assert refused == ["locked"]
        (run,) = h.store.action_runs(h.release().id, "wave-1")
        assert run.state == "succeeded" and len(github.actions.dispatches) == 1
        await h.runtime.service.close()
