"""Release state in SQLite through sqlite-utils: versioned schema, WAL, event log and outbox."""

from bot.domain.records import ActionRun, OutboxRow, ReleaseRecord, Wait
from bot.store.core import Store
from bot.store.schema import migrations

__all__ = ["ActionRun", "OutboxRow", "ReleaseRecord", "Store", "Wait", "migrations"]
