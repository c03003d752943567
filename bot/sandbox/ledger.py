"""Leads and invoices of the simulated product, and the billing report's rows and totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

LEAD_STATUSES = ("initiated", "qualified", "converted", "rejected")
LEGAL_MOVES = frozenset(
    {
        ("initiated", "qualified"),
        ("qualified", "converted"),
        ("initiated", "rejected"),
        ("qualified", "rejected"),
    }
)
INVOICE_STATUSES = ("draft", "issued", "paid", "overdue", "void")
PAYMENT_TERMS = timedelta(days=14)


@dataclass
class Lead:
    """A sales lead moving through initiated → qualified → converted (or rejected)."""

    id: int
    name: str
    email: str
    status: str = "initiated"

    def to_json(self) -> dict[str, Any]:
        """The lead as the API returns it."""
        return {"id": self.id, "name": self.name, "email": self.email, "status": self.status}


@dataclass
class Invoice:
    """An invoice; dates are kept as the strings served, so faults can make them wrong."""

    id: int
    invoice_number: str
    issue_date: str
    due_date: str | None
    customer: str
    email: str
    description: str
    quantity: int
    unit_amount: Decimal
    currency: str = "EUR"
    status: str = "issued"
    lead_id: int | None = None

    @property
    def total(self) -> Decimal:
        """Quantity times unit amount."""
        return self.unit_amount * self.quantity

    def to_json(self) -> dict[str, Any]:
        """The invoice as `POST /billing/invoices` returns it (no due_date key when missing)."""
        data: dict[str, Any] = {
            "id": self.id,
            "invoice_number": self.invoice_number,
            "issue_date": self.issue_date,
            "due_date": self.due_date,
            "total": f"{self.total:.2f}",
            "currency": self.currency,
            "status": self.status,
            "lead_id": self.lead_id,
            "customer": self.customer,
        }
        if self.due_date is None:
            del data["due_date"]
        return data

    def document_fields(self) -> dict[str, str]:
        """Every field as text, for the PDF and CSV renderers."""
        return {
            "invoice_number": self.invoice_number,
            "issue_date": self.issue_date,
            "due_date": self.due_date or "",
            "customer": self.customer,
            "email": self.email,
            "description": self.description,
            "quantity": str(self.quantity),
            "unit_amount": f"{self.unit_amount:.2f}",
            "total": f"{self.total:.2f}",
            "currency": self.currency,
        }


def report_row(invoice: Invoice) -> dict[str, Any]:
    """An invoice as a billing report row."""
    return {
        "invoice_number": invoice.invoice_number,
        "issue_date": invoice.issue_date,
        "status": invoice.status,
        "total": f"{invoice.total:.2f}",
    }


def fake_report_row(day: date, status: str, sequence: int) -> dict[str, Any]:
    """A made-up report row (for the report fault switches)."""
    return {
        "invoice_number": f"INV-{day:%Y%m}-{sequence:06d}",
        "issue_date": day.isoformat(),
        "status": status,
        "total": "99.00",
    }


def report_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Count and amount of report rows, overall and per status."""
    by_status: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_status.setdefault(row["status"], {"count": 0, "amount": Decimal(0)})
        entry["count"] += 1
        entry["amount"] += Decimal(row["total"])
    amount = sum((e["amount"] for e in by_status.values()), Decimal(0))
    return {
        "count": len(rows),
        "amount": f"{amount:.2f}",
        "currency": "EUR",
        "by_status": {
            s: {"count": e["count"], "amount": f"{e['amount']:.2f}"} for s, e in by_status.items()
        },
    }
