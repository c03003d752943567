"""One serializer for the frozen dataclasses golive stores: `dump` to JSON-ready data, `load` back.

pydantic's TypeAdapter does the work from the field types, so no class writes its own pair of
converters. The stored form stays what it has always been: times as `datetime.isoformat()`,
durations as seconds (`Seconds`), enums as their values, tuples as lists. A class whose stored
form carries a version says so with `SERIAL_VERSION` (written as the `version` key) and
`SERIAL_READS` (the versions it still reads); anything else is refused with a ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, PlainSerializer, TypeAdapter

from bot.domain.clock import parse_iso

T = TypeVar("T")


def _read_time(value: Any) -> Any:
    return parse_iso(value) if isinstance(value, str) else value


def _write_time(value: datetime) -> str:
    return value.isoformat()


def _write_seconds(value: timedelta) -> float:
    return value.total_seconds()


def _write_millis(value: float) -> float:
    return round(value, 3)


# A timestamp, stored as its isoformat() text (a time without an offset is read as UTC).
Moment = Annotated[
    datetime,
    BeforeValidator(_read_time),
    PlainSerializer(_write_time, return_type=str, when_used="json"),
]
# A duration, stored as a number of seconds.
Seconds = Annotated[timedelta, PlainSerializer(_write_seconds, return_type=float, when_used="json")]
# A number of seconds, stored to the millisecond.
Millis = Annotated[float, PlainSerializer(_write_millis, return_type=float, when_used="json")]


def stored_as(key: str) -> Any:
    """Field metadata for a field stored under another key (`Annotated[Seconds, stored_as(..)]`)."""
    return Field(alias=key)


_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[T]) -> TypeAdapter[T]:
    """The adapter of a class, built once (building one costs far more than using it)."""
    found = _adapters.get(cls)
    if found is None:
        found = _adapters[cls] = TypeAdapter(cls)
    return found


def dump(obj: object) -> dict[str, Any]:
    """The JSON-ready form of a frozen dataclass (with its `version` when it has one)."""
    data: dict[str, Any] = _adapter(type(obj)).dump_python(obj, mode="json", by_alias=True)
    version = getattr(type(obj), "SERIAL_VERSION", None)
    return data if version is None else {"version": version, **data}


def load(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild an instance of `cls` from what `dump` wrote (or a row with its JSON decoded);
    ValueError when the data does not fit."""
    reads = getattr(cls, "SERIAL_READS", None)
    if reads is not None and data.get("version") not in reads:
        raise ValueError(f"unknown {cls.__name__} state version {data.get('version')!r}")
    return _adapter(cls).validate_python(data)
