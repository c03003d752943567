"""The verification phase through the engine: the money paths pass, a regression blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.model import Outcome, StepStatus
from bot.sandbox import Sandbox
from tests.conftest import COMMANDER, Harness, walk
from tests.test_preconditions import results, sandbox_config


@pytest.fixture
async def h(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    """A harness with preconditions, preflight and verification against the sandbox."""
    async with Sandbox.start(traffic=False, history=0) as sb:
        data = sandbox_config(sb, tmp_path / "repo")
        data["verification"] = sb.config_overrides()["verification"]
        harness = Harness(validate_config(data), clock, ":memory:", secrets=sb.tokens)
        harness.sandbox = sb  # type: ignore[attr-defined]
        yield harness
        await harness.service.close()


async def test_clean_product_passes_verification(h: Harness) -> None:
    """Every money path and the RBAC matrix pass; the frontend owner still confirms the portal."""
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "api")
    assert h.step("api").outcome is Outcome.PASSED
    verdicts = results(h, "api")
    assert {r["status"] for r in verdicts.values()} == {"pass"}
    assert "rbac:report" in verdicts and "verify:csv-quickbooks" in verdicts
    assert h.step("portal-paths").status is StepStatus.AWAITING


async def test_rbac_hole_blocks_the_release(h: Harness) -> None:
    """A limited token reaching a finance endpoint blocks verification, naming the endpoint."""
    h.sandbox.product.set_fault_switch("rbac_hole")  # type: ignore[attr-defined]
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h)
    step = h.step("api")
    assert step.status is StepStatus.BLOCKED
    assert set(step.failing) == {"rbac:invoices", "rbac:pdf", "rbac:csv", "rbac:report"}
    blocked = next(m.text for m in h.messages() if "Money-path verification* is blocked" in m.text)
    assert "limited token" in blocked
