"""Invoice documents built by hand: a one-page PDF and accounting-import CSV files."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date

XERO_COLUMNS: tuple[str, ...] = (
    "*ContactName",
    "EmailAddress",
    "*InvoiceNumber",
    "*InvoiceDate",
    "*DueDate",
    "*Description",
    "*Quantity",
    "*UnitAmount",
    "*AccountCode",
    "*TaxType",
    "Currency",
)
QUICKBOOKS_COLUMNS: tuple[str, ...] = (
    "InvoiceNo",
    "Customer",
    "InvoiceDate",
    "DueDate",
    "Item(Product/Service)",
    "ItemDescription",
    "ItemQuantity",
    "ItemRate",
    "ItemAmount",
)
# The same columns as QuickBooks Online's importer names them when it maps them by itself.
QUICKBOOKS_IMPORTER_NAMES: dict[str, str] = {
    "InvoiceNo": "Invoice number",
    "Customer": "Customer",
    "InvoiceDate": "Invoice date",
    "DueDate": "Due date",
    "Item(Product/Service)": "Item (Product/Service)",
    "ItemDescription": "Item Description",
    "ItemQuantity": "Item Quantity",
    "ItemRate": "Item Rate",
    "ItemAmount": "Item amount",
}
CSV_TARGETS = ("xero", "quickbooks")
DROPPED_COLUMN = {"xero": "*DueDate", "quickbooks": "DueDate"}


def _pdf_text(value: str) -> str:
    """A PDF literal string body: backslash and parentheses escaped, Latin-1 only."""
    safe = value.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(title: str, lines: Sequence[str]) -> bytes:
    """A valid single-page PDF 1.4 showing `lines` in Helvetica, with a correct xref table."""
    text = "".join(f"({_pdf_text(line)}) Tj T*\n" for line in lines)
    content = f"BT\n/F1 12 Tf\n16 TL\n72 770 Td\n{text}ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Title ({_pdf_text(title)}) /Producer (golive sandbox) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
        f"startxref\n{xref_at}\n%%EOF\n"
    ).encode()
    return bytes(out)


def invoice_pdf(invoice: Mapping[str, str]) -> bytes:
    """The invoice as a one-page PDF naming its number, dates, customer and total."""
    lines = [
        f"INVOICE {invoice['invoice_number']}",
        "",
        f"Issue date: {invoice['issue_date']}",
        f"Due date: {invoice.get('due_date') or '-'}",
        f"Bill to: {invoice['customer']} <{invoice['email']}>",
        "",
        f"{invoice['description']}",
        f"Quantity {invoice['quantity']} x {invoice['unit_amount']} {invoice['currency']}",
        f"Total: {invoice['total']} {invoice['currency']}",
    ]
    return build_pdf(f"Invoice {invoice['invoice_number']}", lines)


def _dated(value: str, date_format: str) -> str:
    """An ISO date rewritten in `date_format`; anything else unchanged."""
    try:
        return date.fromisoformat(value).strftime(date_format)
    except ValueError:
        return value


def invoice_csv(
    invoice: Mapping[str, str],
    target: str,
    *,
    drop_column: bool = False,
    importer_names: bool = False,
    date_format: str = "%Y-%m-%d",
) -> str:
    """One invoice as a Xero or QuickBooks Online import CSV (header plus one row).

    For QuickBooks, `importer_names` spells the header as its importer does ("Invoice
    number", "Due date", …) instead of the sample file's (InvoiceNo, DueDate, …), and
    `date_format` writes its dates (QuickBooks reads MM/DD/YYYY, DD/MM/YYYY or YYYY-MM-DD).
    """
    due = invoice.get("due_date") or ""
    if target == "xero":
        row = {
            "*ContactName": invoice["customer"],
            "EmailAddress": invoice["email"],
            "*InvoiceNumber": invoice["invoice_number"],
            "*InvoiceDate": invoice["issue_date"],
            "*DueDate": due,
            "*Description": invoice["description"],
            "*Quantity": invoice["quantity"],
            "*UnitAmount": invoice["unit_amount"],
            "*AccountCode": "200",
            "*TaxType": "Tax Exempt",
            "Currency": invoice["currency"],
        }
        columns = XERO_COLUMNS
    elif target == "quickbooks":
        row = {
            "InvoiceNo": invoice["invoice_number"],
            "Customer": invoice["customer"],
            "InvoiceDate": _dated(invoice["issue_date"], date_format),
            "DueDate": _dated(due, date_format),
            "Item(Product/Service)": "Platform subscription",
            "ItemDescription": invoice["description"],
            "ItemQuantity": invoice["quantity"],
            "ItemRate": invoice["unit_amount"],
            "ItemAmount": invoice["total"],
        }
        columns = QUICKBOOKS_COLUMNS
    else:
        raise ValueError(f"unknown target {target!r}; expected one of {CSV_TARGETS}")
    if drop_column:
        columns = tuple(c for c in columns if c != DROPPED_COLUMN[target])
    if target == "quickbooks" and importer_names:
        row = {QUICKBOOKS_IMPORTER_NAMES[k]: v for k, v in row.items()}
        columns = tuple(QUICKBOOKS_IMPORTER_NAMES[c] for c in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    writer.writerow(row)
    return buffer.getvalue()
