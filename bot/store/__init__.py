"""Release state in SQLite through sqlite-utils: versioned schema, WAL, event log and outbox.

One module per kind of record, each a part of `Store`: `schema` (the migrations), `core`
(connections, transactions), `releases`, `timeline`, `monitoring`, `freeze`, `outbox`,
`actions` and `inbox`.
"""

from bot.domain.records import (
    ActionRun,
    Alert,
    AlertState,
    Approval,
    CheckRow,
    GateStatus,
    InboxEntry,
    MergeAllowance,
    MonitoringWindow,
    Note,
    OutboxRow,
    ReleaseRecord,
    ReleaseRow,
    Reminder,
    Sample,
    TimelineEvent,
    Wait,
    Waiver,
)
from bot.store.actions import ActionStore
from bot.store.freeze import FreezeStore
from bot.store.inbox import InboxStore
from bot.store.monitoring import MonitoringStore
from bot.store.outbox import OutboxStore
from bot.store.releases import ReleaseStore
from bot.store.schema import migrations
from bot.store.timeline import TimelineStore

__all__ = [
    "ActionRun",
    "Alert",
    "AlertState",
    "Approval",
    "CheckRow",
    "GateStatus",
    "InboxEntry",
    "MergeAllowance",
    "MonitoringWindow",
    "Note",
    "OutboxRow",
    "ReleaseRecord",
    "ReleaseRow",
    "Reminder",
    "Sample",
    "Store",
    "TimelineEvent",
    "Wait",
    "Waiver",
    "migrations",
]


class Store(
    ReleaseStore,
    TimelineStore,
    MonitoringStore,
    FreezeStore,
    OutboxStore,
    ActionStore,
    InboxStore,
):
    """The database: every kind of record golive keeps, over one connection (see `StoreBase`)."""
