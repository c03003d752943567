"""The fake GitHub's Actions and the fake Argo CD speak their providers' wire formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from bot.sandbox import FakeArgoCD, FakeClock, FakeGitHub
from bot.sandbox import argocd as argocd_fake
from bot.sandbox.github import DEFAULT_TOKEN

REPO = "acme/platform"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
CD_AUTH = {"Authorization": f"Bearer {argocd_fake.DEFAULT_TOKEN}"}


@pytest.fixture
async def github(clock: FakeClock) -> AsyncIterator[FakeGitHub]:
    """A FakeGitHub with a deploy workflow on main, runs lasting 1 s queued + 4 s running."""
    fake = FakeGitHub(clock=clock, run_durations=(1.0, 4.0))
    fake.set_ref(REPO, "main")
    fake.actions.add_workflow(
        REPO,
        "deploy.yml",
        required=("service",),
        inputs=("golive_run",),
        run_name="Deploy ${{ inputs.service }} [${{ inputs.golive_run }}]",
        jobs=("build", "deploy"),
    )
    async with fake:
        yield fake


def dispatches(github: FakeGitHub) -> str:
    """The dispatch URL of the deploy workflow."""
    return f"{github.url}/repos/{REPO}/actions/workflows/deploy.yml/dispatches"


async def test_dispatch_answers_with_run_details_or_no_content(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """`return_run_details: true` gets 200 with the run's id and links; without it, 204."""
    body = {"ref": "main", "inputs": {"service": "api"}}
    detailed = await client.post(
        dispatches(github), json={**body, "return_run_details": True}, headers=AUTH
    )
    assert detailed.status_code == 200
    data = detailed.json()
    assert set(data) == {"workflow_run_id", "run_url", "html_url"}
    assert data["run_url"] == f"{github.url}/repos/{REPO}/actions/runs/{data['workflow_run_id']}"
    plain = await client.post(dispatches(github), json=body, headers=AUTH)
    assert plain.status_code == 204 and plain.content == b""
    assert len(github.actions.runs()) == 2


async def test_enterprise_server_refuses_return_run_details(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """In GHES mode the parameter is a key the schema does not permit: 422, nothing started."""
    github.actions.run_details = False
    body = {"ref": "main", "inputs": {"service": "api"}, "return_run_details": True}
    refused = await client.post(dispatches(github), json=body, headers=AUTH)
    assert refused.status_code == 422
    assert '"return_run_details" is not a permitted key.' in refused.json()["message"]
    assert github.actions.runs() == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"inputs": {"service": "api"}}, 422, '"ref" wasn\'t supplied'),
        ({"ref": "nope", "inputs": {"service": "api"}}, 422, "No ref found for: nope"),
        ({"ref": "main", "inputs": {}}, 422, "Required input 'service' not provided"),
        (
            {"ref": "main", "inputs": {"service": "api", "colour": "blue"}},
            422,
            'Unexpected inputs provided: ["colour"]',
        ),
    ],
)
async def test_dispatch_validates_like_github(
    github: FakeGitHub,
    client: httpx.AsyncClient,
    body: dict[str, object],
    status: int,
    message: str,
) -> None:
    """A missing ref, an unknown ref, a missing required input or an undeclared one: 422."""
    answer = await client.post(dispatches(github), json=body, headers=AUTH)
    assert answer.status_code == status and message in answer.json()["message"]


async def test_unknown_workflow_and_missing_token(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """An unknown workflow is 404; a request without the token is 401."""
    url = f"{github.url}/repos/{REPO}/actions/workflows/nope.yml/dispatches"
    assert (await client.post(url, json={"ref": "main"}, headers=AUTH)).status_code == 404
    assert (await client.post(dispatches(github), json={"ref": "main"})).status_code == 401


async def test_run_progresses_on_the_clock_and_fails_in_the_switched_job(
    github: FakeGitHub, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """queued → in_progress → completed over the run's durations; with the fault switch on,
    the run concludes failure and its jobs API names the failed job."""
    github.actions.fail_runs(job="deploy")
    body = {"ref": "main", "inputs": {"service": "api"}, "return_run_details": True}
    run_id = (await client.post(dispatches(github), json=body, headers=AUTH)).json()[
        "workflow_run_id"
    ]
    url = f"{github.url}/repos/{REPO}/actions/runs/{run_id}"
    seen = []
    for _ in range(4):
        run = (await client.get(url, headers=AUTH)).json()
        seen.append((run["status"], run["conclusion"]))
        clock.advance(2.0)
    assert seen == [
        ("queued", None),
        ("in_progress", None),
        ("in_progress", None),
        ("completed", "failure"),
    ]
    jobs = (await client.get(f"{url}/jobs", headers=AUTH)).json()["jobs"]
    assert [(j["name"], j["conclusion"]) for j in jobs] == [
        ("build", "success"),
        ("deploy", "failure"),
    ]


async def test_runs_are_listed_after_a_moment_newest_first_and_filtered(
    github: FakeGitHub, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A run shows in the list a second after its dispatch; `event` and `created` filter it;
    the title carries the inputs the run-name shows."""
    github.actions.add_run(
        REPO,
        "deploy.yml",
        {"service": "old"},
        event="push",
        created_at=clock() - timedelta(hours=1),
    )
    await client.post(
        dispatches(github),
        json={"ref": "main", "inputs": {"service": "api", "golive_run": "golive-42"}},
        headers=AUTH,
    )
    url = f"{github.url}/repos/{REPO}/actions/workflows/deploy.yml/runs"
    since = (clock() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = {"event": "workflow_dispatch", "created": f">={since}"}
    assert (await client.get(url, params=query, headers=AUTH)).json()["workflow_runs"] == []
    clock.advance(1.0)
    listed = (await client.get(url, params=query, headers=AUTH)).json()
    assert listed["total_count"] == 1
    assert listed["workflow_runs"][0]["display_title"] == "Deploy api [golive-42]"
    everything = (await client.get(url, headers=AUTH)).json()["workflow_runs"]
    assert [r["event"] for r in everything] == ["workflow_dispatch", "push"]


@pytest.fixture
async def argocd(clock: FakeClock) -> AsyncIterator[FakeArgoCD]:
    """A FakeArgoCD with the portal app: a sync runs 2 s, then 3 s of Progressing."""
    fake = FakeArgoCD(clock=clock, durations=(2.0, 3.0))
    fake.add_app("web-portal")
    async with fake:
        yield fake


async def test_argocd_sync_runs_then_settles_healthy(
    argocd: FakeArgoCD, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A sync answers the app with `operation` set; the operation runs, succeeds, and the app
    is Progressing before it is Synced and Healthy; a second sync while one runs is refused."""
    app = f"{argocd.url}/api/v1/applications/web-portal"
    assert (await client.get(app)).status_code == 401
    synced = await client.post(f"{app}/sync", json={"revision": "v2.4.0"}, headers=CD_AUTH)
    assert synced.status_code == 200 and synced.json()["operation"]["sync"]["revision"] == "v2.4.0"
    again = await client.post(f"{app}/sync", json={}, headers=CD_AUTH)
    assert again.status_code == 400 and again.json()["code"] == 9
    states = []
    for _ in range(4):
        body = (await client.get(app, headers=CD_AUTH)).json()
        status = body["status"]
        states.append(
            (
                "operation" in body,
                status["operationState"]["phase"],
                status["sync"]["status"],
                status["health"]["status"],
            )
        )
        clock.advance(2.0)
    assert states == [
        (True, "Running", "OutOfSync", "Progressing"),
        (False, "Succeeded", "Synced", "Progressing"),
        (False, "Succeeded", "Synced", "Progressing"),
        (False, "Succeeded", "Synced", "Healthy"),
    ]


async def test_argocd_fault_switch_fails_or_degrades(
    argocd: FakeArgoCD, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """With the switch on `failed` the operation ends Failed with a message; on `degraded`
    the app ends Degraded."""
    app = f"{argocd.url}/api/v1/applications/web-portal"
    argocd.fail_syncs("failed", message="admission webhook denied the request")
    await client.post(f"{app}/sync", json={}, headers=CD_AUTH)
    clock.advance(10.0)
    state = (await client.get(app, headers=CD_AUTH)).json()["status"]["operationState"]
    assert (state["phase"], state["message"]) == ("Failed", "admission webhook denied the request")
    argocd.fail_syncs("degraded", message="ImagePullBackOff")
    await client.post(f"{app}/sync", json={}, headers=CD_AUTH)
    clock.advance(10.0)
    health = (await client.get(app, headers=CD_AUTH)).json()["status"]["health"]
    assert health == {"status": "Degraded", "message": "ImagePullBackOff"}
