"""The merge gate on GitHub and who owns a freeze, through the console against the fake GitHub.

The gate always reports `golive/merge-freeze` on every open pull request into the frozen branch;
it posts only what changed, sets right a status changed behind its back, lets the commander
allow one head through a freeze, and waits out GitHub's rate limits. A freeze belongs to the
release that took it, whatever release is newest in the channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.model import ReleaseStatus
from bot.engine.records import record_markdown
from bot.sandbox import FakeGitHub, Sandbox
from bot.sandbox.sandbox import BRANCH, REPOSITORY
from checks.freeze import CONTEXT, PullHead
from tests.conftest import BACKEND, COMMANDER, ON_CALL, Harness, config_dict, walk

STATUSES = f"/repos/{REPOSITORY}/statuses/"


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """The fakes on loopback, on the test's clock (so rate limits end when the test says)."""
    async with Sandbox.start(traffic=False, history=0, clock=clock.now) as sb:
        yield sb


def gate_config(sb: Sandbox, **ci: Any) -> dict[str, Any]:
    """The base test config with only CI (and so the merge gate) pointed at the fake GitHub."""
    section = {**sb.config_overrides()["preconditions"]["ci"], "wait": "2s", **ci}
    section["poll_interval"] = "50ms"
    return config_dict(preconditions={"ci": section})


@pytest.fixture
async def h(sandbox: Sandbox, clock: FakeClock) -> AsyncIterator[Harness]:
    """A console harness whose merge gate talks to the fake GitHub."""
    harness = Harness(validate_config(gate_config(sandbox)), clock, secrets=sandbox.tokens)
    yield harness
    await harness.service.close()


def posts(github: FakeGitHub) -> int:
    """How many statuses golive has POSTed to the fake GitHub."""
    return len(github.requests_to(STATUSES, "POST"))


def shown(github: FakeGitHub, sha: str) -> str | None:
    """The merge-gate state GitHub shows on a commit."""
    status = github.latest_status(REPOSITORY, sha, CONTEXT)
    return status.state if status else None


def open_heads(github: FakeGitHub) -> dict[int, str]:
    """Number → head sha of every open pull request into the frozen branch."""
    return {
        p.number: p.head_sha
        for p in github.repo(REPOSITORY).pulls
        if p.state == "open" and p.base_ref == BRANCH
    }


def frozen_versions(h: Harness) -> list[str]:
    """Versions of the releases whose freeze is on, as the database says."""
    return [r[0] for r in h.store.db.execute("select version from releases where frozen = 1")]


def agrees(h: Harness, github: FakeGitHub) -> bool:
    """GitHub shows, on every open head, what the database says golive set there."""
    remembered = h.store.gate_statuses(REPOSITORY)
    return all(
        sha in remembered and shown(github, sha) == remembered[sha].state
        for sha in open_heads(github).values()
    )


async def test_outside_a_freeze_every_open_pull_gets_success(h: Harness, sandbox: Sandbox) -> None:
    """Without a freeze, every open pull request into the branch (every page) gets `success`."""
    github = sandbox.github
    for n in range(105):
        github.add_pull(REPOSITORY, f"Feature {n}")
    await h.runtime.freeze.sync()
    heads = open_heads(github)
    assert len(heads) == 107
    assert {shown(github, sha) for sha in heads.values()} == {"success"}
    backport = next(p for p in github.repo(REPOSITORY).pulls if p.base_ref != BRANCH)
    assert shown(github, backport.head_sha) is None  # another base branch is not gated
    assert len(github.requests_to(f"/repos/{REPOSITORY}/pulls", "GET")) >= 2  # two pages read
    status = github.latest_status(REPOSITORY, heads[101], CONTEXT)
    assert status is not None and status.description == "No merge freeze: merges may proceed"


async def test_the_sweep_posts_only_changes(h: Harness, sandbox: Sandbox) -> None:
    """A status GitHub already has is not posted again; a new pull or a freeze posts what
    changed, once."""
    github = sandbox.github
    await h.runtime.freeze.sync()
    assert posts(github) == 2
    await h.runtime.freeze.sync()
    await h.runtime.freeze.sync()
    assert posts(github) == 2
    github.add_pull(REPOSITORY, "Late feature")  # no webhook: the sweep finds it
    await h.runtime.freeze.sync()
    assert posts(github) == 3
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    assert posts(github) == 6
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"failure"}
    failing = github.latest_status(REPOSITORY, open_heads(github)[101], CONTEXT)
    assert failing is not None
    assert failing.description == "Frozen for release v2.4.0 until it completes"
    for _ in range(3):
        await h.runtime.freeze.sync()
    assert posts(github) == 6
    await h.say(COMMANDER, "/golive abort testing the gate")
    assert posts(github) == 9
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"success"}


async def test_github_down_delays_the_gate(h: Harness, sandbox: Sandbox) -> None:
    """GitHub answering 500 when merges freeze delays the gate; the next sweep sets it."""
    github = sandbox.github
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "preflight")
    github.set_fault("500")
    await walk(h, "freeze")
    assert h.release().frozen
    assert h.runtime.freeze.last_error == "GitHub answered HTTP 500"
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"success"}
    github.clear_faults()
    await h.runtime.freeze.sync()
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"failure"}


async def test_a_status_changed_behind_golives_back_is_set_right(
    h: Harness, sandbox: Sandbox
) -> None:
    """The sweep reads statuses back: `success` set on a frozen head by someone else is
    replaced by `failure` again, on the record."""
    github = sandbox.github
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    sha = open_heads(github)[101]
    github.set_commit_status(REPOSITORY, sha, CONTEXT, "success", "merged by hand")
    before = posts(github)
    await h.runtime.freeze.sync()
    assert shown(github, sha) == "failure"
    assert posts(github) == before + 1
    corrected = [e for e in h.store.events(h.release().id) if e.type == "freeze_gate_corrected"]
    assert corrected and corrected[0].data["github"] == "success"
    await h.runtime.freeze.sync()
    assert posts(github) == before + 1


async def test_the_commander_lets_one_pull_through_until_its_next_push(
    h: Harness, sandbox: Sandbox
) -> None:
    """`/golive freeze allow` marks one head `success` during the freeze, on the record and in
    the thread; a new push to that pull request is frozen again."""
    github = sandbox.github
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    old = open_heads(github)[101]
    refused = await h.reply(ON_CALL, "/golive freeze allow 101 hotfix")
    assert refused == (
        "only the commander (@alice) can let pull requests through the merge freeze of "
        "release v2.4.0"
    )
    assert "a reason is required" in await h.reply(COMMANDER, "/golive freeze allow 101")
    reply = await h.reply(COMMANDER, "/golive freeze allow 101 hotfix for invoice rounding")
    assert reply == f"Pull request #101 (head {old[:7]}) may merge during the freeze."
    assert shown(github, old) == "success"
    status = github.latest_status(REPOSITORY, old, CONTEXT)
    assert status is not None
    assert status.description == "Allowed through the v2.4.0 freeze: hotfix for invoice rounding"
    assert shown(github, open_heads(github)[102]) == "failure"
    named = "pull request #101 (Partner search: paginate results)"
    thread = [m.text for m in h.messages()]
    assert any(t.startswith(f"🚦 <@U0COMMAND> let {named} through") for t in thread)
    events = [e.type for e in h.store.events(h.release().id)]
    assert "allow_merge" in events and "merge_allowed" in events
    record = record_markdown(h.store, h.config, h.release().id)
    assert "## Merges allowed during the freeze" in record
    assert f"let {named} at `{old[:7]}` through" in record

    pushed = await github.push(REPOSITORY, 101)
    await h.runtime.freeze.sync()
    assert shown(github, pushed.head_sha) == "failure"
    assert shown(github, old) == "success"  # the allowed commit itself stays allowed
    assert any(m.text.startswith("🧊 Pull request #101 has a new head") for m in h.messages())


async def test_allowing_a_pull_is_refused_when_it_cannot_apply(
    h: Harness, sandbox: Sandbox
) -> None:
    """Outside a freeze, for an unknown, closed or merged pull request, or one into another
    branch, nothing is allowed and the commander hears why."""
    github = sandbox.github
    await h.say(COMMANDER, "/golive start v2.4.0")
    reply = await h.reply(COMMANDER, "/golive freeze allow 101 hotfix")
    assert reply == "merges are not frozen by any release in this channel"
    await walk(h, "freeze")
    github.close_pull(REPOSITORY, 102)
    backport = next(p for p in github.repo(REPOSITORY).pulls if p.base_ref != BRANCH)
    github.add_pull(REPOSITORY, "Shipped", number=150)
    github.close_pull(REPOSITORY, 150, merged=True)
    cases = {
        "999": "there is no pull request #999 in acme/platform",
        "102": "pull request #102 is closed; there is nothing to let through",
        "150": "pull request #150 is already merged; there is nothing to let through",
        str(backport.number): f"pull request #{backport.number} is into `release/2.3`, not "
        "`main`: the freeze does not hold it",
        "abc": "`abc` is not a pull request number",
    }
    for number, words in cases.items():
        assert (await h.reply(COMMANDER, f"/golive freeze allow {number} hotfix")).startswith(
            words
        )
    github.set_fault("500")
    unavailable = await h.reply(COMMANDER, "/golive freeze allow 101 hotfix")
    assert unavailable.startswith("golive could not ask GitHub about the pull request")
    assert h.store.merge_allowances() == []


async def test_a_rolled_back_freeze_is_never_orphaned(h: Harness, sandbox: Sandbox) -> None:
    """Rollback keeps v2.4.0's freeze; starting v2.4.1 asks for it to be lifted or taken over;
    taken over, v2.4.1 owns it on the record and aborting v2.4.1 lifts it: nothing stays frozen
    and GitHub agrees with the database."""
    github = sandbox.github
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    await h.say(ON_CALL, "/golive rollback 5xx doubled")
    first = h.release()
    assert first.frozen and first.status is ReleaseStatus.ROLLED_BACK
    refused = await h.reply(COMMANDER, "/golive start v2.4.1")
    assert refused.startswith("release v2.4.0 was rolled back and still holds the merge freeze")
    assert "`/golive unfreeze`" in refused and "`/golive start v2.4.1 take_freeze`" in refused
    assert h.release().id == first.id  # nothing was started
    stranger = await h.reply(BACKEND, "/golive start v2.4.1 take_freeze")
    assert stranger == (
        "only the commander (@alice) can take over the merge freeze of release v2.4.0"
    )

    started = await h.reply(COMMANDER, "/golive start v2.4.1 take_freeze")
    assert started.startswith("Release v2.4.1 started. It holds the merge freeze taken over")
    second = h.release()
    assert second.version == "v2.4.1" and second.frozen
    assert not h.store.load(first.id).release.frozen
    assert [e.type for e in h.store.events(second.id)][:2] == ["start", "freeze_taken_over"]
    assert "freeze_taken" in [e.type for e in h.store.events(first.id)]
    assert any("now belongs to release v2.4.1" in m.text for m in h.store.messages(first.id))
    frozen = github.latest_status(REPOSITORY, open_heads(github)[101], CONTEXT)
    assert frozen is not None and frozen.state == "failure"
    assert frozen.description == "Frozen for release v2.4.1 until it completes"

    assert (await h.reply(COMMANDER, "/golive abort not today")) == "Release aborted."
    assert frozen_versions(h) == []
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"success"}
    assert agrees(h, github)


async def test_unfreeze_lifts_the_holders_freeze_whatever_is_newest(
    h: Harness, sandbox: Sandbox
) -> None:
    """With a rolled-back release still frozen behind a newer one (a database from before
    ownership), abort of the newer release lifts only its own freeze, and `/golive unfreeze`
    names and lifts the old one; GitHub follows."""
    github = sandbox.github
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    await h.say(ON_CALL, "/golive rollback 5xx doubled")
    first = h.release()
    await h.say(COMMANDER, "/golive unfreeze")
    await h.say(COMMANDER, "/golive start v2.4.1")
    h.store.set_release_fields(first.id, frozen=1)  # the orphan an older golive left behind
    await walk(h, "freeze")
    second = h.release()
    assert second.version == "v2.4.1" and second.frozen
    assert (await h.reply(COMMANDER, "/golive abort not today")) == "Release aborted."
    assert frozen_versions(h) == ["v2.4.0"]
    announced = [m.text for m in h.store.messages(second.id) if m.kind == "announce"]
    assert any("stay frozen: release v2.4.0 still holds a freeze" in t for t in announced)
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"failure"}
    assert agrees(h, github)
    assert (await h.reply(COMMANDER, "/golive unfreeze")) == (
        "Merge freeze of release v2.4.0 lifted."
    )
    assert frozen_versions(h) == []
    assert {shown(github, sha) for sha in open_heads(github).values()} == {"success"}
    assert agrees(h, github)
    assert (await h.reply(COMMANDER, "/golive unfreeze")) == (
        "merges are not frozen by any release in this channel"
    )


@pytest.mark.parametrize(
    ("switch", "status"), [("secondary_rate_limit", 403), ("primary_rate_limit", 429)]
)
async def test_rate_limited_github_is_backed_off_not_hammered(
    h: Harness, sandbox: Sandbox, clock: FakeClock, switch: str, status: int
) -> None:
    """While GitHub rate-limits golive, the gate asks nothing more however often it is woken
    or a webhook arrives; once the limit lifts it sets every status."""
    github = sandbox.github
    gate = h.runtime.freeze
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    late = github.add_pull(REPOSITORY, "Late feature")
    github.set_fault_switch(switch, seconds=120, status=status)
    asked = len(github.requests)
    loop = asyncio.get_running_loop().create_task(gate.run())
    try:
        for _ in range(40):
            gate.wake()
            await asyncio.sleep(0.01)
        assert len(github.requests) - asked <= 1
        gate.pull_changed(_head(github, late.number))  # a webhook: the gate must ask GitHub
        await asyncio.sleep(0.1)
        assert len(github.requests) - asked == 1  # the one answer that said "rate limited"
        for _ in range(40):
            gate.pull_changed(_head(github, late.number))
            gate.wake()
            await asyncio.sleep(0.01)
        assert len(github.requests) - asked == 1
        assert gate.blocked_until is not None
        assert 110 <= (gate.blocked_until - clock.now()).total_seconds() <= 121
        assert gate.last_error is not None and "rate-limiting golive" in gate.last_error
        logged = h.store.db.execute("select data from events where type = 'freeze_gate_failed'")
        assert ["rate-limiting golive" in row[0] for row in logged] == [True]
        clock.advance(121)
        gate.wake()
        for _ in range(200):
            if shown(github, late.head_sha) == "failure":
                break
            await asyncio.sleep(0.01)
        assert {shown(github, sha) for sha in open_heads(github).values()} == {"failure"}
    finally:
        gate.stop()
        await loop


def _head(github: FakeGitHub, number: int) -> PullHead:
    pull = github.pull(REPOSITORY, number)
    assert pull is not None
    return PullHead(pull.number, pull.head_sha, "")


async def test_without_a_freeze_branch_nothing_is_asked_of_github(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    """No `freeze_branch`: the gate stays quiet and `freeze allow` says there is no gate."""
    data = gate_config(sandbox)
    del data["preconditions"]["ci"]["freeze_branch"]
    h = Harness(validate_config(data), clock, secrets=sandbox.tokens)
    await h.runtime.freeze.sync()
    assert sandbox.github.requests_to(f"/repos/{REPOSITORY}/pulls") == []
    assert h.runtime.freeze.next_wait() is None
    await h.service.close()



async def test_a_missing_token_is_said_once_and_not_retried_in_a_loop(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    """Without the GitHub token the gate says so once, on the record, and waits a sweep."""
    secrets = {k: v for k, v in sandbox.tokens.items() if k != "GITHUB_TOKEN"}
    h = Harness(validate_config(gate_config(sandbox)), clock, secrets=secrets)
    gate = h.runtime.freeze
    for _ in range(3):
        await gate.settle()
    assert gate.last_error == "GITHUB_TOKEN is not set, so pull requests cannot be marked"
    assert gate.next_wait() == 120.0
    logged = h.store.db.execute("select count(*) from events where type = 'freeze_gate_failed'")
    assert logged.fetchone() == (1,)
    assert sandbox.github.requests == []
    await h.service.close()
