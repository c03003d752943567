"""Local fakes of every provider golive talks to, served over real HTTP on loopback.

Integration tests start them one by one; `golive demo` starts them all through `Sandbox`.
"""

from bot.domain.clock import FakeClock, Now, utc_now
from bot.sandbox.argocd import FakeArgoCD
from bot.sandbox.base import FAULT_MODES, FakeServer, RecordedRequest
from bot.sandbox.github import CheckRun, CommitStatus, FakeGitHub, GitHubRelease, PullRequest
from bot.sandbox.ledger import Invoice, Lead
from bot.sandbox.metrics import RequestMetrics, TrafficGenerator, TrafficProfile
from bot.sandbox.pagerduty import FakePagerDuty, Incident
from bot.sandbox.product import FAULT_SWITCHES, FakeProduct
from bot.sandbox.prometheus import FakePrometheus, histogram_quantile
from bot.sandbox.registry import FakeRegistry
from bot.sandbox.sandbox import Sandbox
from bot.sandbox.server import (
    LoopbackServer,
    run_in_thread,
    serve,
    serve_in_thread,
    stop_server,
    stop_server_sync,
)
from bot.sandbox.slack import FakeSlack, SlackCall, SlackFile, SlackMessage

__all__ = [
    "FAULT_MODES",
    "FAULT_SWITCHES",
    "CheckRun",
    "CommitStatus",
    "FakeArgoCD",
    "FakeClock",
    "FakeGitHub",
    "FakePagerDuty",
    "FakeProduct",
    "FakePrometheus",
    "FakeRegistry",
    "FakeServer",
    "FakeSlack",
    "GitHubRelease",
    "Incident",
    "Invoice",
    "Lead",
    "LoopbackServer",
    "Now",
    "PullRequest",
    "RecordedRequest",
    "RequestMetrics",
    "Sandbox",
    "SlackCall",
    "SlackFile",
    "SlackMessage",
    "TrafficGenerator",
    "TrafficProfile",
    "histogram_quantile",
    "run_in_thread",
    "serve",
    "serve_in_thread",
    "stop_server",
    "stop_server_sync",
    "utc_now",
]
