"""Sandbox: every fake on loopback, seeded so the example configuration can release green."""

from __future__ import annotations

import httpx

from bot.sandbox import Sandbox

REQUESTS = "sum(increase(http_requests_total[{w}]))"
ERRORS = 'sum(increase(http_requests_total{{status=~"5.."}}[{w}]))'
P95 = "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[{w}])) by (le))"


async def test_sandbox_is_seeded_for_a_green_release(client: httpx.AsyncClient) -> None:
    """Checks green on main, open PRs, no incidents, rollback tags, notes and live metrics."""
    async with Sandbox.start() as sb:
        assert set(sb.urls) >= {
            "github",
            "pagerduty",
            "registry",
            "product",
            "prometheus",
            "argocd",
        }
        assert all(url.startswith("http://127.0.0.1:") for url in sb.urls.values())
        tokens = sb.tokens
        assert set(tokens) == {
            "ARGOCD_TOKEN",
            "GITHUB_TOKEN",
            "PAGERDUTY_API_TOKEN",
            "PAGERDUTY_ROUTING_KEY",
            "REGISTRY_TOKEN",
            "GOLIVE_FINANCE_TOKEN",
            "GOLIVE_LIMITED_TOKEN",
        }
        gh = {"Authorization": f"Bearer {tokens['GITHUB_TOKEN']}"}
        runs = (
            await client.get(
                f"{sb.urls['github']}/repos/acme/platform/commits/main/check-runs", headers=gh
            )
        ).json()["check_runs"]
        assert {(r["name"], r["status"], r["conclusion"]) for r in runs} == {
            (name, "completed", "success")
            for name in ("python-services", "web-portal", "smoke-core-flow")
        }
        pulls = (
            await client.get(
                f"{sb.urls['github']}/repos/acme/platform/pulls?state=open&base=main", headers=gh
            )
        ).json()
        assert len(pulls) == 2
        incidents = await client.get(
            f"{sb.urls['pagerduty']}/incidents",
            params=[("statuses[]", "triggered"), ("urgencies[]", "high")],
            headers={"Authorization": f"Token token={tokens['PAGERDUTY_API_TOKEN']}"},
        )
        assert incidents.json()["incidents"] == []
        tags = await client.get(
            f"{sb.urls['registry']}/v2/platform/partner-registry/tags/list",
            headers={"Authorization": f"Bearer {tokens['REGISTRY_TOKEN']}"},
        )
        assert {"2.3.1", "2.4.0-rc.1"} <= set(tags.json()["tags"])
        notes = await client.get(sb.urls["notes"].format(version="v2.4.0"))
        assert notes.status_code == 200
        assert (await client.get(sb.health_url("billing-api"))).status_code == 200
        assert sb.product.traffic.running
        for template in (REQUESTS, ERRORS, P95):
            for window in ("5m", "1h"):
                result = (
                    await client.get(
                        f"{sb.urls['prometheus']}/api/v1/query",
                        params={"query": template.format(w=window)},
                    )
                ).json()["data"]["result"]
                assert len(result) == 1, (template, window)
        requests_1h = await client.get(
            f"{sb.urls['prometheus']}/api/v1/query", params={"query": REQUESTS.format(w="1h")}
        )
        assert float(requests_1h.json()["data"]["result"][0]["value"][1]) >= 70_000
    assert not sb.product.traffic.running
    assert not sb.github.running


async def test_config_overrides_point_at_the_sandbox() -> None:
    """config_overrides() fills golive.yml's provider URLs and env names with this sandbox's."""
    async with Sandbox.start(traffic=False, history=0, slack=True) as sb:
        config = sb.config_overrides()
        assert config["preconditions"]["ci"]["github_url"] == sb.github.url
        assert config["monitoring"]["prometheus_url"] == sb.prometheus.url
        assert config["verification"]["base_url"] == sb.product.url
        assert config["preconditions"]["release_notes"]["url"].endswith("/notes/{version}")
        names = [s["name"] for s in config["services"]]
        assert names == ["partner-registry", "billing-api", "web-portal"]
        env = sb.env()
        assert env["SLACK_API_URL"] == f"{sb.urls['slack']}/api/"
        assert env["SLACK_BOT_TOKEN"].startswith("xoxb-")
        assert not sb.product.traffic.running


def test_sandbox_in_a_thread_for_sync_callers() -> None:
    """start_in_thread() serves the whole sandbox for synchronous code and stops on exit."""
    with Sandbox.start_in_thread(history=60) as sb:
        url = sb.health_url("web-portal")
        assert httpx.get(url).json()["status"] == "ok"
    try:
        httpx.get(url)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the sandbox should be down after the block")
