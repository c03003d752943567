"""Preconditions, preflight, health gates and the merge gate, through the engine, against the
sandbox's real HTTP servers and a real preflight script."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.clock import FakeClock
from bot.domain.model import Outcome, ReleaseStatus, StepStatus
from bot.domain.records import CheckRow
from bot.sandbox import FakeGitHub, FakeRegistry, Sandbox
from bot.sandbox import registry as registry_module
from bot.sandbox.base import LOGIN_PAGE
from bot.sandbox.sandbox import BRANCH, REPOSITORY, TAGS
from tests.conftest import COMMANDER, ON_CALL, Harness, config_dict, walk

PREFLIGHT = """\
import os, subprocess, sys, time
print("preflight", " ".join(sys.argv[1:]))
mode = open("mode").read().strip() if os.path.exists("mode") else "pass"
if mode == "fail":
    print("migrations check: partner-registry has 2 unapplied migrations")
    sys.exit(3)
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open("child.pid", "w").write(str(child.pid))
    time.sleep(60)
print("all good")
"""


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """Every fake provider on loopback, seeded green."""
    async with Sandbox.start(traffic=False, history=0) as sb:
        yield sb


def sandbox_config(sb: Sandbox, workdir: Path, **extra: Any) -> dict[str, Any]:
    """The test config pointed at the sandbox, with a real preflight script in `workdir`."""
    workdir.mkdir(exist_ok=True)
    (workdir / "preflight.py").write_text(PREFLIGHT)
    overrides = sb.config_overrides()
    pre = overrides["preconditions"]
    pre["ci"].update(wait="2s", poll_interval="50ms")
    data = config_dict(services=overrides["services"], preconditions=pre)
    data["preflight"] = {
        "workdir": str(workdir),
        "quick": ["python3", "preflight.py", "--quick"],
        "full": ["python3", "preflight.py", "--include-frontend"],
        "timeout": "2s",
    }
    data.update(extra)
    return data


@pytest.fixture
async def h(sandbox: Sandbox, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    """A harness whose preconditions, preflight and health gates run against the sandbox."""
    from bot.domain.config import validate_config

    config = validate_config(sandbox_config(sandbox, tmp_path / "repo"))
    harness = Harness(config, clock, ":memory:", secrets=sandbox.tokens)
    yield harness
    await harness.service.close()


def results(h: Harness, step: str) -> dict[str, CheckRow]:
    """The newest verdict of each check of a step."""
    return {r.name: r for r in h.store.check_results(h.release().id, step)}


def thread_texts(h: Harness) -> list[str]:
    """Every message text of the release, in order."""
    return [m.text for m in h.messages()]


async def test_green_preconditions_pass_by_themselves(h: Harness) -> None:
    """CI, incidents, notes page and rollback targets pass; only the notes approval waits."""
    await h.say(COMMANDER, "/golive start v2.4.0")
    release = h.release()
    assert [release.step(k).status for k in ("ci", "incidents", "rollback")] == [
        StepStatus.DONE
    ] * 3
    assert release.step("notes").status is StepStatus.AWAITING
    assert "/notes/v2.4.0" in h.approval_message("notes").text
    ci = results(h, "ci")
    assert set(ci) == {"ci:python-services", "ci:web-portal", "ci:smoke-core-flow"}
    assert all(r.status == "pass" for r in ci.values())
    rollback = results(h, "rollback")
    assert rollback["rollback:billing-api"].evidence["target"] == "2.3.1"
    await walk(h, "preflight")
    flight = results(h, "preflight")["preflight"]
    assert flight.status == "pass"
    assert "preflight --quick" in flight.evidence["output_tail"]
    assert h.step("freeze").status is StepStatus.AWAITING


async def test_failed_ci_blocks_and_names_the_check_until_waived(
    h: Harness, sandbox: Sandbox
) -> None:
    """A red required check blocks the release with its name and link; a waiver records why."""
    sandbox.github.set_check_run(REPOSITORY, BRANCH, "smoke-core-flow", conclusion="failure")
    await h.say(COMMANDER, "/golive start v2.4.0")
    ci = h.step("ci")
    assert ci.status is StepStatus.BLOCKED and ci.failing == ("ci:smoke-core-flow",)
    blocked = next(t for t in thread_texts(h) if t.startswith("❌ *CI green* is blocked"))
    assert "smoke-core-flow concluded failure" in blocked and "http" in blocked
    assert "only the commander" in await h.reply(ON_CALL, "/golive waive ci flaky")
    await h.say(COMMANDER, "/golive waive ci:smoke-core-flow known flake, rerun green locally")
    assert h.step("ci").outcome is Outcome.WAIVED
    status = await h.reply(COMMANDER, "/golive status")
    assert "Waived: ci:smoke-core-flow" in status
    waiver = h.store.waivers(h.release().id)[0]
    assert (waiver.user, waiver.reason) == (COMMANDER, "known flake, rerun green locally")


async def test_pending_ci_is_waited_for_then_passes(h: Harness, sandbox: Sandbox) -> None:
    """A check still running is re-polled, the thread says what golive waits for, then green."""
    sandbox.github.pending_then_green(REPOSITORY, BRANCH, "web-portal", polls=2)
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("ci").outcome is Outcome.PASSED
    assert results(h, "ci")["ci:web-portal"].evidence["polls"] == 3
    assert any("waiting for CI on main: web-portal" in t for t in thread_texts(h))


async def test_pending_ci_fails_when_the_wait_runs_out(h: Harness, sandbox: Sandbox) -> None:
    """A check that stays pending past ci.wait fails, naming it."""
    sandbox.github.set_check_run(REPOSITORY, BRANCH, "web-portal", status="in_progress")
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("ci").failing == ("ci:web-portal",)
    summary = results(h, "ci")["ci:web-portal"].summary
    assert summary.startswith("web-portal is in_progress after waiting")


async def test_missing_check_fails_by_name(h: Harness, sandbox: Sandbox) -> None:
    """A required check that never reported is a failure that names it."""
    sandbox.github.remove_check_runs(REPOSITORY, BRANCH, "smoke-core-flow")
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert results(h, "ci")["ci:smoke-core-flow"].summary == (
        "smoke-core-flow has not reported on main"
    )


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("html", "answered an HTML page instead of JSON"),
        ("garbage", "answered malformed JSON"),
        ("500", "answered HTTP 500"),
    ],
)
async def test_provider_garbage_is_an_error_never_a_pass(
    h: Harness, sandbox: Sandbox, fault: str, words: str
) -> None:
    """HTML, malformed JSON and 5xx from GitHub and PagerDuty are errors with the reason."""
    sandbox.github.set_fault(fault)
    sandbox.pagerduty.set_fault(fault)
    await h.say(COMMANDER, "/golive start v2.4.0")
    for step, name in (("ci", "ci:web-portal"), ("incidents", "incidents")):
        assert h.step(step).status is StepStatus.BLOCKED
        verdict = results(h, step)[name]
        assert verdict.status == "error" and words in verdict.summary, verdict


async def test_bad_credentials_are_named(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    """A token the provider refuses is an error that says to check the token, never a pass."""
    from bot.domain.config import validate_config

    config = validate_config(sandbox_config(sandbox, tmp_path / "repo"))
    secrets = {**sandbox.tokens, "GITHUB_TOKEN": "ghp_wrong", "REGISTRY_TOKEN": "nope"}
    h = Harness(config, clock, ":memory:", secrets=secrets)
    await h.say(COMMANDER, "/golive start v2.4.0")
    ci = results(h, "ci")["ci:python-services"]
    assert ci.status == "error"
    assert ci.summary == "GitHub refused the credentials (HTTP 401); check the token"
    assert "ghp_wrong" not in str(ci)
    assert results(h, "rollback")["rollback:web-portal"].status == "error"
    await h.service.close()


async def test_missing_secret_is_an_error_naming_the_variable(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    """Without the token in the environment the check says which variable is missing."""
    from bot.domain.config import validate_config

    config = validate_config(sandbox_config(sandbox, tmp_path / "repo"))
    secrets = {k: v for k, v in sandbox.tokens.items() if k != "PAGERDUTY_API_TOKEN"}
    h = Harness(config, clock, ":memory:", secrets=secrets)
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "incidents")["incidents"]
    assert verdict.status == "error"
    assert "PAGERDUTY_API_TOKEN is not set" in verdict.summary
    await h.service.close()


async def test_paginated_answers_are_followed(h: Harness, sandbox: Sandbox) -> None:
    """Required checks on GitHub's second page and tags on the registry's later pages count."""
    for i in range(130):
        sandbox.github.set_check_run(REPOSITORY, BRANCH, f"lint-{i:03}")
    sandbox.github.set_check_run(REPOSITORY, BRANCH, "smoke-core-flow")  # now on page 2
    sandbox.registry.page_size = 1
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("ci").outcome is Outcome.PASSED
    assert h.step("rollback").outcome is Outcome.PASSED
    pages = [r for r in sandbox.github.requests if r.path.endswith("/check-runs")]
    assert len(pages) >= 2
    tag_pages = [r for r in sandbox.registry.requests if r.path.endswith("/tags/list")]
    assert len(tag_pages) >= 3 * 4


async def test_open_incident_blocks_until_resolved(h: Harness, sandbox: Sandbox) -> None:
    """An open high-urgency incident fails with its title and link; after it resolves, retry."""
    incident = sandbox.pagerduty.add_incident("Checkout latency above SLO")
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "incidents")["incidents"]
    assert verdict.status == "fail"
    assert "Checkout latency above SLO (triggered)" in verdict.summary
    assert "http" in verdict.summary
    sandbox.pagerduty.resolve_incident(incident.id)
    await h.say(ON_CALL, "/golive retry incidents")
    assert h.step("incidents").outcome is Outcome.PASSED


async def test_no_stable_rollback_target_fails(h: Harness, sandbox: Sandbox) -> None:
    """A service whose registry holds no stable tag below the release cannot roll back."""
    sandbox.registry.set_tags("platform/billing-api", ["2.4.0-rc.1", "latest", "2.5.0"])
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "rollback")["rollback:billing-api"]
    assert verdict.status == "fail"
    assert verdict.summary.startswith("no stable tag below v2.4.0 in platform/billing-api")
    assert h.step("rollback").failing == ("rollback:billing-api",)


async def test_rollback_target_is_the_last_completed_release(h: Harness, sandbox: Sandbox) -> None:
    """After golive completed 2.3.0, the next release's target is 2.3.0, not the newer 2.3.1."""
    await h.say(COMMANDER, "/golive start v2.3.0")
    await walk(h)
    await h.say(COMMANDER, "/golive complete")
    assert h.release().status is ReleaseStatus.COMPLETED
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "rollback")["rollback:billing-api"]
    assert verdict.evidence["target"] == "2.3.0"
    assert verdict.evidence["rule"] == "the version of the last release golive completed"
    await h.say(ON_CALL, "/golive rollback testing the plan")
    plan = next(m.text for m in h.messages() if m.text.startswith("⏪") and m.kind != "update")
    assert "billing-api: roll back to `platform/billing-api:2.3.0`" in plan


async def test_failing_preflight_shows_its_output_and_can_rerun(h: Harness, tmp_path: Path) -> None:
    """Exit code decides; the output tail is in the message; `/golive preflight` reruns it."""
    (tmp_path / "repo").mkdir(exist_ok=True)
    (tmp_path / "repo" / "mode").write_text("fail")
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h)
    verdict = results(h, "preflight")["preflight"]
    assert verdict.status == "fail" and verdict.evidence["exit_code"] == 3
    blocked = next(t for t in thread_texts(h) if t.startswith("❌ *Preflight*"))
    assert "2 unapplied migrations" in blocked
    (tmp_path / "repo" / "mode").write_text("pass")
    await h.say(COMMANDER, "/golive preflight full")
    verdict = results(h, "preflight")["preflight"]
    assert verdict.status == "pass"
    assert "--include-frontend" in verdict.evidence["output_tail"]


async def test_preflight_timeout_kills_the_process_group(h: Harness, tmp_path: Path) -> None:
    """A hanging preflight is stopped with everything it started, and says so."""
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "mode").write_text("hang")
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h)
    verdict = results(h, "preflight")["preflight"]
    assert verdict.status == "error"
    assert verdict.summary == "quick preflight did not finish within 2s; golive stopped it"
    child = int((repo / "child.pid").read_text())
    assert not _alive(child)


async def test_major_release_runs_the_full_preflight(h: Harness) -> None:
    """`major` releases run the full variant (with the frontend)."""
    await h.say(COMMANDER, "/golive start v3.0.0 major")
    await walk(h, "preflight")
    verdict = results(h, "preflight")["preflight"]
    assert verdict.evidence["variant"] == "full"
    assert "--include-frontend" in verdict.evidence["output_tail"]


async def test_health_gates_between_waves(h: Harness, sandbox: Sandbox) -> None:
    """A wave whose service is unhealthy blocks the next wave until it recovers and is retried."""
    sandbox.product.set_health("billing-api", False)
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h)
    wave = h.step("wave-2")
    assert wave.status is StepStatus.BLOCKED and wave.failing == ("health:billing-api",)
    assert h.step("portal").status is StepStatus.PENDING
    sandbox.product.set_health("billing-api", True)
    reply = await h.reply(COMMANDER, "/golive retry wave-2")
    assert reply == "Running Backend wave 2 again."
    assert h.step("wave-2").outcome is Outcome.APPROVED
    portal = h.step("portal")
    assert portal.status is StepStatus.AWAITING
    gate = results(h, "portal")
    assert set(gate) == {"health:partner-registry", "health:billing-api"}


def _alive(pid: int) -> bool:
    """True while a process runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_preflight_script_is_not_a_shell() -> None:
    """The preflight argv is executed directly; shell syntax stays literal."""
    import inspect

    from checks import preflight

    assert "create_subprocess_exec" in inspect.getsource(preflight)
    assert "shell" not in textwrap.dedent(inspect.getsource(preflight.run_preflight))


async def test_provider_down_is_an_error(h: Harness, sandbox: Sandbox) -> None:
    """A provider that does not answer at all (connection refused) is an error, never a pass."""
    await sandbox.github.stop()
    await sandbox.registry.stop()
    await h.say(COMMANDER, "/golive start v2.4.0")
    ci = results(h, "ci")["ci:smoke-core-flow"]
    assert ci.status == "error" and ci.summary.startswith("could not reach GitHub")
    rollback = results(h, "rollback")["rollback:billing-api"]
    assert rollback.status == "error"
    assert rollback.summary.startswith("could not reach the registry")
    assert h.step("ci").status is StepStatus.BLOCKED


LEAKY = """\
import os, sys
print("env:", dict(os.environ))
# What a script could dig out of /proc/<golive's pid>/environ or a config file it reads.
print(open("leak.txt").read())
sys.exit(1)
"""


async def test_no_secret_reaches_the_database_or_slack(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    """A preflight printing its environment and every secret, credentials in the notes URL and a
    token pasted into a note: none of them is stored or posted in the clear."""
    from bot.domain.config import validate_config

    repo = tmp_path / "repo"
    data = sandbox_config(sandbox, repo)
    data["preflight"].update(quick=["python3", "leaky.py"], env=["DEPLOY_READ_TOKEN"])
    notes = sandbox.urls["notes"].replace("http://", "http://notes:pw@")
    data["preconditions"]["release_notes"]["url"] = notes + "?access_token=notes-access-0001"
    data["monitoring"]["pagerduty_routing_key_env"] = "PAGERDUTY_ROUTING_KEY"
    data["verification"] = sandbox.config_overrides()["verification"]
    data["actions"] = sandbox.action_overrides()  # names ARGOCD_TOKEN, a secret like the rest
    secrets = {
        **sandbox.tokens,
        "SLACK_BOT_TOKEN": "xoxb-1111-2222-golive-bot-token",
        "SLACK_SIGNING_SECRET": "8f7e6d5c4b3a29180f7e6d5c4b3a2918",
        "SLACK_APP_TOKEN": "xapp-1-A0000-golive-app-token",
        "DEPLOY_READ_TOKEN": "deploy-read-token-for-the-preflight",
    }
    (repo / "leaky.py").write_text(LEAKY)
    (repo / "leak.txt").write_text("\n".join(f"{k}={v}" for k, v in secrets.items()))
    h = Harness(validate_config(data), clock, ":memory:", secrets=secrets)
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "preflight")
    await h.say(COMMANDER, f"/golive note the token was {secrets['GITHUB_TOKEN']} all along")
    await h.settle()

    database = "\n".join(h.store.db.conn.iterdump())
    posted = "\n".join(h.output)
    for value in [*secrets.values(), "notes:pw@", "notes-access-0001"]:
        assert value not in database, value
        assert value not in posted, value
    assert "[redacted]" in posted and "[redacted]" in database
    flight = results(h, "preflight")["preflight"]
    output = flight.evidence["output"]
    assert flight.status == "fail" and "DEPLOY_READ_TOKEN=[redacted]" in output
    assert "SLACK_BOT_TOKEN" not in output.split("\n")[0]  # the first line is its environment
    assert "notes:[redacted]@" in h.approval_message("notes").text
    await h.service.close()


async def test_old_open_incident_blocks(h: Harness, sandbox: Sandbox) -> None:
    """A high-urgency incident opened 40 days ago and still open fails the incidents check:
    golive asks PagerDuty for every age, not its default last month."""
    sandbox.pagerduty.set_fault_switch("old_open_incident")
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "incidents")["incidents"]
    assert verdict.status == "fail", verdict
    assert "Primary database replica lag" in verdict.summary
    [asked] = sandbox.pagerduty.requests_to("/incidents")
    assert asked.param("date_range") == "all"


async def test_endless_incident_pages_are_an_error(h: Harness, sandbox: Sandbox) -> None:
    """PagerDuty answering `more: true` with empty pages is an error naming it, never a pass."""
    sandbox.pagerduty.set_fault_switch("endless_pages")
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "incidents")["incidents"]
    assert verdict.status == "error", verdict
    assert "`more: true`" in verdict.summary and "empty page" in verdict.summary
    assert len(sandbox.pagerduty.requests_to("/incidents")) == 1


async def test_skipped_and_neutral_check_runs_pass(h: Harness, sandbox: Sandbox) -> None:
    """GitHub lets `skipped` and `neutral` required check runs merge; so does golive."""
    sandbox.github.set_check_run(REPOSITORY, BRANCH, "web-portal", conclusion="skipped")
    sandbox.github.set_check_run(REPOSITORY, BRANCH, "smoke-core-flow", conclusion="neutral")
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("ci").outcome is Outcome.PASSED
    assert "skipped" in results(h, "ci")["ci:web-portal"].summary


async def test_failing_status_is_not_hidden_by_a_green_check_run(
    h: Harness, sandbox: Sandbox
) -> None:
    """A required name must pass everywhere it reports: a failing commit status of the same name
    fails CI even though its check run succeeded."""
    sandbox.github.set_commit_status(REPOSITORY, BRANCH, "smoke-core-flow", "failure")
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("ci").failing == ("ci:smoke-core-flow",)
    summary = results(h, "ci")["ci:smoke-core-flow"].summary
    assert "reported failure (its commit status" in summary and "succeeded" in summary


async def test_required_status_on_the_second_page_counts(h: Harness, sandbox: Sandbox) -> None:
    """The combined status is read to its last page: a required context GitHub lists on page 2
    has reported, and its state decides."""
    sandbox.github.remove_check_runs(REPOSITORY, BRANCH, "smoke-core-flow")
    sandbox.github.set_commit_status(REPOSITORY, BRANCH, "smoke-core-flow", "success")
    for i in range(130):  # newer contexts come first: the required one ends up on page 2
        sandbox.github.set_commit_status(REPOSITORY, BRANCH, f"lint/{i:03}", "success")
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("ci").outcome is Outcome.PASSED
    pages = [r for r in sandbox.github.requests if r.path.endswith("/status")]
    assert [r.param("page") for r in pages] == [None, "2"]


async def test_rate_limit_beyond_the_wait_is_reported_as_rate_limiting(
    h: Harness, sandbox: Sandbox
) -> None:
    """GitHub's 403 rate-limit answer (x-ratelimit-remaining: 0) that lasts past ci.wait is an
    error saying GitHub is rate-limiting golive, not a bad token."""
    sandbox.github.set_fault_switch("primary_rate_limit", seconds=3600)
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "ci")["ci:web-portal"]
    assert verdict.status == "error", verdict
    assert verdict.summary.startswith("GitHub is rate-limiting golive (HTTP 403")
    assert "the token is not the problem" in verdict.summary
    assert "credentials" not in verdict.summary


def rollback_harness(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock, **rollback: str
) -> Harness:
    """A sandbox harness whose rollback section is `registry_url` plus `rollback`; the
    registry's username and password are in the environment as REGISTRY_USER/REGISTRY_PASSWORD."""
    from bot.domain.config import validate_config

    data = sandbox_config(sandbox, tmp_path / "repo")
    data["preconditions"]["rollback"] = {"registry_url": sandbox.registry.url, **rollback}
    secrets = {
        **sandbox.tokens,
        "REGISTRY_USER": registry_module.DEFAULT_USERNAME,
        "REGISTRY_PASSWORD": registry_module.DEFAULT_PASSWORD,
    }
    return Harness(validate_config(data), clock, ":memory:", secrets=secrets)


async def test_registry_token_flow_anonymous_pull(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    """A registry answering 401 with a Bearer challenge hands golive an anonymous pull token
    from its realm; golive retries with it and reuses it for every page of that image."""
    sandbox.registry.auth = "anonymous"
    sandbox.registry.page_size = 1
    h = rollback_harness(sandbox, tmp_path, clock)
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("rollback").outcome is Outcome.PASSED, results(h, "rollback")
    assert len(sandbox.registry.issued) == 3  # one token per image, not one per page
    assert all(t.user is None for t in sandbox.registry.issued)
    pages = sandbox.registry.requests_to("/v2/platform/billing-api/tags/list")
    assert len(pages) == 1 + len(TAGS)  # the challenged first try, then one request per tag
    await h.service.close()


async def test_registry_token_flow_with_credentials(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    """A registry whose realm wants credentials gets username_env/password_env as Basic auth
    on the token request only; without them the error says which keys to set."""
    sandbox.registry.auth = "credentials"
    keys = {"username_env": "REGISTRY_USER", "password_env": "REGISTRY_PASSWORD"}
    h = rollback_harness(sandbox, tmp_path, clock, **keys)
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("rollback").outcome is Outcome.PASSED, results(h, "rollback")
    assert {t.user for t in sandbox.registry.issued} == {registry_module.DEFAULT_USERNAME}
    listings = sandbox.registry.requests_to("/v2/platform/")
    assert not any((r.header("authorization") or "").startswith("Basic") for r in listings)
    await h.service.close()
    anonymous = rollback_harness(sandbox, tmp_path, clock)
    await anonymous.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(anonymous, "rollback")["rollback:billing-api"]
    assert verdict.status == "error"
    assert "does not allow anonymous pulls" in verdict.summary
    assert "username_env and password_env" in verdict.summary
    await anonymous.service.close()


async def test_registry_basic_auth(sandbox: Sandbox, tmp_path: Path, clock: FakeClock) -> None:
    """A registry challenging with `Basic` (ECR, many private registries) gets the configured
    username and password as Basic credentials."""
    sandbox.registry.auth = "basic"
    keys = {"username_env": "REGISTRY_USER", "password_env": "REGISTRY_PASSWORD"}
    h = rollback_harness(sandbox, tmp_path, clock, **keys)
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert h.step("rollback").outcome is Outcome.PASSED, results(h, "rollback")
    assert sandbox.registry.issued == []
    await h.service.close()


async def test_registry_pages_without_link(h: Harness, sandbox: Sandbox) -> None:
    """A registry that sends no `Link` header is asked again with `last=` while its pages come
    back full (OCI `n`/`last`), so a rollback tag beyond the first page is found."""
    sandbox.registry.links = False
    fillers = [f"1.0.0-build.{i:04}" for i in range(1200)]  # sort before every release tag
    sandbox.registry.set_tags("platform/billing-api", [*TAGS, *fillers])
    await h.say(COMMANDER, "/golive start v2.4.0")
    verdict = results(h, "rollback")["rollback:billing-api"]
    assert verdict.status == "pass", verdict
    assert verdict.evidence["target"] == "2.3.1"
    pages = sandbox.registry.requests_to("/v2/platform/billing-api/tags/list")
    assert [r.param("last") for r in pages] == [None, fillers[999]]


async def test_foreign_next_page_links_are_errors_and_never_called(
    h: Harness, sandbox: Sandbox
) -> None:
    """A GitHub or registry `Link` next page on another origin is an error naming that host;
    neither token is ever sent there."""
    async with FakeGitHub() as github, FakeRegistry() as registry:
        for i in range(130):
            sandbox.github.set_check_run(REPOSITORY, BRANCH, f"lint-{i:03}")
        sandbox.github.link_base = github.url
        sandbox.registry.page_size = 1
        sandbox.registry.link_base = registry.url
        await h.say(COMMANDER, "/golive start v2.4.0")
        verdicts = [
            results(h, "ci")["ci:web-portal"],
            results(h, "rollback")["rollback:web-portal"],
        ]
        for verdict, other in zip(verdicts, (github, registry), strict=True):
            assert verdict.status == "error", verdict
            assert f"another host ({other.url.removeprefix('http://')})" in verdict.summary
            assert other.requests == []


async def test_health_redirect_to_another_host_is_an_error(h: Harness, sandbox: Sandbox) -> None:
    """A health URL redirecting to another host (an SSO page) is an error naming that host,
    and golive sends nothing there."""
    async with FakeRegistry(token=None) as other:  # any recording server will do
        sandbox.product.sso_url = f"{other.url}/login"
        sandbox.product.set_health_answer("billing-api", "sso_redirect")
        await h.say(COMMANDER, "/golive start v2.4.0")
        await walk(h)
        verdict = results(h, "wave-2")["health:billing-api"]
        assert verdict.status == "error", verdict
        assert f"another host ({other.url.removeprefix('http://')})" in verdict.summary
        assert other.requests == []


async def test_health_declared_json_must_match(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    """A service declaring `expect_json` is unhealthy when its 200 answer says otherwise."""
    from bot.domain.config import validate_config

    data = sandbox_config(sandbox, tmp_path / "repo")
    for service in data["services"]:
        service["expect_json"] = {"status": "ok"}
    h = Harness(validate_config(data), clock, ":memory:", secrets=sandbox.tokens)
    sandbox.product.set_health_answer("billing-api", "degraded")
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h)
    verdict = results(h, "wave-2")["health:billing-api"]
    assert verdict.status == "fail", verdict
    assert 'status is "degraded", expected "ok"' in verdict.summary
    assert results(h, "wave-1")["health:partner-registry"].status == "pass"
    await h.service.close()


async def test_release_notes_behind_a_sign_in_are_an_error(h: Harness, sandbox: Sandbox) -> None:
    """Release notes that redirect to another host, or end on a sign-in form, are an error
    (never a pass); a redirect within the notes' own host is followed."""
    async with FakeRegistry(token=None) as other:
        sandbox.product.notes_redirect = f"{other.url}/login"
        await h.say(COMMANDER, "/golive start v2.4.0")
        verdict = results(h, "notes")["release-notes"]
        assert verdict.status == "error", verdict
        assert f"another host ({other.url.removeprefix('http://')})" in verdict.summary
        assert other.requests == []
    sandbox.product.notes_redirect = "/notes/{version}-final"
    sandbox.product.set_notes("v2.4.0-final", LOGIN_PAGE)
    await h.say(COMMANDER, "/golive retry notes")
    verdict = results(h, "notes")["release-notes"]
    assert verdict.status == "error", verdict
    assert "answered a sign-in page" in verdict.summary
    sandbox.product.set_notes("v2.4.0-final", "<h1>Release notes v2.4.0</h1>")
    await h.say(COMMANDER, "/golive retry notes")
    verdict = results(h, "notes")["release-notes"]
    assert verdict.status == "pass", verdict
    assert verdict.evidence["final_url"].endswith("/notes/v2.4.0-final")
