"""Money-path verification (runbook §5) against a real FakeProduct over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.domain.config import VerificationPaths
from bot.domain.serial import dump
from bot.sandbox import FAULT_SWITCHES, FakeClock, FakeProduct
from checks.base import CheckResult, Status
from checks.judgment import finance_operations, rbac_summary
from checks.verification import (
    FINANCE_CRITERION,
    RBAC_CRITERION,
    RBAC_NAMES,
    RESULT_NAMES,
    import_columns,
    invoice_problems,
    quickbooks_date_problem,
    verify_money_paths,
)

START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
VOIDING = VerificationPaths(invoice_void="/billing/invoices/{id}/void")
FINANCE_TOKEN = "finance-secret-6f1c"
LIMITED_TOKEN = "limited-secret-93ab"


@pytest.fixture
async def product() -> AsyncIterator[FakeProduct]:
    """A FakeProduct serving on loopback, its clock frozen at 2026-11-20 09:30 UTC."""
    async with FakeProduct(FINANCE_TOKEN, LIMITED_TOKEN, clock=FakeClock(START)) as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client; the checks pass their own per-call timeouts."""
    async with httpx.AsyncClient() as http:
        yield http


async def verify(
    client: httpx.AsyncClient, base_url: str, **overrides: Any
) -> dict[str, CheckResult]:
    """One verification round against `base_url`, results by name."""
    kwargs: dict[str, Any] = {
        "base_url": base_url,
        "paths": VOIDING,
        "finance_token": FINANCE_TOKEN,
        "limited_token": LIMITED_TOKEN,
        "today": START.date(),
        "label": "v2.4.0",
        "run_id": "t1",
        "timeout": 5.0,
        **overrides,
    }
    results = await verify_money_paths(client, **kwargs)
    assert [r.name for r in results] == list(RESULT_NAMES)
    return {r.name: r for r in results}


def not_passing(results: dict[str, CheckResult]) -> dict[str, Status]:
    """Every result that did not pass, with its status."""
    return {name: r.status for name, r in results.items() if r.status is not Status.PASS}


async def test_clean_api_passes_everything(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """A product that keeps its contract passes every check and both success criteria."""
    results = await verify(client, product.url)
    assert not_passing(results) == {}
    everything = list(results.values())
    assert finance_operations(everything).status is Status.PASS
    assert rbac_summary(everything).status is Status.PASS
    assert "INV-202611-" in results["verify:invoice"].summary


async def test_evidence_names_requests_and_statuses_never_tokens(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """Each result lists its calls as method + path with token kind and status; no secret."""
    results = await verify(client, product.url)
    invoice = results["verify:invoice"].evidence["requests"]
    assert [(c["request"], c["token"], c["status"]) for c in invoice] == [
        ("POST /leads", "finance", 201),
        ("POST /billing/invoices", "finance", 201),
    ]
    rbac = results["rbac:report"].evidence["requests"]
    assert [(c["token"], c["status"]) for c in rbac] == [
        ("none", 401),
        ("limited", 403),
        ("finance", 200),
    ]
    assert rbac[0]["request"].startswith("GET /billing/report?from=2026-08-22&to=2026-11-20")
    dumped = json.dumps([dump(r) for r in results.values()])
    assert FINANCE_TOKEN not in dumped and LIMITED_TOKEN not in dumped
    assert all(r.evidence["requests"] for r in results.values())


async def test_test_data_is_labelled_for_cleanup(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """Every lead the round creates is named and addressed golive-verify-<release>-<run>-<n>."""
    await verify(client, product.url)
    assert len(product.leads) == 4
    for lead in product.leads.values():
        assert lead.name.startswith("golive-verify-v2.4.0-t1-")
        assert lead.email == f"{lead.name}@example.invalid"


# A QuickBooks CSV carrying a broken due date would not import either, so those faults also
# fail its CSV; words are checked in every failing summary, or per check where given by name.
_QB = "verify:csv-quickbooks"
FAULTS: list[tuple[str, set[str], list[str] | dict[str, list[str]]]] = [
    ("invoice_number_format", {"verify:invoice"}, ["invoice_number", "INV-YYYYMM-######"]),
    ("invoice_wrong_month", {"verify:invoice"}, ["invoice_number", "202610", "202611"]),
    (
        "due_date_missing",
        {"verify:invoice", _QB},
        {"verify:invoice": ["due_date is missing"], _QB: ["due date '' is not a date"]},
    ),
    (
        "due_date_invalid",
        {"verify:invoice", _QB},
        {
            "verify:invoice": ["due_date", "2026-13-45", "not a real date"],
            _QB: ["due date '2026-13-45' is not a date QuickBooks imports"],
        },
    ),
    (
        "due_date_before_issue",
        {"verify:invoice", _QB},
        {
            "verify:invoice": ["due_date 2026-11-19 is before issue_date"],
            _QB: ["due date '2026-11-19' is before its invoice date '2026-11-20'"],
        },
    ),
    ("csv_missing_column", {"verify:csv-xero", "verify:csv-quickbooks"}, ["column DueDate"]),
    (
        "quickbooks_dates_unparseable",
        {"verify:csv-quickbooks"},
        ["invoice date '20th of the month' is not a date QuickBooks imports"],
    ),
    (
        "quickbooks_due_before_invoice",
        {"verify:csv-quickbooks"},
        ["due date '2026-11-19' is before its invoice date '2026-11-20'"],
    ),
    ("pdf_broken", {"verify:pdf"}, ["not a PDF", "%PDF-"]),
    ("rbac_hole", set(RBAC_NAMES), ["the limited token got HTTP 2", "expected 403"]),
    ("lead_illegal_jump_accepted", {"verify:leads-jump"}, ["accepted", "initiated → converted"]),
    ("report_rows_outside_range", {"verify:report"}, ["issue_date 2026-08-19 is outside"]),
    ("report_wrong_status", {"verify:report"}, ["status 'draft' is not one of those asked"]),
]


def test_every_fault_switch_is_covered() -> None:
    """A fault switch added to the sandbox without a verification test fails here."""
    assert {switch for switch, _, _ in FAULTS} == set(FAULT_SWITCHES)


@pytest.mark.parametrize(("switch", "failing", "words"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_fault_switch_fails_its_check_by_name(
    product: FakeProduct,
    client: httpx.AsyncClient,
    switch: str,
    failing: set[str],
    words: list[str] | dict[str, list[str]],
) -> None:
    """Each product fault FAILs exactly its own checks, naming the fault; the rest still pass."""
    product.set_fault_switch(switch)
    results = await verify(client, product.url)
    assert not_passing(results) == dict.fromkeys(failing, Status.FAIL)
    for name in failing:
        for word in words[name] if isinstance(words, dict) else words:
            assert word in results[name].summary, (word, results[name].summary)


async def test_rbac_hole_names_each_endpoint(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """An RBAC hole is a FAIL per endpoint, naming it, and the RBAC criterion fails with them."""
    product.set_fault_switch("rbac_hole")
    results = await verify(client, product.url)
    endpoints = {
        "rbac:invoices": "POST /billing/invoices",
        "rbac:pdf": "GET /billing/invoices/{id}/pdf",
        "rbac:csv": "GET /billing/invoices/{id}/csv",
        "rbac:report": "GET /billing/report",
    }
    for name, endpoint in endpoints.items():
        assert endpoint in results[name].summary
        assert results[name].evidence["regressions"][0]["token"] == "limited"
    criterion = rbac_summary(list(results.values()))
    assert criterion.name == RBAC_CRITERION and criterion.status is Status.FAIL
    assert all(endpoint in criterion.summary for endpoint in endpoints.values())
    assert finance_operations(list(results.values())).status is Status.PASS


async def test_broken_invoice_evidence_names_field_and_value(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """A broken invoice's evidence carries the offending field and value."""
    product.set_fault_switch("due_date_invalid")
    results = await verify(client, product.url)
    problems = results["verify:invoice"].evidence["problems"]
    assert problems == [
        {"field": "due_date", "value": "2026-13-45", "problem": problems[0]["problem"]}
    ]
    criterion = finance_operations(list(results.values()))
    assert criterion.name == FINANCE_CRITERION and criterion.status is Status.FAIL


async def test_report_offending_row_is_named(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """The report check names the offending row by index and invoice number in its evidence."""
    product.set_fault_switch("report_rows_outside_range")
    result = (await verify(client, product.url))["verify:report"]
    [row] = result.evidence["offending"]
    assert (row["field"], row["value"]) == ("issue_date", "2026-08-19")
    assert row["invoice_number"] in result.summary


def assert_all_errors(results: dict[str, CheckResult], words: str) -> None:
    """Every result is ERROR (never PASS) and the independent chains say why in `words`."""
    assert set(not_passing(results).values()) == {Status.ERROR}
    assert len(not_passing(results)) == len(RESULT_NAMES)
    for name in ("verify:leads", "verify:leads-jump", "verify:report", "verify:invoice"):
        assert words in results[name].summary, results[name].summary
    assert results["verify:pdf"].summary.startswith("not verified: invoice generation failed")
    everything = list(results.values())
    assert finance_operations(everything).status is Status.ERROR
    assert rbac_summary(everything).status is Status.ERROR


async def test_product_down_is_error(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """Connection refused everywhere makes every result ERROR with 'could not reach'."""
    url = product.url
    await product.stop()
    assert_all_errors(await verify(client, url), "could not reach the product API")


async def test_html_answers_are_errors(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """An HTML sign-in page instead of the API makes every result ERROR, never PASS or FAIL."""
    product.set_fault("html")
    results = await verify(client, product.url)
    assert_all_errors(results, "HTML page")
    assert "HTML page" in results["rbac:report"].summary


async def test_server_errors_are_errors(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """A 500 on every call makes every result ERROR naming HTTP 500."""
    product.set_fault("500")
    assert_all_errors(await verify(client, product.url), "HTTP 500")


async def test_malformed_json_is_never_a_pass(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """Truncated JSON errors the money paths; a 200 to a caller without a token is not a pass."""
    product.set_fault("garbage")
    results = await verify(client, product.url)
    assert Status.PASS not in {r.status for r in results.values()}
    assert "malformed JSON" in results["verify:invoice"].summary
    assert results["rbac:report"].status is Status.FAIL


async def test_each_call_has_a_timeout(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """A product slower than the per-call timeout is ERROR 'did not answer within'."""
    product.set_fault("slow", delay=1.0)
    results = await verify(client, product.url, timeout=0.1)
    assert_all_errors(results, "did not answer within 0.1s")


async def test_failed_invoice_blocks_its_dependents(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """When no invoice is made, PDF, CSV and their RBAC rows are ERROR 'not verified', not PASS."""
    paths = VerificationPaths(
        invoices="/billing/no-such-endpoint", invoice_void=VOIDING.invoice_void
    )
    results = await verify(client, product.url, paths=paths)
    blocked = {"verify:pdf", "verify:csv-xero", "verify:csv-quickbooks", "rbac:pdf", "rbac:csv"}
    assert not_passing(results) == {
        "verify:invoice": Status.ERROR,
        "rbac:invoices": Status.ERROR,
        "verify:cleanup": Status.ERROR,
        **dict.fromkeys(blocked, Status.ERROR),
    }
    assert "404" in results["verify:invoice"].summary
    for name in blocked:
        assert results[name].summary.startswith("not verified: invoice generation failed")
    assert "the finance token: HTTP 404" in results["rbac:invoices"].summary


class RunningClock:
    """Real elapsed time from a fixed start, so dates are fixed but request times are real."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.origin = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.origin)


async def test_chains_run_concurrently(client: httpx.AsyncClient) -> None:
    """With every answer delayed by d, calls of independent chains arrive together, not in turn."""
    delay = 0.3
    async with FakeProduct(FINANCE_TOKEN, LIMITED_TOKEN, clock=RunningClock(START)) as product:
        product.set_fault("slow", delay=delay)
        results = await verify(client, product.url)
        arrivals = sorted(r.at for r in product.requests)
    assert not_passing(results) == {}
    first = arrivals[0]
    first_wave = [a for a in arrivals if a - first < timedelta(seconds=delay / 2)]
    # Run in turn, each call would wait for the previous answer: one call per wave, 23 waves.
    assert len(arrivals) >= 20
    assert len(first_wave) >= 6
    # The longest chain is three calls deep (lead → invoice → PDF/CSV), so the last call
    # arrives about 2d after the first; in turn it would arrive more than 20d after it.
    assert arrivals[-1] - first < timedelta(seconds=5 * delay)


@pytest.mark.parametrize(
    ("invoice", "field", "problem"),
    [
        (
            {"invoice_number": "INV-202613-000001", "issue_date": "2026-13-01"},
            "issue_date",
            "not a real date",
        ),
        ({"invoice_number": "INV-202611-00001"}, "invoice_number", "does not match"),
        ({"due_date": "2026-12-04T00:00:00Z"}, "due_date", "not a real date"),
        ({"due_date": None}, "due_date", "is missing"),
        ({"currency": ""}, "currency", "is missing"),
    ],
)
def test_invoice_problems(invoice: dict[str, Any], field: str, problem: str) -> None:
    """invoice_problems names the field and the defect for each way an invoice can be wrong."""
    good = {
        "id": 1,
        "invoice_number": "INV-202611-000001",
        "issue_date": "2026-11-20",
        "due_date": "2026-12-04",
        "total": "1.00",
        "currency": "EUR",
        "status": "issued",
    }
    assert invoice_problems(good) == []
    problems = invoice_problems({**good, **invoice})
    assert any(p["field"] == field and problem in p["problem"] for p in problems), problems


def test_criteria_without_their_results_are_undecided() -> None:
    """A success criterion whose checks did not run is ERROR, never PASS."""
    only_invoice = [CheckResult("verify:invoice", Status.PASS, "made one")]
    finance = finance_operations(only_invoice)
    assert finance.status is Status.ERROR
    assert "verify:csv-xero was not run" in finance.summary
    assert rbac_summary([]).status is Status.ERROR


async def test_same_tokens_are_refused(client: httpx.AsyncClient) -> None:
    """Identical finance and limited tokens cannot verify RBAC and are refused up front."""
    with pytest.raises(ValueError, match="same"):
        await verify(client, "http://127.0.0.1:9", limited_token=FINANCE_TOKEN)


@pytest.mark.parametrize("date_format", ["%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d"])
async def test_quickbooks_csv_in_the_importers_own_spelling_passes(
    product: FakeProduct, client: httpx.AsyncClient, date_format: str
) -> None:
    """A QuickBooks CSV headed as its importer maps it ("Invoice number", "Due date", ...) with
    dates in any regional format QuickBooks reads passes, as QuickBooks would import it."""
    product.quickbooks_importer_names = True
    product.quickbooks_date_format = date_format
    results = await verify(client, product.url)
    assert not_passing(results) == {}
    assert results["verify:csv-quickbooks"].evidence["columns"][0] == "Invoice number"


def test_quickbooks_columns_are_matched_without_case_or_spaces() -> None:
    """Every spelling QuickBooks maps is found whatever its case and spacing; Xero's template
    names stay exact."""
    header = ["invoice NO", "*Customer", "Invoice Date", " due  date ", "ITEMAMOUNT", "Memo"]
    assert import_columns("quickbooks", header) == {
        "InvoiceNo": 0,
        "Customer": 1,
        "InvoiceDate": 2,
        "DueDate": 3,
        "ItemAmount": 4,
    }
    assert "ContactName" not in import_columns("xero", ["contact name", "*InvoiceNumber"])


@pytest.mark.parametrize(
    ("issued", "due", "problem"),
    [
        ("11/20/2026", "12/20/2026", None),
        ("20/11/2026", "20/12/2026", None),
        ("01/02/2026", "02/01/2026", None),  # either reading may be meant; one is in order
        ("2026-11-20", "2026-11-20", None),
        ("2026-11-20", "12/20/2026", "two different formats"),
        ("2026-11-20", "2026-11-19", "is before its invoice date"),
        ("12/20/2026", "11/20/2026", "is before its invoice date"),
        ("20.11.2026", "2026-12-20", "invoice date '20.11.2026' is not a date QuickBooks"),
        ("2026-11-20", "", "due date '' is not a date QuickBooks imports"),
    ],
)
def test_quickbooks_dates(issued: str, due: str, problem: str | None) -> None:
    """A row's dates import when one of QuickBooks' formats reads both with the due date not
    before the invoice date; otherwise the reason is named."""
    found = quickbooks_date_problem(issued, due)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


async def test_generated_invoice_is_voided_after_the_checks(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """With a void path, the invoice the round made is voided once every other check is done,
    and the result names the leads and the invoice it created."""
    results = await verify(client, product.url)
    cleanup = results["verify:cleanup"]
    assert cleanup.status is Status.PASS and cleanup.evidence["voided"] is True
    invoice_id = cleanup.evidence["invoice"]["id"]
    assert product.invoices[invoice_id].status == "void"
    made = [lead.id for lead in product.leads.values()]
    assert sorted(cleanup.evidence["leads"]) == sorted(made) and len(made) == 4
    assert cleanup.evidence["invoice"]["invoice_number"] in cleanup.summary
    void = product.requests_to(f"/billing/invoices/{invoice_id}/void", "POST")
    last_other = max(r.at for r in product.requests if r not in void)
    assert len(void) == 1 and void[0].at >= last_other
    assert void[0].header("authorization") == f"Bearer {FINANCE_TOKEN}"


async def test_without_a_void_path_the_test_invoice_remains(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """Without `invoice_void` nothing is voided, and a warning (not a block) says the invoice
    remains."""
    results = await verify(client, product.url, paths=VerificationPaths())
    cleanup = results["verify:cleanup"]
    assert cleanup.status is Status.WARN and cleanup.status.ok
    assert "the test invoice remains" in cleanup.summary
    assert all(i.status != "void" for i in product.invoices.values() if i.lead_id)
    assert not_passing(results) == {"verify:cleanup": Status.WARN}


async def test_a_failing_void_is_a_warning_that_the_invoice_remains(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """A void the product refuses leaves the invoice, said as a warning naming the answer."""
    paths = VerificationPaths(invoice_void="/billing/invoices/{id}/cancel")
    cleanup = (await verify(client, product.url, paths=paths))["verify:cleanup"]
    assert cleanup.status is Status.WARN and cleanup.evidence["voided"] is False
    assert "voiding it failed, so the test invoice remains" in cleanup.summary
    assert "404" in cleanup.summary
