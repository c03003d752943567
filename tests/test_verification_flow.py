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
    assert {r.status for r in verdicts.values()} == {"pass"}
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


async def test_the_record_names_the_test_data_and_the_voided_invoice(h: Harness) -> None:
    """After verification the invoice golive generated is void in the product, and the record
    lists the leads and the invoice it created."""
    from bot.engine.records import record_markdown

    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "api")
    product = h.sandbox.product  # type: ignore[attr-defined]
    cleanup = results(h, "api")["verify:cleanup"]
    assert cleanup.status == "pass"
    invoice = product.invoices[cleanup.evidence["invoice"]["id"]]
    assert invoice.status == "void" and invoice.customer.startswith("golive-verify-v2.4.0-")
    record = record_markdown(h.store, h.config, h.release().id)
    section = record[record.index("## Test data left by verification") :]
    leads = ", ".join(str(i) for i in sorted(product.leads))
    assert f"- Leads created: {leads}" in section
    assert f"- Invoice created: {invoice.invoice_number} (id {invoice.id}) — voided" in section


async def test_without_a_void_path_the_record_says_the_invoice_remains(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Without `verification.paths.invoice_void` the step still passes, and the thread and the
    record say the test invoice remains."""
    from bot.engine.records import record_markdown

    async with Sandbox.start(traffic=False, history=0) as sb:
        data = sandbox_config(sb, tmp_path / "repo")
        data["verification"] = {**sb.config_overrides()["verification"], "paths": {}}
        h = Harness(validate_config(data), clock, ":memory:", secrets=sb.tokens)
        await h.say(COMMANDER, "/golive start v2.4.0")
        await walk(h, "api")
        assert h.step("api").status is StepStatus.DONE
        assert all(i.status != "void" for i in sb.product.invoices.values() if i.lead_id)
        passed = next(m.text for m in h.messages() if "Money-path verification* passed" in m.text)
        assert "⚠️ `verify:cleanup`" in passed and "the test invoice remains" in passed
        record = record_markdown(h.store, h.config, h.release().id)
        assert "— **remains in the product**" in record
        await h.service.close()
