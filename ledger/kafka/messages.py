"""Ledger topic messages: the raw record a consumer sees, and its decoding into an event.

Anything can be written to a Kafka topic, so a consumer of the ledger validates every message the
same way the ingest path does (`ledger.validation`): a message that is not a valid event is a
*poison message*, `PoisonMessage` says why, and the worker sends it to the dead-letter topic.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from ledger.events import EventBase
from ledger.upcast import decode_stored
from ledger.validation import (
    DEFAULT_HORIZON,
    MAX_BODY_BYTES,
    EventValidationError,
    check_rules,
    decode_event,
)


class RawRecord(msgspec.Struct, frozen=True):
    """One message of a ledger partition as Kafka returned it (value not decoded)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


class PoisonMessage(ValueError):
    """A ledger message that is not a valid event; `reason` is `path: why`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_ledger_value(
    value: bytes | None,
    timestamp_ms: int,
    *,
    horizon: dt.timedelta = DEFAULT_HORIZON,
    max_bytes: int = MAX_BODY_BYTES,
) -> EventBase:
    """Decode and validate one ledger message value; raise `PoisonMessage` if it is not an event.

    Fast path: a current-version body decodes straight to its Struct and only the rules a type
    cannot express are checked. Anything else goes through the full validator, which upcasts old
    versions or names the offending field. `recorded_at` is the one in the body (our writers stamp
    it); a producer that did not stamp it gets the Kafka record timestamp. The future horizon is
    measured from `recorded_at`.
    """
    if value is None:
        raise PoisonMessage("body: empty message (a tombstone has no place in the ledger)")
    if len(value) > max_bytes:
        raise PoisonMessage(f"body: {len(value)} bytes, larger than the {max_bytes}-byte limit")
    try:
        event = decode_stored(value)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, LookupError):
        event = None
    try:
        if event is not None:
            recorded = event.recorded_at or _from_timestamp(timestamp_ms)
            check_rules(event, now=recorded, horizon=horizon)
            return event if event.recorded_at else msgspec.structs.replace(event, recorded_at=recorded)
        recorded = _body_recorded_at(value) or _from_timestamp(timestamp_ms)
        event = decode_event(value, now=recorded, horizon=horizon, max_bytes=max_bytes)
    except EventValidationError as exc:
        raise PoisonMessage(str(exc)) from None
    return msgspec.structs.replace(event, recorded_at=recorded)


def _from_timestamp(timestamp_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)


def _body_recorded_at(value: bytes) -> dt.datetime | None:
    """`recorded_at` of a body the typed decoder refused (an old version), if it has a valid one."""
    try:
        raw = msgspec.json.decode(value)
        stamp = dt.datetime.fromisoformat(raw["recorded_at"])
    except (msgspec.DecodeError, TypeError, KeyError, ValueError):
        return None
    return stamp.astimezone(dt.UTC) if stamp.tzinfo else None
