"""Runbook §5 money-path verification against the product API (docs/product-api.md).

`verify_money_paths` returns one result per name in RESULT_NAMES, in that order:

- `verify:leads` — a lead goes initiated → qualified → converted and another initiated → rejected
  (POST the leads path → 201 with an id and status initiated; PATCH the lead → 200 with the new
  status).
- `verify:leads-jump` — a third lead's illegal jump initiated → converted is refused (409 or
  422).
- `verify:report` — the billing report for the last `report_days` days and `report_statuses`: 200,
  the documented shape, every row's issue_date inside the range and status one of those asked.
- `verify:invoice` — invoice generation for a lead the chain created: 201, every documented field,
  `invoice_number` is INV-YYYYMM-###### with YYYYMM the month of `issue_date`, `due_date` a real
  date (YYYY-MM-DD) not before the issue date.
- `verify:pdf` — that invoice's PDF: application/pdf, the `%PDF-` signature, parses with pypdf,
  at least one page.
- `verify:csv-xero`, `verify:csv-quickbooks` — that invoice's accounting CSV: text/csv, parses,
  carries the system's required import columns (a leading `*` is allowed) and a row whose number
  column holds the invoice's number. QuickBooks' columns may be spelled any way its importer maps
  (`Invoice number`, `InvoiceNo`, `Invoice No`, …; case and spaces do not matter), and that
  row's invoice and due dates must parse (MM/DD/YYYY, DD/MM/YYYY or YYYY-MM-DD, one format for
  both) with the due date not before the invoice date.
- `rbac:invoices`, `rbac:pdf`, `rbac:csv`, `rbac:report` — no token → 401, the limited token → 403,
  the finance token → 2xx. The finance cell of `rbac:invoices` is the `verify:invoice` creation
  itself (no second invoice is made); the other cells are requests of their own.
- `verify:cleanup` — what the round left in the product: the ids of the leads and the invoice it
  created (evidence `leads`, `invoice`). Once every other check is done, the invoice is voided
  where a void path is given (POST, 2xx): PASS. Without a void path, or when the void fails, the
  test invoice remains: WARN, which says so without blocking the release.

Statuses: PASS only when verified; FAIL when the product answered and broke the contract (the
summary names the field, row, column or endpoint and token); ERROR when it could not be evaluated
(unreachable, timeout, HTML page, malformed JSON, empty body, 5xx/429, the finance token refused,
or a chain step it depends on failed — "not verified: …").

Evidence of every result: `requests`, the calls made, each `{"request": "METHOD /path?query",
"token": "finance"|"limited"|"none", "status": int|None}` plus `content_type` and, when there
was no answer, `error` — never a token. FAIL results add `field`/`value` or `problems`/`offending`
lists naming the offending data.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from bot.domain.redact import safe_url
from checks.base import CheckResult, Status
from checks.http import ProviderError, excerpt, request_json, send

PROVIDER = "the product API"

LEADS = "verify:leads"
LEADS_JUMP = "verify:leads-jump"
REPORT = "verify:report"
INVOICE = "verify:invoice"
PDF = "verify:pdf"
CSV_XERO = "verify:csv-xero"
CSV_QUICKBOOKS = "verify:csv-quickbooks"
RBAC_INVOICES = "rbac:invoices"
RBAC_PDF = "rbac:pdf"
RBAC_CSV = "rbac:csv"
RBAC_REPORT = "rbac:report"
CLEANUP = "verify:cleanup"
RESULT_NAMES: tuple[str, ...] = (
    LEADS,
    LEADS_JUMP,
    REPORT,
    INVOICE,
    PDF,
    CSV_XERO,
    CSV_QUICKBOOKS,
    RBAC_INVOICES,
    RBAC_PDF,
    RBAC_CSV,
    RBAC_REPORT,
    CLEANUP,
)
RBAC_NAMES: tuple[str, ...] = (RBAC_INVOICES, RBAC_PDF, RBAC_CSV, RBAC_REPORT)
FINANCE_CRITERION = "criterion:finance-operations"
RBAC_CRITERION = "criterion:rbac"

INVOICE_FIELDS = ("id", "invoice_number", "issue_date", "due_date", "total", "currency", "status")
REPORT_FIELDS = ("from", "to", "statuses", "rows", "totals")
REPORT_ROW_FIELDS = ("invoice_number", "issue_date", "status", "total")
SYSTEMS = {"xero": "Xero", "quickbooks": "QuickBooks"}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "xero": (
        "ContactName",
        "InvoiceNumber",
        "InvoiceDate",
        "DueDate",
        "Description",
        "Quantity",
        "UnitAmount",
        "AccountCode",
        "TaxType",
    ),
    "quickbooks": ("InvoiceNo", "Customer", "InvoiceDate", "DueDate", "ItemAmount"),
}
NUMBER_COLUMN = {"xero": "InvoiceNumber", "quickbooks": "InvoiceNo"}
# The header spellings QuickBooks Online's invoice importer maps onto each required field by
# itself, compared without case or spaces. From Intuit's own material: the sample import file
# of its "Import invoices" help article (InvoiceNo, Customer, InvoiceDate, DueDate, ItemAmount)
# and the list of default headers the importer recognises given by Intuit on the QuickBooks
# community (quickbooks.intuit.com/learn-support, "Do we need to map fields every time when
# importing invoices?": Invoice number, Customer, Invoice date, Due date, Item amount, ...).
QUICKBOOKS_SPELLINGS: dict[str, tuple[str, ...]] = {
    "InvoiceNo": ("InvoiceNo", "Invoice No", "Invoice number"),
    "Customer": ("Customer",),
    "InvoiceDate": ("InvoiceDate", "Invoice date"),
    "DueDate": ("DueDate", "Due date"),
    "ItemAmount": ("ItemAmount", "Item amount"),
}
# The date formats QuickBooks Online imports, depending on the company's region.
QUICKBOOKS_DATE_FORMATS: tuple[tuple[str, str], ...] = (
    ("%m/%d/%Y", "MM/DD/YYYY"),
    ("%d/%m/%Y", "DD/MM/YYYY"),
    ("%Y-%m-%d", "YYYY-MM-DD"),
)

Token = Literal["none", "limited", "finance"]
_TOKEN_WORDS: dict[Token, str] = {
    "none": "no token",
    "limited": "the limited token",
    "finance": "the finance token",
}
_EXPECTED: dict[Token, str] = {"none": "401", "limited": "403", "finance": "2xx"}
# 4xx answers a JSON call reads as the product's own verdict (a FAIL when unexpected); 401, 403,
# 404 and 429 stay errors, as request_json decides (a wrong token or URL, or rate limiting).
_REFUSALS = tuple(c for c in range(400, 500) if c not in (401, 403, 404, 429))
_INVOICE_NUMBER = re.compile(r"INV-(\d{4})(\d{2})-(\d{6})")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


class ProductPaths(Protocol):
    """The product API paths (bot.domain.config.VerificationPaths fits); `{id}` is replaced."""

    @property
    def leads(self) -> str: ...

    @property
    def lead(self) -> str: ...

    @property
    def billing_report(self) -> str: ...

    @property
    def invoices(self) -> str: ...

    @property
    def invoice_pdf(self) -> str: ...

    @property
    def invoice_csv(self) -> str: ...

    @property
    def invoice_void(self) -> str | None: ...


class _Wrong(Exception):
    """The product answered and broke its contract: a FAIL with the offending data."""

    def __init__(self, message: str, **evidence: Any) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence


@dataclass
class _Call:
    """One request as evidence: what was asked with which kind of token, and the answer."""

    request: str
    token: Token
    status: int | None = None
    content_type: str = ""
    error: str | None = None

    def evidence(self) -> dict[str, Any]:
        data: dict[str, Any] = {"request": self.request, "token": self.token, "status": self.status}
        if self.content_type:
            data["content_type"] = self.content_type
        if self.error:
            data["error"] = self.error
        return data


Trail = list[_Call]


def _display(method: str, url: str, params: Any) -> str:
    target = httpx.URL(url, params=params) if params is not None else httpx.URL(url)
    return f"{method} {safe_url(target.raw_path.decode('ascii', 'replace'))}"


def _is_html(content_type: str) -> bool:
    return "html" in content_type.lower()


def _fill(template: str, value: Any) -> str:
    return template.replace("{id}", quote(str(value), safe=""))


@dataclass(frozen=True)
class _Api:
    """The product API with the configured tokens; records every call on a trail."""

    client: httpx.AsyncClient
    base_url: str
    tokens: dict[Token, str]
    timeout: float

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def headers(self, token: Token, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        secret = self.tokens.get(token)
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        return headers

    async def json(
        self,
        trail: Trail,
        method: str,
        path: str,
        token: Token,
        *,
        body: Any = None,
        params: Any = None,
    ) -> tuple[_Call, Any]:
        """A JSON call; ProviderError when unusable, else the call and its parsed body."""
        url = self.url(path)
        call = _Call(_display(method, url, params), token)
        trail.append(call)
        try:
            answer = await request_json(
                self.client,
                method,
                url,
                provider=PROVIDER,
                headers=self.headers(token, "application/json"),
                params=params,
                json_body=body,
                timeout=self.timeout,
                ok=_REFUSALS,
            )
        except ProviderError as exc:
            status = exc.evidence.get("status_code")
            call.status = status if isinstance(status, int) else None
            call.content_type = str(exc.evidence.get("content_type") or "")
            if call.status is None:
                call.error = exc.message
            extra = {k: v for k, v in exc.evidence.items() if k == "body"}
            raise ProviderError(f"{exc.message} ({call.request})", extra) from None
        call.status = answer.response.status_code
        call.content_type = answer.response.headers.get("content-type", "")
        return call, answer.data

    async def send(
        self,
        trail: Trail,
        method: str,
        path: str,
        token: Token,
        *,
        body: Any = None,
        params: Any = None,
        accept: str = "*/*",
    ) -> tuple[_Call, httpx.Response]:
        """Any call; ProviderError when there is no answer at all."""
        url = self.url(path)
        call = _Call(_display(method, url, params), token)
        trail.append(call)
        try:
            response = await send(
                self.client,
                method,
                url,
                provider=PROVIDER,
                headers=self.headers(token, accept),
                params=params,
                json_body=body,
                timeout=self.timeout,
                redirects=False,  # a bearer token never follows a redirect
            )
        except ProviderError as exc:
            call.error = exc.message
            raise ProviderError(f"{exc.message} ({call.request})") from None
        call.status = response.status_code
        call.content_type = response.headers.get("content-type", "")
        return call, response


class _Labels:
    """Names and emails for test data, prefixed `golive-verify` so the product can clean up."""

    def __init__(self, label: str, run: str) -> None:
        slug = _SLUG.sub("-", label).strip("-.") or "release"
        self.prefix = f"golive-verify-{slug}-{run}"
        self._numbers = itertools.count(1)

    def next(self) -> dict[str, str]:
        tag = f"{self.prefix}-{next(self._numbers)}"
        return {"name": tag, "email": f"{tag}@example.invalid"}


def _requests(trail: Trail) -> list[dict[str, Any]]:
    return [c.evidence() for c in trail]


async def _judge(
    name: str, trail: Trail, work: Callable[[], Awaitable[tuple[str, dict[str, Any]]]]
) -> CheckResult:
    """Run one chain step: PASS with its summary, FAIL on _Wrong, ERROR on anything else."""
    started = time.monotonic()
    try:
        summary, extra = await work()
    except _Wrong as exc:
        return CheckResult(
            name,
            Status.FAIL,
            exc.message,
            {**exc.evidence, "requests": _requests(trail)},
            time.monotonic() - started,
        )
    except ProviderError as exc:
        return CheckResult(
            name,
            Status.ERROR,
            exc.message,
            {**exc.evidence, "requests": _requests(trail)},
            time.monotonic() - started,
        )
    except Exception as exc:  # a crashing check is an error, never a pass
        return CheckResult(
            name,
            Status.ERROR,
            f"{name} could not run: {type(exc).__name__}: {exc}",
            {"exception": type(exc).__name__, "requests": _requests(trail)},
            time.monotonic() - started,
        )
    return CheckResult(
        name,
        Status.PASS,
        summary,
        {**extra, "requests": _requests(trail)},
        time.monotonic() - started,
    )


def _blocked(name: str, reason: str) -> CheckResult:
    return CheckResult(
        name, Status.ERROR, f"not verified: {reason}", {"blocked_by": INVOICE, "requests": []}
    )


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return f" ({data[key]})"
    return ""


def _expect_status(call: _Call, data: Any, want: int, what: str) -> None:
    if call.status != want:
        raise _Wrong(
            f"{what}: {call.request} answered HTTP {call.status}, expected {want}"
            f"{_error_text(data)}",
            status=call.status,
            body=data,
        )


def _object(call: _Call, data: Any, what: str) -> dict[str, Any]:
    if data is None:
        raise ProviderError(
            f"{PROVIDER} answered HTTP {call.status} with an empty body ({call.request})"
        )
    if not isinstance(data, dict):
        raise _Wrong(
            f"{what}: {call.request} answered a JSON {type(data).__name__}, not an object",
            body=data,
        )
    return data


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# -- leads ------------------------------------------------------------------------------------
async def _new_lead(api: _Api, trail: Trail, paths: ProductPaths, labels: _Labels) -> Any:
    call, data = await api.json(trail, "POST", paths.leads, "finance", body=labels.next())
    _expect_status(call, data, 201, "creating a lead")
    lead = _object(call, data, "creating a lead")
    lead_id = lead.get("id")
    if lead_id is None or isinstance(lead_id, bool) or lead_id == "":
        raise _Wrong(
            f"creating a lead: {call.request} answered without an id", field="id", value=lead_id
        )
    if lead.get("status") != "initiated":
        raise _Wrong(
            f"creating a lead: the new lead's status is {lead.get('status')!r}, not 'initiated'",
            field="status",
            value=lead.get("status"),
        )
    return lead_id


async def _move(
    api: _Api, trail: Trail, paths: ProductPaths, lead_id: Any, was: str, status: str
) -> None:
    what = f"moving lead {lead_id} {was} → {status}"
    call, data = await api.json(
        trail, "PATCH", _fill(paths.lead, lead_id), "finance", body={"status": status}
    )
    _expect_status(call, data, 200, what)
    lead = _object(call, data, what)
    if lead.get("status") != status:
        raise _Wrong(
            f"{what}: {call.request} answered 200 but the lead's status is "
            f"{lead.get('status')!r}, not {status!r}",
            field="status",
            value=lead.get("status"),
        )


async def _leads(api: _Api, paths: ProductPaths, labels: _Labels) -> CheckResult:
    """Two lifecycles at once: → qualified → converted, and → rejected."""
    started = time.monotonic()
    converting: Trail = []
    rejecting: Trail = []

    async def convert() -> tuple[str, dict[str, Any]]:
        lead_id = await _new_lead(api, converting, paths, labels)
        await _move(api, converting, paths, lead_id, "initiated", "qualified")
        await _move(api, converting, paths, lead_id, "qualified", "converted")
        return f"lead {lead_id} went initiated → qualified → converted", {"converted": lead_id}

    async def reject() -> tuple[str, dict[str, Any]]:
        lead_id = await _new_lead(api, rejecting, paths, labels)
        await _move(api, rejecting, paths, lead_id, "initiated", "rejected")
        return f"lead {lead_id} went initiated → rejected", {"rejected": lead_id}

    parts = await asyncio.gather(
        _judge(LEADS, converting, convert), _judge(LEADS, rejecting, reject)
    )
    evidence: dict[str, Any] = {}
    for part in parts:
        evidence.update({k: v for k, v in part.evidence.items() if k != "requests"})
    evidence["requests"] = [r for part in parts for r in part.evidence["requests"]]
    statuses = {p.status for p in parts}
    status = (
        Status.FAIL
        if Status.FAIL in statuses
        else Status.ERROR
        if Status.ERROR in statuses
        else Status.PASS
    )
    shown = parts if status is Status.PASS else [p for p in parts if p.status is not Status.PASS]
    summary = "; ".join(dict.fromkeys(p.summary for p in shown))  # one sentence per problem
    return CheckResult(LEADS, status, summary, evidence, time.monotonic() - started)


async def _leads_jump(
    api: _Api, trail: Trail, paths: ProductPaths, labels: _Labels
) -> tuple[str, dict[str, Any]]:
    lead_id = await _new_lead(api, trail, paths, labels)
    call, data = await api.json(
        trail, "PATCH", _fill(paths.lead, lead_id), "finance", body={"status": "converted"}
    )
    jump = f"the illegal jump initiated → converted ({call.request})"
    if call.status in (409, 422):
        return f"the API refused {jump} with HTTP {call.status}", {"lead": lead_id}
    now = data.get("status") if isinstance(data, dict) else None
    if call.status is not None and 200 <= call.status < 300:
        after = f"; the lead is now {now!r}" if now is not None else ""
        raise _Wrong(
            f"the API accepted {jump} with HTTP {call.status}{after}; it must refuse it (409 "
            f"or 422)",
            field="status",
            value="converted",
            status=call.status,
            lead=lead_id,
        )
    raise _Wrong(
        f"the API answered {jump} with HTTP {call.status}, expected 409 or 422{_error_text(data)}",
        status=call.status,
        lead=lead_id,
        body=data,
    )


# -- billing report ---------------------------------------------------------------------------
def _row_problems(
    rows: list[Any], start: date, end: date, statuses: Sequence[str]
) -> list[dict[str, Any]]:
    offending: list[dict[str, Any]] = []

    def bad(index: int, row: Any, field: str, value: Any, problem: str) -> None:
        number = row.get("invoice_number") if isinstance(row, dict) else None
        offending.append(
            {
                "row": index,
                "invoice_number": number,
                "field": field,
                "value": value,
                "problem": problem,
            }
        )

    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            bad(index, row, "row", row, "is not an object")
            continue
        absent = [k for k in REPORT_ROW_FIELDS if k not in row]
        if absent:
            bad(index, row, absent[0], None, f"lacks {', '.join(absent)}")
        raw = row.get("issue_date")
        day = _day(raw)
        if "issue_date" not in absent and day is None:
            bad(index, row, "issue_date", raw, f"issue_date {raw!r} is not a real date")
        elif day is not None and not start <= day <= end:
            bad(index, row, "issue_date", raw, f"issue_date {raw} is outside {start}..{end}")
        status = row.get("status")
        if "status" not in absent and status not in statuses:
            bad(
                index,
                row,
                "status",
                status,
                f"status {status!r} is not one of those asked ({', '.join(statuses)})",
            )
    return offending


async def _report(
    api: _Api,
    trail: Trail,
    paths: ProductPaths,
    start: date,
    end: date,
    statuses: Sequence[str],
) -> tuple[str, dict[str, Any]]:
    what = "the billing report"
    call, data = await api.json(
        trail, "GET", paths.billing_report, "finance", params=_report_params(start, end, statuses)
    )
    _expect_status(call, data, 200, what)
    body = _object(call, data, what)
    missing = [k for k in REPORT_FIELDS if k not in body]
    if missing:
        raise _Wrong(f"{what} lacks {', '.join(missing)}", field=missing[0], value=None)
    if (body["from"], body["to"]) != (start.isoformat(), end.isoformat()):
        raise _Wrong(
            f"{what} answered for {body['from']}..{body['to']}, not the asked {start}..{end}",
            field="from/to",
            value=[body["from"], body["to"]],
        )
    if not isinstance(body["statuses"], list):
        raise _Wrong(f"{what}: statuses is not a list", field="statuses", value=body["statuses"])
    rows = body["rows"]
    if not isinstance(rows, list):
        raise _Wrong(f"{what}: rows is not a list", field="rows", value=rows)
    offending = _row_problems(rows, start, end, statuses)
    if offending:
        shown = "; ".join(
            f"row {o['row']} ({o['invoice_number'] or 'no number'}): {o['problem']}"
            for o in offending[:3]
        )
        more = f" (and {len(offending) - 3} more)" if len(offending) > 3 else ""
        raise _Wrong(
            f"{what} for {start}..{end} has {len(offending)} offending row(s): {shown}{more}",
            offending=offending[:20],
            offending_count=len(offending),
            rows=len(rows),
        )
    return (
        f"{what} for {start}..{end} ({', '.join(statuses)}) has {len(rows)} row(s), all inside "
        f"the range and of the asked statuses",
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "statuses": list(statuses),
            "rows": len(rows),
        },
    )


def _report_params(start: date, end: date, statuses: Sequence[str]) -> list[tuple[str, str]]:
    params = [("from", start.isoformat()), ("to", end.isoformat())]
    return params + [("status", s) for s in statuses]


# -- invoice, PDF, CSV ------------------------------------------------------------------------
def invoice_problems(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """Each way an invoice breaks docs/product-api.md: {field, value, problem}; empty if none."""
    problems: list[dict[str, Any]] = []

    def bad(field: str, problem: str) -> None:
        problems.append({"field": field, "value": invoice.get(field), "problem": problem})

    missing = [f for f in INVOICE_FIELDS if invoice.get(f) is None or invoice.get(f) == ""]
    for name in missing:
        bad(name, f"{name} is missing")
    issue = _day(invoice.get("issue_date"))
    if "issue_date" not in missing and issue is None:
        bad("issue_date", f"issue_date {invoice.get('issue_date')!r} is not a real date")
    number = invoice.get("invoice_number")
    if "invoice_number" not in missing:
        match = _INVOICE_NUMBER.fullmatch(number) if isinstance(number, str) else None
        if match is None:
            bad("invoice_number", f"invoice_number {number!r} does not match INV-YYYYMM-######")
        elif issue is not None and f"{match[1]}{match[2]}" != f"{issue:%Y%m}":
            bad(
                "invoice_number",
                f"invoice_number {number!r} carries the month {match[1]}{match[2]}, but "
                f"issue_date {issue} is in {issue:%Y%m}",
            )
        elif not 1 <= int(match[2]) <= 12:
            bad("invoice_number", f"invoice_number {number!r} carries no real month")
    due_raw = invoice.get("due_date")
    if "due_date" not in missing:
        due = _day(due_raw)
        if due is None:
            bad("due_date", f"due_date {due_raw!r} is not a real date (YYYY-MM-DD)")
        elif issue is not None and due < issue:
            bad("due_date", f"due_date {due} is before issue_date {issue}")
    return problems


@dataclass
class _InvoiceRun:
    """What the invoice chain learnt, for the steps that depend on it."""

    lead_id: Any = None
    invoice: dict[str, Any] = field(default_factory=dict)
    finance_call: _Call | None = None

    @property
    def invoice_id(self) -> Any:
        value = self.invoice.get("id")
        return None if value is None or isinstance(value, bool) or value == "" else value

    @property
    def number(self) -> str | None:
        value = self.invoice.get("invoice_number")
        return value if isinstance(value, str) and value else None


async def _make_invoice(
    api: _Api, trail: Trail, paths: ProductPaths, labels: _Labels, run: _InvoiceRun
) -> tuple[str, dict[str, Any]]:
    what = "invoice generation"
    run.lead_id = await _new_lead(api, trail, paths, labels)
    before = len(trail)
    try:
        call, data = await api.json(
            trail, "POST", paths.invoices, "finance", body={"lead_id": run.lead_id}
        )
    finally:
        run.finance_call = trail[before] if len(trail) > before else None
    _expect_status(call, data, 201, what)
    run.invoice = _object(call, data, what)
    shown = {k: run.invoice.get(k) for k in INVOICE_FIELDS}
    problems = invoice_problems(run.invoice)
    if problems:
        raise _Wrong(
            f"{what} ({call.request}) returned a broken invoice: "
            + "; ".join(p["problem"] for p in problems),
            problems=problems,
            invoice=shown,
        )
    return (
        f"{what} made {run.number} for lead {run.lead_id}: issued {shown['issue_date']}, "
        f"due {shown['due_date']}, {shown['total']} {shown['currency']}",
        {"invoice": shown},
    )


def _downloaded(call: _Call, response: httpx.Response, kind: str, media_type: str) -> bytes:
    """The body of a 2xx download of `media_type`; ProviderError or _Wrong otherwise."""
    status = response.status_code
    if status in (401, 403):
        raise ProviderError(
            f"{PROVIDER} refused the finance token (HTTP {status}) on {call.request}; check "
            f"the token",
            {"body": excerpt(response)},
        )
    if status == 429 or status >= 500:
        raise ProviderError(
            f"{PROVIDER} answered HTTP {status} ({call.request})", {"body": excerpt(response)}
        )
    if _is_html(call.content_type):
        raise ProviderError(
            f"{PROVIDER} answered an HTML page instead of the {kind} (HTTP {status}, "
            f"{call.request}); is a sign-in page or proxy in front of it?",
            {"body": excerpt(response)},
        )
    if not 200 <= status < 300:
        raise _Wrong(
            f"the {kind} download {call.request} answered HTTP {status}, expected 200",
            status=status,
            body=excerpt(response),
        )
    if not response.content:
        raise ProviderError(
            f"{PROVIDER} answered HTTP {status} with an empty body ({call.request})"
        )
    media = call.content_type.split(";")[0].strip().lower()
    if media != media_type:
        raise _Wrong(
            f"the {kind} download {call.request} has content type "
            f"{call.content_type or '(none)'!r}, expected {media_type}",
            field="content-type",
            value=call.content_type,
        )
    return response.content


def _pdf_pages(data: bytes) -> int:
    # pypdf is imported here: it costs a tenth of a second at start-up and only this needs it.
    from pypdf import PdfReader

    try:
        pages = len(PdfReader(io.BytesIO(data)).pages)
    except Exception as exc:  # pypdf raises many kinds; every one means "not a usable PDF"
        raise _Wrong(
            f"the PDF export does not parse as a PDF ({type(exc).__name__}: {exc})",
            field="body",
            value=repr(data[:40]),
        ) from None
    if pages < 1:
        raise _Wrong("the PDF export parses but has no pages", field="pages", value=pages)
    return pages


async def _pdf(
    api: _Api, trail: Trail, paths: ProductPaths, run: _InvoiceRun
) -> tuple[str, dict[str, Any]]:
    call, response = await api.send(
        trail, "GET", _fill(paths.invoice_pdf, run.invoice_id), "finance", accept="application/pdf"
    )
    data = _downloaded(call, response, "PDF", "application/pdf")
    if not data.startswith(b"%PDF-"):
        raise _Wrong(
            f"the PDF export ({call.request}) is not a PDF: the body starts with "
            f"{data[:24]!r}, not the %PDF- signature",
            field="body",
            value=repr(data[:40]),
        )
    pages = await asyncio.to_thread(_pdf_pages, data)
    return (
        f"the PDF export of {run.number or 'the invoice'} is a {pages}-page PDF "
        f"({len(data)} bytes)",
        {"invoice_id": run.invoice_id, "bytes": len(data), "pages": pages},
    )


def _column(header: str) -> str:
    return header.strip().lstrip("*").strip()


def _loose(header: str) -> str:
    return "".join(_column(header).split()).lower()


def import_columns(target: str, header: Sequence[str]) -> dict[str, int]:
    """Where each required import column of `target` sits in a CSV header (absent: missing).

    Xero's template names are matched exactly (a leading `*` allowed); QuickBooks' by any
    spelling its importer maps, without case or spaces.
    """
    found: dict[str, int] = {}
    if target == "quickbooks":
        loose = [_loose(h) for h in header]
        for name, spellings in QUICKBOOKS_SPELLINGS.items():
            wanted = {_loose(s) for s in spellings}
            at = next((i for i, h in enumerate(loose) if h in wanted), None)
            if at is not None:
                found[name] = at
        return found
    names = [_column(h) for h in header]
    return {c: names.index(c) for c in REQUIRED_COLUMNS[target] if c in names}


def quickbooks_date_problem(invoice_text: str, due_text: str) -> str | None:
    """Why a QuickBooks row's invoice and due dates would not import; None when they would.

    Both dates are read with one of QuickBooks' formats; a reading where the due date is not
    before the invoice date is enough (01/02/2026 may be either month).
    """
    shown = " or ".join(label for _, label in QUICKBOOKS_DATE_FORMATS)
    readings: list[tuple[date, date]] = []
    for text, what in ((invoice_text, "invoice date"), (due_text, "due date")):
        if not any(_reads(text, fmt) for fmt, _ in QUICKBOOKS_DATE_FORMATS):
            return f"its {what} {text!r} is not a date QuickBooks imports ({shown})"
    for fmt, _ in QUICKBOOKS_DATE_FORMATS:
        issued, due = _reads(invoice_text, fmt), _reads(due_text, fmt)
        if issued is not None and due is not None:
            readings.append((issued, due))
    if not readings:
        return (
            f"its invoice date {invoice_text!r} and due date {due_text!r} are written in two "
            f"different formats; QuickBooks reads a file with one"
        )
    if all(due < issued for issued, due in readings):
        return f"its due date {due_text!r} is before its invoice date {invoice_text!r}"
    return None


def _reads(text: str, fmt: str) -> date | None:
    try:
        return datetime.strptime(text.strip(), fmt).date()
    except ValueError:
        return None


async def _csv(
    api: _Api, trail: Trail, paths: ProductPaths, run: _InvoiceRun, target: str
) -> tuple[str, dict[str, Any]]:
    system = SYSTEMS[target]
    kind = f"{system} CSV"
    call, response = await api.send(
        trail,
        "GET",
        _fill(paths.invoice_csv, run.invoice_id),
        "finance",
        params=[("target", target)],
        accept="text/csv",
    )
    data = _downloaded(call, response, kind, "text/csv")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Wrong(f"the {kind} is not UTF-8 text ({exc})", field="body") from None
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise _Wrong(f"the {kind} does not parse as CSV: {exc}", field="body") from None
    if not rows:
        raise _Wrong(f"the {kind} is empty", field="body", value=text[:80])
    header = rows[0]
    at_column = import_columns(target, header)
    missing = [c for c in REQUIRED_COLUMNS[target] if c not in at_column]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        spelled = ""
        if target == "quickbooks":
            spelled = (
                " (in any spelling its importer maps: "
                + "; ".join(" / ".join(QUICKBOOKS_SPELLINGS[c]) for c in missing)
                + ")"
            )
        raise _Wrong(
            f"the {kind} ({call.request}) lacks the required import column{plural} "
            f"{', '.join(missing)}{spelled}",
            field="columns",
            value=missing,
            header=rows[0],
        )
    ragged = [(i, len(r)) for i, r in enumerate(rows[1:], start=1) if len(r) != len(header)]
    if ragged:
        index, width = ragged[0]
        raise _Wrong(
            f"the {kind} does not parse cleanly: row {index} has {width} fields, the header "
            f"{len(header)}",
            field="row",
            value=rows[index],
        )
    if run.number is None:
        raise ProviderError(
            f"cannot tell whether the {kind} carries the invoice: invoice generation returned "
            f"no invoice_number"
        )
    column = NUMBER_COLUMN[target]
    values = [r[at_column[column]].strip() for r in rows[1:]]
    if run.number not in values:
        raise _Wrong(
            f"the {kind} ({call.request}) has no row for invoice {run.number}: its {column} "
            f"column holds {values[:5]}",
            field=column,
            value=values[:5],
        )
    if target == "quickbooks":
        row = rows[1 + values.index(run.number)]
        issued, due = row[at_column["InvoiceDate"]], row[at_column["DueDate"]]
        problem = quickbooks_date_problem(issued, due)
        if problem is not None:
            raise _Wrong(
                f"the {kind} ({call.request}) row for {run.number} would not import: {problem}",
                field="dates",
                value={"InvoiceDate": issued, "DueDate": due},
            )
    return (
        f"the {kind} parses, carries every required import column and a row for {run.number}",
        {"columns": rows[0], "rows": len(rows) - 1, "invoice_number": run.number},
    )


# -- RBAC -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Endpoint:
    """A protected endpoint as the RBAC matrix names and calls it."""

    name: str
    title: str
    method: str
    template: str
    path: str
    params: Any = None
    body: Any = None

    @property
    def shown(self) -> str:
        return f"{self.title} ({self.method} {self.template})"


def _cell(call: _Call) -> tuple[str, str]:
    """("ok" | "regression" | "error", a sentence) for one RBAC answer."""
    who = _TOKEN_WORDS[call.token]
    status = call.status
    if status is None:
        return "error", f"{who}: no answer ({call.error})"
    html = _is_html(call.content_type)
    expected = {
        "none": status == 401,
        "limited": status == 403,
        "finance": 200 <= status < 300 and not html,
    }[call.token]
    if expected:
        return "ok", f"{who} → {status}"
    if status == 429 or status >= 500:
        return "error", f"{who}: HTTP {status}"
    if status == 404 and call.token == "finance":
        return "error", f"{who}: HTTP 404, the endpoint is not there (is the path right?)"
    if html:
        return "error", f"{who}: an HTML page (HTTP {status}) instead of the API"
    return "regression", f"{who} got HTTP {status} (expected {_EXPECTED[call.token]})"


async def _rbac(
    api: _Api,
    endpoint: _Endpoint,
    tokens: Sequence[Token] = ("none", "limited", "finance"),
    given: Sequence[_Call] = (),
) -> CheckResult:
    """The matrix on one endpoint: no token → 401, limited → 403, finance → 2xx."""
    started = time.monotonic()
    trail: Trail = []

    async def ask(token: Token) -> None:
        with contextlib.suppress(ProviderError):  # the call on the trail says what happened
            await api.send(
                trail,
                endpoint.method,
                endpoint.path,
                token,
                params=endpoint.params,
                body=endpoint.body,
            )

    try:
        await asyncio.gather(*(ask(t) for t in tokens))
    except Exception as exc:  # a crashing check is an error, never a pass
        return CheckResult(
            endpoint.name,
            Status.ERROR,
            f"{endpoint.name} could not run: {type(exc).__name__}: {exc}",
            {"endpoint": f"{endpoint.method} {endpoint.template}"},
            time.monotonic() - started,
        )
    order: list[Token] = ["none", "limited", "finance"]
    calls = sorted([*given, *trail], key=lambda c: order.index(c.token))
    verdicts = [(c, *_cell(c)) for c in calls]
    regressions = [(c, text) for c, kind, text in verdicts if kind == "regression"]
    errors = [(c, text) for c, kind, text in verdicts if kind == "error"]
    if any(c.token == "finance" and c.status == 404 for c in calls):
        # Not there even for finance (a wrong path?): only an open door still proves a hole.
        opened = [(c, t) for c, t in regressions if c.status is not None and c.status < 300]
        errors += [r for r in regressions if r not in opened]
        regressions = opened
    evidence: dict[str, Any] = {
        "endpoint": f"{endpoint.method} {endpoint.template}",
        "expected": dict(_EXPECTED),
        "requests": _requests(calls),
    }
    if regressions:
        evidence["regressions"] = [
            {
                "request": c.request,
                "token": c.token,
                "status": c.status,
                "expected": _EXPECTED[c.token],
            }
            for c, _ in regressions
        ]
        summary = f"RBAC regression on {endpoint.shown}: " + "; ".join(t for _, t in regressions)
        status = Status.FAIL
    elif errors:
        evidence["errors"] = [t for _, t in errors]
        summary = f"RBAC on {endpoint.shown} not evaluated: " + "; ".join(t for _, t in errors)
        status = Status.ERROR
    else:
        summary = f"{endpoint.shown}: " + ", ".join(text for _, _, text in verdicts)
        status = Status.PASS
    return CheckResult(endpoint.name, status, summary, evidence, time.monotonic() - started)


# -- leaving no trace ----------------------------------------------------------------------
def _created_leads(results: Sequence[CheckResult], run: _InvoiceRun) -> list[Any]:
    """The ids of every lead the round created, as their checks recorded them."""
    found: list[Any] = []
    for result in results:
        if result.name in (LEADS, LEADS_JUMP):
            found += [result.evidence.get(k) for k in ("converted", "rejected", "lead")]
    found.append(run.lead_id)
    unique = dict.fromkeys(i for i in found if i is not None and not isinstance(i, bool))
    return sorted(unique, key=lambda i: (len(str(i)), str(i)))  # 2 before 10, as people count


async def _cleanup(
    api: _Api, paths: ProductPaths, run: _InvoiceRun, results: Sequence[CheckResult]
) -> CheckResult:
    """Void the invoice the round generated (when the product says how) and name what stays."""
    started = time.monotonic()
    trail: Trail = []
    leads = _created_leads(results, run)
    invoice_summary = next((r.summary for r in results if r.name == INVOICE), "not run")
    invoice = {"id": run.invoice_id, "invoice_number": run.number}
    evidence: dict[str, Any] = {"leads": leads, "invoice": invoice, "voided": False}
    made = f"leads {', '.join(str(i) for i in leads) or 'none'}"
    if run.invoice_id is None:  # the invoice chain is an error already; so is this
        evidence["requests"] = []
        return CheckResult(
            CLEANUP,
            Status.ERROR,
            f"created {made}; no invoice to void: {invoice_summary}",
            evidence,
        )
    shown = run.number or f"invoice {run.invoice_id}"
    made += f" and invoice {shown} (id {run.invoice_id})"
    if not paths.invoice_void:
        evidence["requests"] = []
        return CheckResult(
            CLEANUP,
            Status.WARN,
            f"created {made}; the test invoice remains (no verification.paths.invoice_void to "
            f"void it)",
            evidence,
            time.monotonic() - started,
        )
    try:
        call, data = await api.json(
            trail, "POST", _fill(paths.invoice_void, run.invoice_id), "finance"
        )
        if call.status is None or not 200 <= call.status < 300:
            raise _Wrong(f"{call.request} answered HTTP {call.status}{_error_text(data)}")
        status = data.get("status") if isinstance(data, dict) else None
        if status not in (None, "void", "voided"):
            raise _Wrong(f"{call.request} answered 2xx but the invoice is {status!r}, not void")
    except (ProviderError, _Wrong) as exc:
        evidence["requests"] = _requests(trail)
        return CheckResult(
            CLEANUP,
            Status.WARN,
            f"created {made}; voiding it failed, so the test invoice remains: {exc}",
            evidence,
            time.monotonic() - started,
        )
    evidence.update(voided=True, requests=_requests(trail))
    return CheckResult(
        CLEANUP,
        Status.PASS,
        f"created {made}; voided {shown} once the checks were done",
        evidence,
        time.monotonic() - started,
    )


# -- the round --------------------------------------------------------------------------------
async def _invoice_chain(
    api: _Api, paths: ProductPaths, labels: _Labels, run: _InvoiceRun
) -> list[CheckResult]:
    """Lead → invoice, then PDF, both CSVs and the RBAC rows that need an invoice, at once."""
    trail: Trail = []
    invoice = await _judge(INVOICE, trail, lambda: _make_invoice(api, trail, paths, labels, run))
    if run.invoice_id is not None:
        why = ""
    elif run.invoice:
        why = "invoice generation returned no invoice id"
    else:
        why = f"invoice generation failed — {invoice.summary}"
    dependents: list[Awaitable[CheckResult]] = []
    if why:
        blocked = [PDF, CSV_XERO, CSV_QUICKBOOKS, RBAC_PDF, RBAC_CSV]
        dependents += [_ready(_blocked(name, why)) for name in blocked]
    else:
        pdf_trail: Trail = []
        xero_trail: Trail = []
        quickbooks_trail: Trail = []
        dependents += [
            _judge(PDF, pdf_trail, lambda: _pdf(api, pdf_trail, paths, run)),
            _judge(CSV_XERO, xero_trail, lambda: _csv(api, xero_trail, paths, run, "xero")),
            _judge(
                CSV_QUICKBOOKS,
                quickbooks_trail,
                lambda: _csv(api, quickbooks_trail, paths, run, "quickbooks"),
            ),
            _rbac(
                api,
                _Endpoint(
                    RBAC_PDF,
                    "PDF export",
                    "GET",
                    paths.invoice_pdf,
                    _fill(paths.invoice_pdf, run.invoice_id),
                ),
            ),
            _rbac(
                api,
                _Endpoint(
                    RBAC_CSV,
                    "accounting CSV",
                    "GET",
                    f"{paths.invoice_csv}?target=xero",
                    _fill(paths.invoice_csv, run.invoice_id),
                    params=[("target", "xero")],
                ),
            ),
        ]
    if run.lead_id is None or run.finance_call is None:
        dependents.append(
            _ready(_blocked(RBAC_INVOICES, f"no lead to invoice — {invoice.summary}"))
        )
    else:
        endpoint = _Endpoint(
            RBAC_INVOICES,
            "invoice generation",
            "POST",
            paths.invoices,
            paths.invoices,
            body={"lead_id": run.lead_id},
        )
        dependents.append(_rbac(api, endpoint, ("none", "limited"), (run.finance_call,)))
    return [invoice, *await asyncio.gather(*dependents)]


async def _ready(result: CheckResult) -> CheckResult:
    return result


async def verify_money_paths(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    paths: ProductPaths,
    finance_token: str,
    limited_token: str,
    today: date,
    label: str,
    timeout: float = 10.0,
    report_days: int = 90,
    report_statuses: Sequence[str] = ("issued", "paid"),
    run_id: str | None = None,
) -> list[CheckResult]:
    """Verify the money paths (runbook §5) and the RBAC matrix; one result per RESULT_NAMES.

    `today` ends the billing report's range (the last `report_days` days); `label` (the release)
    and `run_id` (random when None) name the test data `golive-verify-<label>-<run>-<n>`;
    `timeout` bounds each request. The independent chains run concurrently.
    """
    if not finance_token or not limited_token:
        raise ValueError("verification needs both the finance and the limited token")
    if finance_token == limited_token:
        raise ValueError("the finance and limited tokens are the same; RBAC cannot be verified")
    if report_days < 0 or not report_statuses:
        raise ValueError("the billing report needs report_days >= 0 and at least one status")
    api = _Api(client, base_url, {"finance": finance_token, "limited": limited_token}, timeout)
    labels = _Labels(label, run_id or secrets.token_hex(3))
    statuses = list(report_statuses)
    start, end = today - timedelta(days=report_days), today
    run = _InvoiceRun()
    jump_trail: Trail = []
    report_trail: Trail = []
    report_endpoint = _Endpoint(
        RBAC_REPORT,
        "billing report",
        "GET",
        paths.billing_report,
        paths.billing_report,
        params=_report_params(start, end, statuses),
    )
    leads, jump, report, rbac_report, invoice_chain = await asyncio.gather(
        _leads(api, paths, labels),
        _judge(LEADS_JUMP, jump_trail, lambda: _leads_jump(api, jump_trail, paths, labels)),
        _judge(
            REPORT,
            report_trail,
            lambda: _report(api, report_trail, paths, start, end, statuses),
        ),
        _rbac(api, report_endpoint),
        _invoice_chain(api, paths, labels, run),
    )
    checked = [leads, jump, report, rbac_report, *invoice_chain]
    cleanup = await _cleanup(api, paths, run, checked)
    by_name = {r.name: r for r in (*checked, cleanup)}
    return [by_name[name] for name in RESULT_NAMES]
