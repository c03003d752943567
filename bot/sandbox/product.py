"""FakeProduct: the company's portal API (leads, billing), service health, notes and metrics."""

from __future__ import annotations

import functools
import html
import itertools
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import (
    CONTROL_PREFIX,
    LOGIN_PAGE,
    FakeServer,
    json_response,
    read_json_object,
)
from bot.sandbox.documents import CSV_TARGETS, invoice_csv, invoice_pdf
from bot.sandbox.ledger import (
    INVOICE_STATUSES,
    LEAD_STATUSES,
    LEGAL_MOVES,
    PAYMENT_TERMS,
    Invoice,
    Lead,
    fake_report_row,
    report_row,
    report_totals,
)
from bot.sandbox.metrics import RequestMetrics, TrafficGenerator, TrafficProfile

DEFAULT_FINANCE_TOKEN = "golive-sandbox-finance-token"
DEFAULT_LIMITED_TOKEN = "golive-sandbox-limited-token"
DEFAULT_SERVICES = ("partner-registry", "billing-api", "web-portal")
FAULT_SWITCHES = (
    "invoice_number_format",
    "invoice_wrong_month",
    "due_date_missing",
    "due_date_invalid",
    "due_date_before_issue",
    "csv_missing_column",
    "quickbooks_dates_unparseable",
    "quickbooks_due_before_invoice",
    "pdf_broken",
    "rbac_hole",
    "lead_illegal_jump_accepted",
    "report_rows_outside_range",
    "report_wrong_status",
)
# How `GET /health/{service}` can answer besides 200 {"status": "ok"} and 503 (set_health).
HEALTH_ANSWERS = ("degraded", "empty", "sso_redirect", "login_page")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNTRACKED = ("/metrics", CONTROL_PREFIX)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


def _parse_day(value: str | None) -> date | None:
    if value is None or not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


Handler = Callable[["FakeProduct", web.Request], Awaitable[web.Response]]


def _guarded(*, finance: bool) -> Callable[[Handler], Handler]:
    """A handler that answers 401 without a known token, and 403 without the finance role
    where `finance` (unless the `rbac_hole` fault lets everyone through)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(self: FakeProduct, request: web.Request) -> web.Response:
            denied = self._deny(request, finance=finance)
            return denied if denied is not None else await handler(self, request)

        return guarded

    return wrap


class FakeProduct(FakeServer):
    """The product API of docs/product-api.md: RBAC, fault switches, health, notes, metrics.

    Health answers can be bent per service (`set_health_answer`, HEALTH_ANSWERS); release notes
    can redirect (`notes_redirect`), to this server or to another host, as SSO does.

    The QuickBooks CSV uses the sample file's column names and ISO dates by default;
    `quickbooks_importer_names` and `quickbooks_date_format` make it spell them as the
    QuickBooks importer's own mapping does, in a regional date format.
    """

    def __init__(
        self,
        finance_token: str = DEFAULT_FINANCE_TOKEN,
        limited_token: str = DEFAULT_LIMITED_TOKEN,
        *,
        clock: Now | None = None,
        services: Iterable[str] = DEFAULT_SERVICES,
        traffic: TrafficProfile | None = None,
        seed: int = 7,
        tick: float = 1.0,
    ) -> None:
        """Seed ~26 weekly invoices over the half-year before `clock()`; traffic starts stopped
        (and then adds requests every `tick` seconds)."""
        super().__init__(clock=clock)
        self.finance_token = finance_token
        self.limited_token = limited_token
        self.faults: dict[str, bool] = dict.fromkeys(FAULT_SWITCHES, False)
        self.quickbooks_importer_names = False
        self.quickbooks_date_format = "%Y-%m-%d"
        self.health: dict[str, bool] = dict.fromkeys(services, True)
        self.health_answers: dict[str, str] = {}
        self.sso_url = "https://sso.example.invalid/login"
        self.notes_redirect: str | None = None
        self.notes: dict[str, str | None] = {}
        self.leads: dict[int, Lead] = {}
        self.invoices: dict[int, Invoice] = {}
        self.metrics = RequestMetrics(self.clock)
        self.traffic = TrafficGenerator(
            self.metrics, traffic or TrafficProfile(), seed=seed, tick=tick
        )
        self._lead_ids = itertools.count(1)
        self._invoice_ids = itertools.count(5001)
        self._sequence = itertools.count(1)
        self._seed_invoices(random.Random(seed))

    # -- controls ----------------------------------------------------------------------------
    def set_fault_switch(self, name: str, on: bool = True) -> None:
        """Turn one of FAULT_SWITCHES on or off."""
        if name not in self.faults:
            raise KeyError(f"unknown fault switch {name!r}; expected one of {FAULT_SWITCHES}")
        self.faults[name] = on

    def reset_fault_switches(self) -> None:
        """Turn every fault switch off."""
        self.faults = dict.fromkeys(FAULT_SWITCHES, False)

    def set_health(self, service: str, ok: bool) -> None:
        """Make `GET /health/{service}` answer 200 (ok) or 503; new names become known services."""
        self.health[service] = ok

    def set_health_answer(self, service: str, answer: str | None) -> None:
        """Make `GET /health/{service}` answer one of HEALTH_ANSWERS (None: back to normal):
        200 {"status": "degraded"}, an empty 204, a 302 to `sso_url`, or a 200 sign-in page."""
        if answer is None:
            self.health_answers.pop(service, None)
            return
        if answer not in HEALTH_ANSWERS:
            raise ValueError(f"unknown health answer {answer!r}; expected one of {HEALTH_ANSWERS}")
        self.health_answers[service] = answer

    def set_notes(self, version: str, page: str | None) -> None:
        """Serve `page` (HTML) at /notes/{version}; None makes that version's notes 404."""
        self.notes[version] = page

    def set_traffic(
        self,
        *,
        rate: float | None = None,
        error_ratio: float | None = None,
        p95: float | None = None,
    ) -> TrafficProfile:
        """Change the simulated load (requests/s, 5xx share, p95 latency in seconds)."""
        profile = TrafficProfile(
            rate if rate is not None else self.traffic.profile.rate,
            error_ratio if error_ratio is not None else self.traffic.profile.error_ratio,
            p95 if p95 is not None else self.traffic.profile.p95,
        )
        profile.validate()
        self.traffic.profile = profile
        return profile

    def advance(self, seconds: float) -> int:
        """Add `seconds` of simulated traffic immediately and snapshot; returns requests added."""
        return self.traffic.advance(seconds)

    def start_traffic(self) -> None:
        """Start the background traffic generator on the running loop."""
        self.traffic.start()

    async def stop_traffic(self) -> None:
        """Stop the background traffic generator."""
        await self.traffic.stop()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_traffic()
        await self.stop()

    def add_invoice(
        self, issue: date, status: str, amount: Decimal, customer: str = "Acme GmbH"
    ) -> Invoice:
        """Add an invoice as if issued on `issue` (used for seeding and report tests)."""
        invoice = Invoice(
            id=next(self._invoice_ids),
            invoice_number=f"INV-{issue:%Y%m}-{next(self._sequence):06d}",
            issue_date=issue.isoformat(),
            due_date=(issue + PAYMENT_TERMS).isoformat(),
            customer=customer,
            email=f"billing@{customer.split()[0].lower()}.example",
            description=f"Platform subscription {issue:%B %Y}",
            quantity=1,
            unit_amount=amount,
            status=status,
        )
        self.invoices[invoice.id] = invoice
        return invoice

    def _seed_invoices(self, rng: random.Random) -> None:
        today = self.clock().date()
        customers = ("Acme GmbH", "Globex Ltd", "Initech AG", "Umbrella SE", "Hooli Inc")
        for weeks_ago in range(26, 0, -1):
            issue = today - timedelta(weeks=weeks_ago)
            age = (today - issue).days
            status = "paid" if age > 45 else "issued"
            if rng.random() < 0.15:
                status = "overdue" if age > 14 else "draft"
            if weeks_ago % 9 == 0:
                status = "void"
            amount = Decimal(rng.randrange(40_000, 400_000)) / 100
            self.add_invoice(issue, status, amount, customers[weeks_ago % len(customers)])

    # -- HTTP --------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        """Product API, health, notes, metrics and the sandbox control endpoints."""
        r = app.router
        r.add_post("/leads", self._create_lead)
        r.add_get("/leads/{id}", self._get_lead)
        r.add_patch("/leads/{id}", self._move_lead)
        r.add_get("/billing/report", self._report)
        r.add_post("/billing/invoices", self._create_invoice)
        r.add_get("/billing/invoices/{id}", self._get_invoice)
        r.add_get("/billing/invoices/{id}/pdf", self._pdf)
        r.add_get("/billing/invoices/{id}/csv", self._csv)
        r.add_post("/billing/invoices/{id}/void", self._void)
        r.add_get("/health/{service}", self._health)
        r.add_get("/healthz", self._healthz)
        r.add_get("/notes/{version}", self._notes)
        r.add_get("/metrics", self._metrics)
        r.add_get(CONTROL_PREFIX + "faults", self._get_faults)
        r.add_post(CONTROL_PREFIX + "faults", self._set_faults)
        r.add_post(CONTROL_PREFIX + "health", self._set_health)
        r.add_get(CONTROL_PREFIX + "traffic", self._get_traffic)
        r.add_post(CONTROL_PREFIX + "traffic", self._set_traffic)

    def extra_middlewares(self) -> list[Any]:
        """Count every served request (except /metrics and control calls) in the metrics."""

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.startswith(_UNTRACKED):
                response: web.StreamResponse = await handler(request)
                return response
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                self.metrics.observe(status, time.perf_counter() - started)

        return [count]

    def _role(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return {self.finance_token: "finance", self.limited_token: "limited"}.get(token.strip())

    def _deny(self, request: web.Request, *, finance: bool) -> web.Response | None:
        role = self._role(request)
        if role is None:
            return _error(401, "authentication required")
        if finance and role != "finance" and not self.faults["rbac_hole"]:
            return _error(403, "forbidden: the finance role is required")
        return None

    @_guarded(finance=False)
    async def _create_lead(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        name = body.get("name") if body else None
        email = body.get("email") if body else None
        if not isinstance(name, str) or not name.strip():
            return _error(422, "name is required", field="name")
        if not isinstance(email, str) or "@" not in email:
            return _error(422, "a valid email is required", field="email")
        lead = Lead(next(self._lead_ids), name.strip(), email.strip())
        self.leads[lead.id] = lead
        return json_response(lead.to_json(), 201)

    def _find_lead(self, request: web.Request) -> Lead | None:
        raw = request.match_info["id"]
        return self.leads.get(int(raw)) if raw.isdigit() else None

    @_guarded(finance=False)
    async def _get_lead(self, request: web.Request) -> web.Response:
        lead = self._find_lead(request)
        return json_response(lead.to_json()) if lead else _error(404, "lead not found")

    @_guarded(finance=False)
    async def _move_lead(self, request: web.Request) -> web.Response:
        lead = self._find_lead(request)
        if lead is None:
            return _error(404, "lead not found")
        body = await read_json_object(request)
        target = body.get("status") if body else None
        if target not in LEAD_STATUSES:
            return _error(422, f"status must be one of {', '.join(LEAD_STATUSES)}", field="status")
        if (lead.status, target) not in LEGAL_MOVES and not self.faults[
            "lead_illegal_jump_accepted"
        ]:
            allowed = sorted(t for s, t in LEGAL_MOVES if s == lead.status)
            return _error(
                409,
                f"illegal transition {lead.status} -> {target}",
                current=lead.status,
                requested=target,
                allowed=allowed,
            )
        lead.status = str(target)
        return json_response(lead.to_json())

    @_guarded(finance=True)
    async def _report(self, request: web.Request) -> web.Response:
        start = _parse_day(request.query.get("from"))
        end = _parse_day(request.query.get("to"))
        if start is None or end is None:
            return _error(400, "from and to must be dates formatted YYYY-MM-DD")
        if start > end:
            return _error(400, "from must not be after to")
        asked = [s for value in request.query.getall("status", []) for s in value.split(",") if s]
        unknown = [s for s in asked if s not in INVOICE_STATUSES]
        if unknown:
            return _error(400, f"unknown status {unknown[0]!r}", allowed=list(INVOICE_STATUSES))
        statuses = asked or list(INVOICE_STATUSES)
        rows = [
            report_row(i)
            for i in sorted(self.invoices.values(), key=lambda i: (i.issue_date, i.id))
            if i.status in statuses and start.isoformat() <= i.issue_date <= end.isoformat()
        ]
        rows += self._report_faults(start, end, statuses)
        body = {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "statuses": statuses,
            "rows": rows,
            "totals": report_totals(rows),
        }
        return json_response(body)

    def _report_faults(self, start: date, end: date, statuses: list[str]) -> list[dict[str, Any]]:
        extra: list[dict[str, Any]] = []
        if self.faults["report_rows_outside_range"]:
            outside = start - timedelta(days=3)
            extra.append(fake_report_row(outside, statuses[0], next(self._sequence)))
        if self.faults["report_wrong_status"]:
            wrong = next((s for s in INVOICE_STATUSES if s not in statuses), "archived")
            extra.append(fake_report_row(start, wrong, next(self._sequence)))
        return extra

    @_guarded(finance=True)
    async def _create_invoice(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        raw = body.get("lead_id") if body else None
        lead_id = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else None
        lead = self.leads.get(lead_id) if lead_id is not None else None
        if lead is None:
            return _error(422, "lead_id must name an existing lead", field="lead_id")
        invoice = self._issue(lead)
        self.invoices[invoice.id] = invoice
        return json_response(invoice.to_json(), 201)

    def _issue(self, lead: Lead) -> Invoice:
        issue = self.clock().date()
        sequence = next(self._sequence)
        month = (
            issue.replace(day=1) - timedelta(days=1)
            if self.faults["invoice_wrong_month"]
            else issue
        )
        number = f"INV-{month:%Y%m}-{sequence:06d}"
        if self.faults["invoice_number_format"]:
            number = f"INV-{month:%Y}-{month:%m}-{sequence}"
        due: str | None = (issue + PAYMENT_TERMS).isoformat()
        if self.faults["due_date_before_issue"]:
            due = (issue - timedelta(days=1)).isoformat()
        if self.faults["due_date_invalid"]:
            due = f"{issue:%Y}-13-45"
        if self.faults["due_date_missing"]:
            due = None
        return Invoice(
            id=next(self._invoice_ids),
            invoice_number=number,
            issue_date=issue.isoformat(),
            due_date=due,
            customer=lead.name,
            email=lead.email,
            description=f"Platform subscription {issue:%B %Y}",
            quantity=1,
            unit_amount=Decimal("1190.00"),
            lead_id=lead.id,
        )

    def _find_invoice(self, request: web.Request) -> Invoice | None:
        raw = request.match_info["id"]
        return self.invoices.get(int(raw)) if raw.isdigit() else None

    @_guarded(finance=True)
    async def _get_invoice(self, request: web.Request) -> web.Response:
        invoice = self._find_invoice(request)
        return json_response(invoice.to_json()) if invoice else _error(404, "invoice not found")

    @_guarded(finance=True)
    async def _pdf(self, request: web.Request) -> web.Response:
        invoice = self._find_invoice(request)
        if invoice is None:
            return _error(404, "invoice not found")
        body = invoice_pdf(invoice.document_fields())
        if self.faults["pdf_broken"]:
            body = b"<html><body><h1>Rendering failed</h1><p>template error</p></body></html>"
        headers = {"Content-Disposition": f'inline; filename="{invoice.invoice_number}.pdf"'}
        return web.Response(body=body, content_type="application/pdf", headers=headers)

    @_guarded(finance=True)
    async def _csv(self, request: web.Request) -> web.Response:
        invoice = self._find_invoice(request)
        if invoice is None:
            return _error(404, "invoice not found")
        target = request.query.get("target", "")
        if target not in CSV_TARGETS:
            return _error(400, "target must be xero or quickbooks", allowed=list(CSV_TARGETS))
        fields = invoice.document_fields()
        if target == "quickbooks" and self.faults["quickbooks_due_before_invoice"]:
            issued = date.fromisoformat(invoice.issue_date)
            fields["due_date"] = (issued - timedelta(days=1)).isoformat()
        if target == "quickbooks" and self.faults["quickbooks_dates_unparseable"]:
            fields["issue_date"] = "20th of the month"
            fields["due_date"] = "in 30 days"
        text = invoice_csv(
            fields,
            target,
            drop_column=self.faults["csv_missing_column"],
            importer_names=self.quickbooks_importer_names,
            date_format=self.quickbooks_date_format,
        )
        filename = f"{invoice.invoice_number}-{target}.csv"
        return web.Response(
            text=text,
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @_guarded(finance=True)
    async def _void(self, request: web.Request) -> web.Response:
        invoice = self._find_invoice(request)
        if invoice is None:
            return _error(404, "invoice not found")
        if invoice.status == "void":
            return _error(
                409, f"invoice {invoice.invoice_number} is already void", current=invoice.status
            )
        if invoice.status == "paid":
            return _error(409, f"invoice {invoice.invoice_number} is paid; refund it instead")
        invoice.status = "void"
        return json_response(invoice.to_json())

    async def _health(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        if service not in self.health:
            return json_response({"status": "unknown", "error": f"unknown service {service}"}, 404)
        if not self.health[service]:
            return json_response({"status": "unavailable", "service": service}, 503)
        answer = self.health_answers.get(service)
        if answer == "degraded":
            return json_response({"status": "degraded", "service": service})
        if answer == "empty":
            return web.Response(status=204)
        if answer == "sso_redirect":
            raise web.HTTPFound(self.sso_url)
        if answer == "login_page":
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        return json_response({"status": "ok", "service": service})

    async def _healthz(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def _notes(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        if self.notes_redirect is not None and version not in self.notes:
            raise web.HTTPFound(self.notes_redirect.replace("{version}", version))
        page = self.notes.get(version, _default_notes(version))
        if page is None:
            return web.Response(status=404, text="<h1>Not found</h1>", content_type="text/html")
        return web.Response(text=page, content_type="text/html")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self.metrics.exposition(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def _get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.faults)

    async def _set_faults(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None or not all(isinstance(v, bool) for v in body.values()):
            return _error(400, 'expected a JSON object like {"pdf_broken": true}')
        unknown = [k for k in body if k not in self.faults]
        if unknown:
            return _error(400, f"unknown fault switch {unknown[0]!r}", known=list(FAULT_SWITCHES))
        self.faults.update(body)
        return json_response(self.faults)

    async def _set_health(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if (
            not body
            or not isinstance(body.get("service"), str)
            or not isinstance(body.get("ok"), bool)
        ):
            return _error(400, 'expected {"service": "<name>", "ok": true|false}')
        self.set_health(body["service"], body["ok"])
        return json_response(self.health)

    async def _get_traffic(self, request: web.Request) -> web.Response:
        return json_response(self._traffic_json())

    async def _set_traffic(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _error(400, 'expected {"rate", "error_ratio", "p95", "running"}')
        try:
            self.set_traffic(
                rate=_number(body.get("rate")),
                error_ratio=_number(body.get("error_ratio")),
                p95=_number(body.get("p95")),
            )
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        if body.get("running") is True:
            self.start_traffic()
        elif body.get("running") is False:
            await self.stop_traffic()
        return json_response(self._traffic_json())

    def _traffic_json(self) -> dict[str, Any]:
        profile = self.traffic.profile
        return {
            "rate": profile.rate,
            "error_ratio": profile.error_ratio,
            "p95": profile.p95,
            "running": self.traffic.running,
        }


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("rate, error_ratio and p95 must be numbers")
    return float(value)


def _default_notes(version: str) -> str:
    safe = html.escape(version)
    return (
        f"<!DOCTYPE html>\n<html><head><title>Release notes {safe}</title></head><body>\n"
        f"<h1>Release notes {safe}</h1>\n<p>Status: <strong>final</strong>, approved.</p>\n"
        "<ul><li>Billing: accounting CSV export for Xero and QuickBooks</li>\n"
        "<li>Partner registry: faster search</li>\n<li>Web portal: invoice download</li></ul>\n"
        "</body></html>\n"
    )
