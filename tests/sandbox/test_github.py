"""FakeGitHub speaks GitHub's REST wire format for checks, statuses and pull requests."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.sandbox import FakeClock, FakeGitHub, LoopbackServer
from bot.sandbox.github import DEFAULT_TOKEN

REPO = "acme/platform"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    """A FakeGitHub with the three required checks green on main."""
    fake = FakeGitHub()
    for name in ("python-services", "web-portal", "smoke-core-flow"):
        fake.set_check_run(REPO, "main", name)
    async with fake:
        yield fake


async def follow(client: httpx.AsyncClient, url: str, key: str | None) -> list[Any]:
    """Read every page by following rel="next" in the Link header."""
    items: list[Any] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url, headers=AUTH)
        assert response.status_code == 200
        body = response.json()
        items += body[key] if key else body
        next_url = response.links.get("next", {}).get("url")
    return items


@pytest.mark.parametrize("header", [None, "Bearer wrong", "token wrong", f"Basic {DEFAULT_TOKEN}"])
async def test_bad_or_missing_token_is_401(
    github: FakeGitHub, client: httpx.AsyncClient, header: str | None
) -> None:
    """Anything but the right Bearer/token credential gets 401 Bad credentials."""
    headers = {"Authorization": header} if header else {}
    response = await client.get(
        f"{github.url}/repos/{REPO}/commits/main/check-runs", headers=headers
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    assert "documentation_url" in response.json()


async def test_token_scheme_is_accepted(github: FakeGitHub, client: httpx.AsyncClient) -> None:
    """The legacy `token <t>` scheme is as good as Bearer."""
    response = await client.get(
        f"{github.url}/repos/{REPO}/commits/main/check-runs",
        headers={"Authorization": f"token {DEFAULT_TOKEN}"},
    )
    assert response.status_code == 200


async def test_check_runs_paginate_with_link_header(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """per_page splits check runs into pages linked by rel="next"/"last" like GitHub."""
    for i in range(4):
        github.set_check_run(REPO, "main", f"extra-{i}", status="queued")
    first = await client.get(
        f"{github.url}/repos/{REPO}/commits/main/check-runs?per_page=3", headers=AUTH
    )
    assert first.json()["total_count"] == 7
    assert len(first.json()["check_runs"]) == 3
    assert first.links["last"]["url"].endswith("page=3")
    runs = await follow(
        client, f"{github.url}/repos/{REPO}/commits/main/check-runs?per_page=3", "check_runs"
    )
    assert len(runs) == 7
    assert len({r["id"] for r in runs}) == 7
    green = runs[0]
    assert set(green) >= {
        "id",
        "name",
        "status",
        "conclusion",
        "html_url",
        "head_sha",
        "started_at",
        "completed_at",
    }
    assert (green["status"], green["conclusion"]) == ("completed", "success")
    assert green["head_sha"] == github.sha_of(REPO, "main")
    queued = next(r for r in runs if r["name"] == "extra-0")
    assert (queued["status"], queued["conclusion"], queued["started_at"]) == ("queued", None, None)


async def test_pending_then_green_after_n_polls(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """A check set pending_then_green(polls=2) is in_progress twice, then completed/success."""
    github.pending_then_green(REPO, "main", "smoke-core-flow", polls=2)
    url = f"{github.url}/repos/{REPO}/commits/main/check-runs?check_name=smoke-core-flow"
    seen = []
    for _ in range(3):
        run = (await client.get(url, headers=AUTH)).json()["check_runs"][0]
        seen.append((run["status"], run["conclusion"]))
    assert seen == [("in_progress", None), ("in_progress", None), ("completed", "success")]
    assert github.polls(REPO, "main") == 3


async def test_unknown_repo_404_unknown_ref_422(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """An unknown repository is 404 Not Found; an unknown ref is 422 No commit found."""
    missing = await client.get(
        f"{github.url}/repos/acme/nope/commits/main/check-runs", headers=AUTH
    )
    assert (missing.status_code, missing.json()["message"]) == (404, "Not Found")
    bad_ref = await client.get(f"{github.url}/repos/{REPO}/commits/v9.9.9/check-runs", headers=AUTH)
    assert bad_ref.status_code == 422
    assert "No commit found" in bad_ref.json()["message"]


async def test_combined_status_latest_per_context(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """The combined status keeps the newest state per context; any failure makes it failure."""
    github.set_commit_status(REPO, "main", "ci/lint", "pending")
    github.set_commit_status(REPO, "main", "ci/lint", "success", target_url="https://ci/1")
    github.set_commit_status(REPO, "main", "ci/e2e", "success")
    body = (await client.get(f"{github.url}/repos/{REPO}/commits/main/status", headers=AUTH)).json()
    assert body["state"] == "success"
    assert body["total_count"] == 2
    assert {s["context"]: s["state"] for s in body["statuses"]} == {
        "ci/lint": "success",
        "ci/e2e": "success",
    }
    assert set(body["statuses"][0]) >= {"context", "state", "description", "target_url"}
    github.set_commit_status(REPO, "main", "ci/e2e", "failure")
    body = (await client.get(f"{github.url}/repos/{REPO}/commits/main/status", headers=AUTH)).json()
    assert body["state"] == "failure"


async def test_open_pulls_filtered_by_base_and_paginated(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """state=open&base=main lists open PRs into main across pages; a PR added later shows up."""
    for i in range(3):
        github.add_pull(REPO, f"feature {i}")
    github.add_pull(REPO, "release fix", base="release/2.3")
    closed = github.add_pull(REPO, "old")
    github.close_pull(REPO, closed.number)
    url = f"{github.url}/repos/{REPO}/pulls?state=open&base=main&per_page=2"
    pulls = await follow(client, url, None)
    assert sorted(p["title"] for p in pulls) == ["feature 0", "feature 1", "feature 2"]
    assert all(p["base"]["ref"] == "main" and p["state"] == "open" for p in pulls)
    assert set(pulls[0]) >= {"number", "title", "state", "html_url", "head", "base"}
    assert set(pulls[0]["head"]) >= {"sha", "ref"}
    github.add_pull(REPO, "late arrival")
    assert len(await follow(client, url, None)) == 4


async def test_post_status_recorded_and_reflected(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """POST /statuses/{sha} answers 201 echoing the status, records it and updates the commit."""
    pull = github.add_pull(REPO, "feature")
    status = {
        "state": "failure",
        "context": "golive/merge-freeze",
        "description": "Merge freeze: release v2.4.0",
        "target_url": "http://127.0.0.1/freeze",
    }
    response = await client.post(
        f"{github.url}/repos/{REPO}/statuses/{pull.head_sha}", json=status, headers=AUTH
    )
    assert response.status_code == 201
    assert {k: response.json()[k] for k in status} == status
    [posted] = github.statuses_posted(context="golive/merge-freeze")
    assert (posted.sha, posted.state) == (pull.head_sha, "failure")
    combined = await client.get(
        f"{github.url}/repos/{REPO}/commits/{pull.head_sha}/status", headers=AUTH
    )
    assert combined.json()["state"] == "failure"


@pytest.mark.parametrize("body", [{"state": "green"}, {"context": "x"}, "not json"])
async def test_post_invalid_status_is_rejected(
    github: FakeGitHub, client: httpx.AsyncClient, body: Any
) -> None:
    """A state outside error/failure/pending/success is 422 (bad JSON 400) and not recorded."""
    sha = github.sha_of(REPO, "main")
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    response = await client.post(
        f"{github.url}/repos/{REPO}/statuses/{sha}", headers=AUTH, **kwargs
    )
    assert response.status_code in (400, 422)
    if isinstance(body, dict):
        assert response.json()["message"] == "Validation Failed"
    assert github.posted_statuses == []


async def test_faults_apply_per_repository(github: FakeGitHub, client: httpx.AsyncClient) -> None:
    """A fault set on one repository (html, 500, garbage) leaves the others healthy."""
    github.set_check_run("acme/other", "main", "build")
    url = f"{github.url}/repos/{REPO}/commits/main/check-runs"
    github.set_fault("html", scope=REPO)
    html = await client.get(url, headers=AUTH)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    github.set_fault("500", scope=REPO)
    assert (await client.get(url, headers=AUTH)).status_code == 500
    github.set_fault("garbage", scope=REPO)
    garbage = await client.get(url, headers=AUTH)
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        garbage.json()
    other = await client.get(f"{github.url}/repos/acme/other/commits/main/check-runs", headers=AUTH)
    assert other.json()["total_count"] == 1
    github.set_fault(None, scope=REPO)
    assert (await client.get(url, headers=AUTH)).json()["total_count"] == 3


async def test_slow_fault_times_out_clients(github: FakeGitHub, client: httpx.AsyncClient) -> None:
    """The slow fault delays the answer past a client's timeout."""
    github.set_fault("slow", delay=0.4)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(
            f"{github.url}/repos/{REPO}/commits/main/check-runs", headers=AUTH, timeout=0.1
        )


async def test_requests_are_recorded(github: FakeGitHub, client: httpx.AsyncClient) -> None:
    """Every request is recorded with its query and headers."""
    await client.get(f"{github.url}/repos/{REPO}/pulls?state=open&base=main", headers=AUTH)
    [recorded] = github.requests_to(f"/repos/{REPO}/pulls", "GET")
    assert recorded.param("base") == "main"
    assert recorded.header("Authorization") == AUTH["Authorization"]


async def test_rate_limit_switches_answer_as_github_documents(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Normal answers carry x-ratelimit-*; the primary limit answers 403 with remaining 0 and
    the reset time, a secondary one 429 with retry-after; both lift when the clock passes."""
    async with FakeGitHub(clock=clock) as github:
        github.set_check_run(REPO, "main", "build")
        url = f"{github.url}/repos/{REPO}/commits/main/check-runs"
        ok = await client.get(url, headers=AUTH)
        assert ok.headers["x-ratelimit-remaining"] == "4999"
        github.set_fault_switch("primary_rate_limit", seconds=120)
        primary = await client.get(url, headers=AUTH)
        assert primary.status_code == 403
        assert primary.headers["x-ratelimit-remaining"] == "0"
        assert int(primary.headers["x-ratelimit-reset"]) == int(clock().timestamp()) + 120
        assert "rate limit exceeded" in primary.json()["message"]
        github.set_fault_switch("secondary_rate_limit", seconds=30, status=429)
        secondary = await client.get(url, headers=AUTH)
        assert (secondary.status_code, secondary.headers["retry-after"]) == (429, "30")
        clock.advance(30)
        assert (await client.get(url, headers=AUTH)).status_code == 200


async def test_combined_status_pages_and_foreign_links(
    github: FakeGitHub, client: httpx.AsyncClient
) -> None:
    """The combined status lists each context's latest status, newest first, per page with a
    Link header; `link_base` moves those links to another server."""
    for i in range(5):
        github.set_commit_status(REPO, "main", f"ctx-{i}", "success")
    url = f"{github.url}/repos/{REPO}/commits/main/status?per_page=2"
    first = await client.get(url, headers=AUTH)
    assert [s["context"] for s in first.json()["statuses"]] == ["ctx-4", "ctx-3"]
    assert first.json()["total_count"] == 5
    statuses = await follow(client, url, "statuses")
    assert [s["context"] for s in statuses] == [f"ctx-{i}" for i in range(4, -1, -1)]
    github.link_base = "http://127.0.0.2:9"
    moved = await client.get(url, headers=AUTH)
    assert moved.links["next"]["url"].startswith("http://127.0.0.2:9/repos/")


class Receiver:
    """A loopback endpoint that records webhook deliveries as they arrive."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        """Record the delivery; answer 204 as a receiver would."""
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A Receiver served on loopback, and its URL."""
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    async with LoopbackServer(app) as server:
        yield found, f"{server.url}/hook"


async def test_webhooks_are_delivered_signed_with_githubs_headers(
    github: FakeGitHub, receiver: tuple[Receiver, str]
) -> None:
    """A new webhook gets a ping; opening and pushing to a pull request deliver `opened` and
    `synchronize` with X-GitHub-Event, X-GitHub-Delivery and an HMAC-SHA256 signature of the
    raw body; a redelivery keeps its delivery id."""
    found, url = receiver
    secret = "It's a Secret to Everybody"
    hook = await github.add_webhook(REPO, url, secret)
    pull = await github.open_pull(REPO, "Late feature")
    old = pull.head_sha
    await github.push(REPO, pull.number)
    assert [d.status for d in github.deliveries] == [204, 204, 204]
    events = [(h["X-GitHub-Event"], json.loads(b).get("action")) for h, b in found.received]
    assert events == [("ping", None), ("pull_request", "opened"), ("pull_request", "synchronize")]
    for headers, body in found.received:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == f"sha256={digest}"
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert headers["X-GitHub-Hook-ID"] == str(hook.id)
    synchronize = json.loads(found.received[2][1])
    assert (synchronize["before"], synchronize["after"]) == (old, pull.head_sha)
    assert synchronize["pull_request"]["head"]["sha"] == pull.head_sha != old
    assert synchronize["repository"]["full_name"] == REPO
    ids = [h["X-GitHub-Delivery"] for h, _ in found.received]
    assert len(set(ids)) == 3
    again = await github.redeliver(github.deliveries[1])
    assert again.id == ids[1] and found.received[-1][1] == found.received[1][1]


async def test_an_unsigned_webhook_has_no_signature_header(
    github: FakeGitHub, receiver: tuple[Receiver, str]
) -> None:
    """A webhook without a secret is delivered without X-Hub-Signature-256, as GitHub does."""
    found, url = receiver
    await github.add_webhook(REPO, url, None)
    assert "X-Hub-Signature-256" not in found.received[0][0]


async def test_one_pull_request_by_number(github: FakeGitHub, client: httpx.AsyncClient) -> None:
    """GET /pulls/{number} answers the pull request, merged or not, and 404 for an unknown one."""
    pull = github.add_pull(REPO, "Shipped")
    github.close_pull(REPO, pull.number, merged=True)
    found = await client.get(f"{github.url}/repos/{REPO}/pulls/{pull.number}", headers=AUTH)
    assert found.status_code == 200
    body = found.json()
    assert (body["state"], body["merged"], body["head"]["sha"]) == ("closed", True, pull.head_sha)
    missing = await client.get(f"{github.url}/repos/{REPO}/pulls/99999", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"


async def test_the_tags_endpoint_finds_published_releases_only(client: httpx.AsyncClient) -> None:
    """As GitHub documents: by tag, only a published release is found (a draft is 404, with
    GitHub's error body); the list shows drafts to a token with push access, not to a
    read-only one."""
    reader = "ghp_read_only_token_0002"
    async with FakeGitHub(read_only_token=reader) as github:
        draft = github.add_release(REPO, "v2.4.0", body="notes", draft=True)
        base = f"{github.url}/repos/{REPO}/releases"
        by_tag = await client.get(f"{base}/tags/v2.4.0", headers=AUTH)
        assert by_tag.status_code == 404
        assert by_tag.json()["message"] == "Not Found"
        assert by_tag.json()["documentation_url"].endswith("#get-a-release-by-tag-name")
        listed = (await client.get(base, headers=AUTH)).json()
        assert [(r["tag_name"], r["draft"]) for r in listed] == [("v2.4.0", True)]
        assert "untagged-" in listed[0]["html_url"]
        hidden = await client.get(base, headers={"Authorization": f"Bearer {reader}"})
        assert hidden.json() == []
        github.publish_release(REPO, draft.id)
        found = await client.get(f"{base}/tags/v2.4.0", headers=AUTH)
        assert found.status_code == 200 and found.json()["id"] == draft.id
        assert found.json()["draft"] is False and found.json()["published_at"]
        nowhere = await client.get(f"{github.url}/repos/acme/nope/releases/tags/v1", headers=AUTH)
        assert nowhere.status_code == 404


async def test_patching_a_release_body_needs_push_access_and_respects_the_limit(
    client: httpx.AsyncClient,
) -> None:
    """PATCH …/releases/{id} replaces the body for a token with push access; a read-only token
    gets 403 and a body over 125,000 characters gets GitHub's 422."""
    reader = "ghp_read_only_token_0002"
    async with FakeGitHub(read_only_token=reader) as github:
        release = github.add_release(REPO, "v2.4.0", body="old")
        url = f"{github.url}/repos/{REPO}/releases/{release.id}"
        ok = await client.patch(url, json={"body": "new"}, headers=AUTH)
        assert ok.status_code == 200 and ok.json()["body"] == "new"
        refused = await client.patch(
            url, json={"body": "x"}, headers={"Authorization": f"Bearer {reader}"}
        )
        assert refused.status_code == 403
        long = await client.patch(url, json={"body": "x" * 125_001}, headers=AUTH)
        assert long.status_code == 422
        assert long.json()["errors"][0]["message"].startswith("body is too long")
        assert github.release(REPO, release.id).body == "new"  # type: ignore[union-attr]
        assert (await client.get(url, headers=AUTH)).json()["body"] == "new"
