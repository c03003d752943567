"""Automated checks: each is async, takes an injected httpx client, and returns CheckResults."""

from checks.base import Check, CheckResult, Status, run_checks

__all__ = ["Check", "CheckResult", "Status", "run_checks"]
