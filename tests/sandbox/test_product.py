"""FakeProduct: the portal API of docs/product-api.md with RBAC, faults, health and metrics."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from bot.sandbox import FAULT_SWITCHES, FakeClock, FakeProduct
from bot.sandbox.documents import QUICKBOOKS_COLUMNS, XERO_COLUMNS
from bot.sandbox.product import DEFAULT_FINANCE_TOKEN, DEFAULT_LIMITED_TOKEN

FINANCE = {"Authorization": f"Bearer {DEFAULT_FINANCE_TOKEN}"}
LIMITED = {"Authorization": f"Bearer {DEFAULT_LIMITED_TOKEN}"}
NUMBER = re.compile(r"^INV-(\d{6})-(\d{6})$")


@pytest.fixture
async def product(clock: FakeClock) -> AsyncIterator[FakeProduct]:
    """A FakeProduct on the frozen clock (2026-11-20), traffic generator stopped."""
    async with FakeProduct(clock=clock) as fake:
        yield fake


async def new_invoice(product: FakeProduct, client: httpx.AsyncClient) -> dict[str, Any]:
    """Create a lead and an invoice for it with the finance token."""
    lead = await client.post(
        f"{product.url}/leads",
        json={"name": "Ada Lovelace", "email": "ada@example.com"},
        headers=FINANCE,
    )
    response = await client.post(
        f"{product.url}/billing/invoices", json={"lead_id": lead.json()["id"]}, headers=FINANCE
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def assert_valid_pdf(data: bytes) -> bytes:
    """Check the PDF skeleton by re-reading it: header, xref offsets, trailer, %%EOF."""
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    startxref = int(data[data.rindex(b"startxref") :].split()[1])
    assert data[startxref:].startswith(b"xref")
    lines = data[startxref:].split(b"\n")
    first, count = (int(x) for x in lines[1].split())
    entries = data[startxref:].split(b"\n", 2)[2][: 20 * count]
    assert len(entries) == 20 * count
    for number in range(first, first + count):
        entry = entries[20 * number : 20 * (number + 1)]
        offset, generation, kind = entry[:10], entry[11:16], entry[17:18]
        if kind == b"f":
            continue
        assert kind == b"n"
        assert data[int(offset) :].startswith(f"{number} {int(generation)} obj".encode())
    trailer = data[data.rindex(b"trailer") : data.rindex(b"startxref")]
    assert f"/Size {count}".encode() in trailer
    root = int(re.search(rb"/Root (\d+) 0 R", trailer)[1])  # type: ignore[index]
    root_at = data.index(f"\n{root} 0 obj".encode())
    assert b"/Type /Catalog" in data[root_at : root_at + 80]
    stream = re.search(rb"/Length (\d+) >>\nstream\n", data)
    assert stream is not None
    body = data[stream.end() : stream.end() + int(stream[1])]
    assert data[stream.end() + int(stream[1]) :].startswith(b"\nendstream")
    return body


async def test_lead_lifecycle_and_illegal_jump(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """Leads go initiated → qualified → converted; initiated → converted is refused with 409."""
    created = await client.post(
        f"{product.url}/leads", json={"name": "Ada", "email": "ada@example.com"}, headers=LIMITED
    )
    assert created.status_code == 201
    lead = created.json()
    assert lead["status"] == "initiated" and {"id", "name", "email"} <= set(lead)
    url = f"{product.url}/leads/{lead['id']}"
    jump = await client.patch(url, json={"status": "converted"}, headers=LIMITED)
    assert jump.status_code == 409 and "error" in jump.json()
    for status in ("qualified", "converted"):
        moved = await client.patch(url, json={"status": status}, headers=LIMITED)
        assert (moved.status_code, moved.json()["status"]) == (200, status)
    other = (
        await client.post(
            f"{product.url}/leads",
            json={"name": "Bob", "email": "bob@example.com"},
            headers=FINANCE,
        )
    ).json()
    rejected = await client.patch(
        f"{product.url}/leads/{other['id']}", json={"status": "rejected"}, headers=FINANCE
    )
    assert rejected.json()["status"] == "rejected"
    missing = await client.patch(
        f"{product.url}/leads/999", json={"status": "qualified"}, headers=FINANCE
    )
    assert missing.status_code == 404
    anonymous = await client.post(f"{product.url}/leads", json={"name": "x", "email": "x@y"})
    assert anonymous.status_code == 401


async def test_illegal_jump_fault_accepts_it(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """With lead_illegal_jump_accepted the API wrongly lets initiated → converted through."""
    product.set_fault_switch("lead_illegal_jump_accepted")
    lead = (
        await client.post(
            f"{product.url}/leads",
            json={"name": "Ada", "email": "ada@example.com"},
            headers=FINANCE,
        )
    ).json()
    jump = await client.patch(
        f"{product.url}/leads/{lead['id']}", json={"status": "converted"}, headers=FINANCE
    )
    assert (jump.status_code, jump.json()["status"]) == (200, "converted")


PROTECTED = [
    ("GET", "/billing/report?from=2026-01-01&to=2026-12-31"),
    ("POST", "/billing/invoices"),
    ("GET", "/billing/invoices/{id}/pdf"),
    ("GET", "/billing/invoices/{id}/csv?target=xero"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_protected_endpoints_rbac(
    product: FakeProduct, client: httpx.AsyncClient, method: str, path: str
) -> None:
    """No token → 401, limited token → 403, finance token → 2xx; rbac_hole lets limited in."""
    invoice = await new_invoice(product, client)
    lead_id = invoice["lead_id"]
    url = product.url + path.format(id=invoice["id"])
    body = {"lead_id": lead_id} if method == "POST" else None

    async def status(headers: dict[str, str]) -> int:
        return (await client.request(method, url, json=body, headers=headers)).status_code

    assert await status({}) == 401
    assert await status({"Authorization": "Bearer nonsense"}) == 401
    assert await status(LIMITED) == 403
    assert 200 <= await status(FINANCE) < 300
    product.set_fault_switch("rbac_hole")
    assert 200 <= await status(LIMITED) < 300


async def test_invoice_number_and_dates_follow_the_clock(
    product: FakeProduct, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """invoice_number is INV-<issue YYYYMM>-<6 digits>; due_date is issue + 14 days."""
    invoice = await new_invoice(product, client)
    assert {"id", "invoice_number", "issue_date", "due_date", "total", "currency", "status"} <= set(
        invoice
    )
    assert invoice["status"] == "issued"
    match = NUMBER.match(invoice["invoice_number"])
    assert match is not None and match[1] == "202611"
    assert (invoice["issue_date"], invoice["due_date"]) == ("2026-11-20", "2026-12-04")
    clock.set(clock().replace(month=12, day=31))
    later = await new_invoice(product, client)
    assert later["invoice_number"].startswith("INV-202612-")
    assert int(NUMBER.match(later["invoice_number"])[2]) > int(match[2])  # type: ignore[index]
    assert later["due_date"] == "2027-01-14"


def _bad_number(inv: dict[str, Any]) -> bool:
    return NUMBER.match(inv["invoice_number"]) is None


def _wrong_month(inv: dict[str, Any]) -> bool:
    return str(inv["invoice_number"])[4:10] != str(inv["issue_date"])[:7].replace("-", "")


def _invalid_due(inv: dict[str, Any]) -> bool:
    try:
        date.fromisoformat(inv["due_date"])
    except ValueError:
        return True
    return False


@pytest.mark.parametrize(
    ("switch", "broken"),
    [
        ("invoice_number_format", _bad_number),
        ("invoice_wrong_month", _wrong_month),
        ("due_date_missing", lambda inv: "due_date" not in inv),
        ("due_date_invalid", _invalid_due),
        ("due_date_before_issue", lambda inv: inv["due_date"] < inv["issue_date"]),
    ],
)
async def test_invoice_fault_switches(
    product: FakeProduct, client: httpx.AsyncClient, switch: str, broken: Any
) -> None:
    """Each invoice fault switch produces exactly the defect a verification check must catch."""
    assert not broken(await new_invoice(product, client))
    product.set_fault_switch(switch)
    assert broken(await new_invoice(product, client))


async def test_pdf_is_a_valid_pdf_naming_the_invoice(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """The PDF export is application/pdf with correct xref offsets and the invoice number."""
    invoice = await new_invoice(product, client)
    response = await client.get(
        f"{product.url}/billing/invoices/{invoice['id']}/pdf", headers=FINANCE
    )
    assert response.headers["content-type"] == "application/pdf"
    content = assert_valid_pdf(response.content)
    assert invoice["invoice_number"].encode() in content


async def test_pdf_broken_fault(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """pdf_broken keeps the PDF content type but the body is not a PDF."""
    invoice = await new_invoice(product, client)
    product.set_fault_switch("pdf_broken")
    response = await client.get(
        f"{product.url}/billing/invoices/{invoice['id']}/pdf", headers=FINANCE
    )
    assert response.headers["content-type"] == "application/pdf"
    assert not response.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("target", "columns"), [("xero", XERO_COLUMNS), ("quickbooks", QUICKBOOKS_COLUMNS)]
)
async def test_csv_exports(
    product: FakeProduct, client: httpx.AsyncClient, target: str, columns: tuple[str, ...]
) -> None:
    """Each CSV target has that system's import columns and one row naming the invoice."""
    invoice = await new_invoice(product, client)
    url = f"{product.url}/billing/invoices/{invoice['id']}/csv"
    response = await client.get(url, params={"target": target}, headers=FINANCE)
    assert response.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    rows = list(reader)
    assert tuple(reader.fieldnames or ()) == columns
    assert len(rows) == 1
    assert invoice["invoice_number"] in rows[0].values()
    product.set_fault_switch("csv_missing_column")
    broken = await client.get(url, params={"target": target}, headers=FINANCE)
    header = next(csv.reader(io.StringIO(broken.text)))
    assert len(header) == len(columns) - 1
    assert not any(c.lstrip("*") == "DueDate" for c in header)


async def test_csv_unknown_target_is_400(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """target must be xero or quickbooks."""
    invoice = await new_invoice(product, client)
    response = await client.get(
        f"{product.url}/billing/invoices/{invoice['id']}/csv?target=sage", headers=FINANCE
    )
    assert response.status_code == 400


async def test_report_filters_range_and_statuses(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """Rows lie inside [from, to] and carry one of the asked statuses; totals add up."""
    params = httpx.QueryParams(
        [("from", "2026-07-01"), ("to", "2026-10-31"), ("status", "paid"), ("status", "void")]
    )
    response = await client.get(f"{product.url}/billing/report", params=params, headers=FINANCE)
    body = response.json()
    assert (body["from"], body["to"], body["statuses"]) == (
        "2026-07-01",
        "2026-10-31",
        ["paid", "void"],
    )
    rows = body["rows"]
    assert rows, "the seeded invoices should include paid ones in this range"
    assert all("2026-07-01" <= r["issue_date"] <= "2026-10-31" for r in rows)
    assert all(r["status"] in ("paid", "void") for r in rows)
    assert {"invoice_number", "issue_date", "status", "total"} <= set(rows[0])
    expected = [
        i
        for i in product.invoices.values()
        if i.status in ("paid", "void") and "2026-07-01" <= i.issue_date <= "2026-10-31"
    ]
    assert len(rows) == len(expected) == body["totals"]["count"]
    assert body["totals"]["amount"] == f"{sum(i.total for i in expected):.2f}"
    everything = await client.get(
        f"{product.url}/billing/report",
        params={"from": "2000-01-01", "to": "2030-01-01"},
        headers=FINANCE,
    )
    assert len(everything.json()["rows"]) == len(product.invoices)


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-13-01&to=2026-12-31",
        "from=20260101&to=2026-12-31",
        "to=2026-12-31",
        "from=2026-12-31&to=2026-01-01",
        "from=2026-01-01&to=2026-12-31&status=lost",
    ],
)
async def test_report_bad_parameters_are_400(
    product: FakeProduct, client: httpx.AsyncClient, query: str
) -> None:
    """Malformed, missing or reversed dates and unknown statuses are 400."""
    response = await client.get(f"{product.url}/billing/report?{query}", headers=FINANCE)
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("switch", ["report_rows_outside_range", "report_wrong_status"])
async def test_report_fault_switches(
    product: FakeProduct, client: httpx.AsyncClient, switch: str
) -> None:
    """The report faults add a row outside the range or with a status that was not asked for."""
    params = httpx.QueryParams([("from", "2026-09-01"), ("to", "2026-10-31"), ("status", "paid")])

    async def violations() -> int:
        rows = (
            await client.get(f"{product.url}/billing/report", params=params, headers=FINANCE)
        ).json()["rows"]
        return sum(
            1
            for r in rows
            if not ("2026-09-01" <= r["issue_date"] <= "2026-10-31") or r["status"] != "paid"
        )

    assert await violations() == 0
    product.set_fault_switch(switch)
    assert await violations() == 1


async def test_fault_switches_over_http(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """POST /_sandbox/faults flips switches by name; unknown names are 400."""
    response = await client.post(f"{product.url}/_sandbox/faults", json={"pdf_broken": True})
    assert response.json()["pdf_broken"] is True
    assert product.faults["pdf_broken"]
    assert set(response.json()) == set(FAULT_SWITCHES)
    await client.post(f"{product.url}/_sandbox/faults", json={"pdf_broken": False})
    assert not product.faults["pdf_broken"]
    bad = await client.post(f"{product.url}/_sandbox/faults", json={"no_such_fault": True})
    assert bad.status_code == 400


async def test_health_per_service(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """/health/{service} is 200 ok, 503 when switched unhealthy, 404 for unknown services."""
    url = f"{product.url}/health/billing-api"
    assert (await client.get(url)).json()["status"] == "ok"
    product.set_health("billing-api", False)
    assert (await client.get(url)).status_code == 503
    await client.post(f"{product.url}/_sandbox/health", json={"service": "billing-api", "ok": True})
    assert (await client.get(url)).status_code == 200
    assert (await client.get(f"{product.url}/health/nope")).status_code == 404


async def test_release_notes_page(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """/notes/{version} serves HTML for any version unless its notes were removed."""
    page = await client.get(f"{product.url}/notes/v2.4.0")
    assert page.status_code == 200 and "v2.4.0" in page.text
    assert page.headers["content-type"].startswith("text/html")
    product.set_notes("v2.4.0", None)
    assert (await client.get(f"{product.url}/notes/v2.4.0")).status_code == 404


async def test_void_marks_the_invoice_void_and_refuses_a_second_void(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """POST …/void voids an invoice for the finance role only; voiding it again is a 409."""
    invoice = await new_invoice(product, client)
    url = f"{product.url}/billing/invoices/{invoice['id']}/void"
    assert (await client.post(url)).status_code == 401
    assert (await client.post(url, headers=LIMITED)).status_code == 403
    first = await client.post(url, headers=FINANCE)
    assert first.status_code == 200 and first.json()["status"] == "void"
    assert product.invoices[invoice["id"]].status == "void"
    again = await client.post(url, headers=FINANCE)
    assert again.status_code == 409 and "already void" in again.json()["error"]
    missing = await client.post(f"{product.url}/billing/invoices/999999/void", headers=FINANCE)
    assert missing.status_code == 404
