"""Sandbox: every fake provider on loopback, seeded for a green release of the example config."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from bot.domain.clock import Now
from bot.sandbox import argocd, github, pagerduty, product, registry
from bot.sandbox import slack as slack_api
from bot.sandbox.argocd import FakeArgoCD
from bot.sandbox.base import FakeServer
from bot.sandbox.github import FakeGitHub
from bot.sandbox.metrics import TrafficProfile
from bot.sandbox.pagerduty import FakePagerDuty
from bot.sandbox.product import FakeProduct
from bot.sandbox.prometheus import FakePrometheus
from bot.sandbox.registry import FakeRegistry
from bot.sandbox.server import LOOPBACK, run_in_thread
from bot.sandbox.slack import FakeSlack

REPOSITORY = "acme/platform"
BRANCH = "main"
REQUIRED_CHECKS = ("python-services", "web-portal", "smoke-core-flow")
SERVICES: tuple[dict[str, Any], ...] = (
    {"name": "partner-registry", "tier": "backend", "wave": 1, "migrations": True},
    {"name": "billing-api", "tier": "backend", "wave": 2, "migrations": True},
    {"name": "web-portal", "tier": "frontend"},
)
TAGS = ("2.2.0", "2.3.0", "2.3.1", "2.4.0-rc.1")
# The demo's release notes: a published GitHub release, as a team that writes its notes there has.
NOTES_VERSION = "v2.4.0"
NOTES_BODY = (
    "## What's new in 2.4.0\r\n\r\n"
    "- Billing: accounting CSV export for Xero and QuickBooks\r\n"
    "- Partner registry: faster search\r\n"
    "- Web portal: invoice download\r\n"
)
DEMO_TRAFFIC = TrafficProfile(rate=20.0, error_ratio=0.005, p95=0.12)
# The deploy workflows: their run-name shows golive_run, so golive finds its run on a server
# that cannot say which run a dispatch started (GitHub Enterprise Server).
DEPLOY_WORKFLOW = "deploy.yml"
ROLLBACK_WORKFLOW = "rollback.yml"
PORTAL_APP = "web-portal"


def _tokens(with_slack: bool) -> dict[str, str]:
    tokens = {
        "GITHUB_TOKEN": github.DEFAULT_TOKEN,
        "PAGERDUTY_API_TOKEN": pagerduty.DEFAULT_TOKEN,
        "PAGERDUTY_ROUTING_KEY": pagerduty.DEFAULT_ROUTING_KEY,
        "REGISTRY_TOKEN": registry.DEFAULT_TOKEN,
        "ARGOCD_TOKEN": argocd.DEFAULT_TOKEN,
        "GOLIVE_FINANCE_TOKEN": product.DEFAULT_FINANCE_TOKEN,
        "GOLIVE_LIMITED_TOKEN": product.DEFAULT_LIMITED_TOKEN,
    }
    if with_slack:
        tokens["SLACK_BOT_TOKEN"] = slack_api.DEFAULT_TOKEN
    return tokens


@dataclass
class Sandbox:
    """The running fakes, their base URLs (`urls`) and the secrets they expect (`tokens`).

    Release notes are served by the product server at `/notes/{version}` (`urls["notes"]`);
    service health at `/health/{service}`.
    """

    github: FakeGitHub
    pagerduty: FakePagerDuty
    registry: FakeRegistry
    product: FakeProduct
    prometheus: FakePrometheus
    argocd: FakeArgoCD
    slack: FakeSlack | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, *, clock: Now | None = None, slack: bool = False, seed: int = 7, speed: float = 1.0
    ) -> Sandbox:
        """Build and seed the fakes without serving them; `speed` multiplies the live traffic
        (and how often it is added) and divides how long deploys take, for a demo played
        faster than real time."""
        gh = FakeGitHub(clock=clock, run_durations=(1.0 / speed, 3.0 / speed))
        for name in REQUIRED_CHECKS:
            gh.set_check_run(REPOSITORY, BRANCH, name)
        run_name = "${{ inputs.service }} ${{ inputs.version }} [${{ inputs.golive_run }}]"
        gh.actions.add_workflow(
            REPOSITORY,
            DEPLOY_WORKFLOW,
            name="Deploy",
            inputs=("golive_run",),
            required=("service", "version"),
            run_name="Deploy " + run_name,
            jobs=("build", "deploy", "smoke"),
        )
        gh.actions.add_workflow(
            REPOSITORY,
            ROLLBACK_WORKFLOW,
            name="Roll back",
            inputs=("golive_run",),
            required=("service", "image", "tag"),
            run_name="Roll back ${{ inputs.service }} to ${{ inputs.tag }} "
            "[${{ inputs.golive_run }}]",
            jobs=("rollback", "smoke"),
        )
        cd = FakeArgoCD(clock=clock, durations=(1.0 / speed, 2.0 / speed))
        cd.add_app(PORTAL_APP)
        gh.add_pull(REPOSITORY, "Partner search: paginate results", head_ref="feature/search")
        gh.add_pull(REPOSITORY, "Invoice PDF: add footer", head_ref="feature/invoice-footer")
        gh.add_pull(REPOSITORY, "Backport fix", head_ref="fix/backport", base="release/2.3")
        gh.add_release(REPOSITORY, NOTES_VERSION, body=NOTES_BODY, name=f"Release {NOTES_VERSION}")
        reg = FakeRegistry(clock=clock)
        for service in SERVICES:
            reg.set_tags(f"platform/{service['name']}", TAGS)
        traffic = dataclasses.replace(DEMO_TRAFFIC, rate=DEMO_TRAFFIC.rate * speed)
        prod = FakeProduct(clock=clock, traffic=traffic, seed=seed, tick=min(1.0, 1.0 / speed))
        return cls(
            github=gh,
            pagerduty=FakePagerDuty(clock=clock),
            registry=reg,
            product=prod,
            prometheus=FakePrometheus(prod),
            argocd=cd,
            slack=FakeSlack(clock=clock) if slack else None,
            tokens=_tokens(slack),
        )

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        *,
        clock: Now | None = None,
        host: str = LOOPBACK,
        ports: Mapping[str, int] | None = None,
        traffic: bool = True,
        history: float = 3600.0,
        slack: bool = False,
        seed: int = 7,
        speed: float = 1.0,
    ) -> AsyncIterator[Sandbox]:
        """Serve every fake on `host` (ephemeral ports unless `ports[name]` says otherwise).

        `history` seconds of past traffic are backfilled so baselines have data; `traffic`
        runs the generator in the background (use `sb.product.advance()` when it is off).
        """
        sandbox = cls.create(clock=clock, slack=slack, seed=seed, speed=speed)
        async with AsyncExitStack() as stack:
            for name, fake in sandbox.fakes().items():
                await fake.start(host, (ports or {}).get(name, 0))
                stack.push_async_callback(fake.stop)
                sandbox.urls[name] = fake.url
            sandbox.urls["pagerduty_events"] = f"{sandbox.pagerduty.url}/v2/enqueue"
            sandbox.urls["notes"] = f"{sandbox.product.url}/notes/{{version}}"
            if history > 0:
                sandbox.product.traffic.backfill(history)
            if traffic:
                sandbox.product.start_traffic()
                stack.push_async_callback(sandbox.product.stop_traffic)
            yield sandbox

    @classmethod
    @contextmanager
    def start_in_thread(cls, **options: Any) -> Iterator[Sandbox]:
        """`start` on a private event loop in a daemon thread, for synchronous callers."""
        with run_in_thread(lambda: cls.start(**options)) as sandbox:
            yield sandbox

    def fakes(self) -> dict[str, FakeServer]:
        """The fakes by name: github, pagerduty, registry, product, prometheus, argocd (and
        slack)."""
        found: dict[str, FakeServer] = {
            "github": self.github,
            "pagerduty": self.pagerduty,
            "registry": self.registry,
            "product": self.product,
            "prometheus": self.prometheus,
            "argocd": self.argocd,
        }
        if self.slack is not None:
            found["slack"] = self.slack
        return found

    def health_url(self, service: str) -> str:
        """The health URL of one simulated service."""
        return f"{self.product.url}/health/{service}"

    def env(self) -> dict[str, str]:
        """Environment variables for a golive process pointed at this sandbox."""
        env = dict(self.tokens)
        if self.slack is not None:
            env["SLACK_API_URL"] = f"{self.slack.url}/api/"
        return env

    def action_overrides(self, poll: str = "1s") -> dict[str, Any]:
        """`actions:` (per golive.example.yml) that deploy the waves with the GitHub workflow,
        the portal with an Argo CD sync, and roll back with the rollback workflow."""
        deploy = {
            "github_workflow": {
                "workflow": DEPLOY_WORKFLOW,
                "ref": BRANCH,
                "inputs": {"service": "{service}", "version": "{version}"},
                "timeout": "2m",
                "poll_interval": poll,
            }
        }
        waves = sorted({s["wave"] for s in SERVICES if s["tier"] == "backend"})
        return {
            **{f"wave-{wave}": deploy for wave in waves},
            "portal": {
                "argocd_sync": {
                    "server": self.argocd.url,
                    "app": PORTAL_APP,
                    "token_env": "ARGOCD_TOKEN",
                    "revision": "{version}",
                    "timeout": "2m",
                    "poll_interval": poll,
                }
            },
            "rollback": {
                "github_workflow": {
                    "workflow": ROLLBACK_WORKFLOW,
                    "ref": BRANCH,
                    "inputs": {"service": "{service}", "image": "{image}", "tag": "{rollback_tag}"},
                    "timeout": "2m",
                    "poll_interval": poll,
                }
            },
        }

    def config_overrides(self) -> dict[str, Any]:
        """The golive.yml keys (per golive.example.yml) that point golive at this sandbox."""
        return {
            "services": [
                {
                    **service,
                    "health_url": self.health_url(service["name"]),
                    "image": f"platform/{service['name']}",
                }
                for service in SERVICES
            ],
            "preconditions": {
                "ci": {
                    "github_url": self.github.url,
                    "repository": REPOSITORY,
                    "ref": BRANCH,
                    "token_env": "GITHUB_TOKEN",
                    "required_checks": list(REQUIRED_CHECKS),
                    "freeze_branch": BRANCH,
                },
                "incidents": {
                    "pagerduty_url": self.pagerduty.url,
                    "token_env": "PAGERDUTY_API_TOKEN",
                    "service_ids": [pagerduty.DEFAULT_SERVICE_ID],
                },
                "release_notes": {"url": self.urls["notes"]},
                "rollback": {"registry_url": self.registry.url, "token_env": "REGISTRY_TOKEN"},
            },
            "monitoring": {
                "prometheus_url": self.prometheus.url,
                "pagerduty_events_url": self.urls["pagerduty_events"],
                "pagerduty_routing_key_env": "PAGERDUTY_ROUTING_KEY",
            },
            "verification": {
                "base_url": self.product.url,
                "finance_token_env": "GOLIVE_FINANCE_TOKEN",
                "limited_token_env": "GOLIVE_LIMITED_TOKEN",
                "paths": {"invoice_void": "/billing/invoices/{id}/void"},
            },
        }
