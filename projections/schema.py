"""The projection schema (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Bitemporal tables (`customer_mrr`, `subscription_mrr`, `movements`, `fx_impacts`) keep every row
ever projected: `recorded_at` is when the projector learned it, `superseded_at` when a later event
made it untrue (NULL: still current). A row is visible "as known at" K when
`recorded_at <= K AND (superseded_at IS NULL OR superseded_at > K)`.

All instants are stored in UTC via `UtcDateTime` (SQLite keeps no offset, so values are
normalised on the way in and tagged UTC on the way out). Money is BIGINT minor units; FX rates are
exact decimal strings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 3

UTC = dt.timezone.utc


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored as UTC; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: projections store UTC instants only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores text; a fixed UTC format keeps string order equal to time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A 64-bit surrogate key that is still SQLite's rowid alias (autoincrementing).
RowId = BigInteger().with_variant(Integer(), "sqlite")
Money = BigInteger
Instant = UtcDateTime
CustomerId = String(128)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("customer_id", CustomerId, nullable=True),
    Column("type", String(64), nullable=False),
    Column("occurred_at", Instant, nullable=False),
    Column("recorded_at", Instant, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("partition", "offset", name="uq_events_position"),
    Index("ix_events_customer", "customer_id", "recorded_at", "partition", "offset"),
)
"""The event index: every applied event, so one customer's history reloads without the ledger."""


def _bitemporal() -> list[Column[Any]]:
    return [
        Column("recorded_at", Instant, nullable=False),
        Column("superseded_at", Instant, nullable=True),
    ]


customer_mrr = Table(
    "customer_mrr",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("customer_id", CustomerId, nullable=False),
    Column("valid_from", Instant, nullable=False),
    Column("valid_to", Instant, nullable=True),
    Column("mrr", Money, nullable=False),
    *_bitemporal(),
    Index("ix_customer_mrr_customer", "customer_id", "superseded_at"),
    Index("ix_customer_mrr_valid", "valid_from", "valid_to"),
    Index("ix_customer_mrr_valid_to", "valid_to"),
)
"""Customer MRR (reporting currency) in force on [valid_from, valid_to); only spans with MRR > 0."""

subscription_mrr = Table(
    "subscription_mrr",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("customer_id", CustomerId, nullable=False),
    Column("subscription_id", String(128), nullable=False),
    Column("valid_from", Instant, nullable=False),
    Column("valid_to", Instant, nullable=True),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("native_mrr", Money, nullable=False),
    Column("mrr", Money, nullable=True),
    Column("plan", String(256), nullable=False),
    Column("billing_interval", String(32), nullable=False),
    *_bitemporal(),
    Index("ix_subscription_mrr_customer", "customer_id", "superseded_at"),
    Index("ix_subscription_mrr_currency", "currency", "superseded_at"),
    Index("ix_subscription_mrr_valid", "valid_from", "valid_to"),
    Index("ix_subscription_mrr_valid_to", "valid_to"),
)
"""Subscription state on [valid_from, valid_to); `mrr` NULL = no FX rate known (unconverted)."""

movements = Table(
    "movements",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("customer_id", CustomerId, nullable=False),
    Column("effective_at", Instant, nullable=False),
    Column("type", String(16), nullable=False),
    Column("amount", Money, nullable=False),
    Column("mrr_before", Money, nullable=False),
    Column("mrr_after", Money, nullable=False),
    Column("event_ids", JSON, nullable=False),
    *_bitemporal(),
    Index("ix_movements_customer", "customer_id", "superseded_at"),
    Index("ix_movements_effective", "effective_at"),
)

fx_impacts = Table(
    "fx_impacts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("customer_id", CustomerId, nullable=False),
    Column("effective_at", Instant, nullable=False),
    Column("amount", Money, nullable=False),
    Column("event_ids", JSON, nullable=False),
    *_bitemporal(),
    Index("ix_fx_impacts_customer", "customer_id", "superseded_at"),
    Index("ix_fx_impacts_effective", "effective_at"),
)

fx_rates = Table(
    "fx_rates",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("base", String(3), nullable=False),
    Column("quote", String(3), nullable=False),
    Column("effective_date", Date, nullable=False),
    Column("rate", Text, nullable=False),
    Column("recorded_at", Instant, nullable=False),
    Index("ix_fx_rates_pair", "base", "quote", "effective_date"),
)
"""Published FX rates; later rows for the same pair and date replace earlier ones (recorded order)."""

customer_attributes = Table(
    "customer_attributes",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("customer_id", CustomerId, nullable=False),
    Column("value", Text, nullable=False),
    Column("occurred_at", Instant, nullable=False),
    Column("recorded_at", Instant, nullable=False),
    Index("ix_customer_attributes_customer", "customer_id", "key", "occurred_at"),
)

acquisition_costs = Table(
    "acquisition_costs",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("period", String(7), nullable=False),
    Column("channel", String(128), nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("occurred_at", Instant, nullable=False),
    Column("recorded_at", Instant, nullable=False),
    Index("ix_acquisition_costs_period", "period"),
)

customer_fx_lookups = Table(
    "customer_fx_lookups",
    metadata,
    Column("customer_id", CustomerId, primary_key=True),
    Column("last_lookup_day", Date, nullable=False),
    Index("ix_customer_fx_lookups_day", "last_lookup_day"),
)
"""Per customer with foreign-currency terms, the latest day the engine looks an FX rate up for it
(`projections.customer_state.fx_lookup_day`). A rate effective on day D can only restate customers whose
last lookup day is >= D, so a batch with a rate loads those, not every foreign customer."""

event_conflicts = Table(
    "event_conflicts",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("offset", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Column("recorded_at", Instant, nullable=False),
    Index("ix_event_conflicts_event", "event_id"),
)
"""Ledger records that reuse an applied `event_id` with another body: kept for review, never applied.

The first copy in the ledger wins (it is the one in `events`). Keyed by ledger position, so
re-reading the same record records it once."""

projection_offsets = Table(
    "projection_offsets",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", BigInteger, nullable=False),
)
"""Per ledger partition, the offset of the next record to apply (written in the batch's transaction)."""

projection_meta = Table(
    "projection_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""`settings`: the MrrSettings (JSON) the projections were computed with; `schema_version`."""

bridge_totals = Table(
    "bridge_totals",
    metadata,
    Column("day", Date, primary_key=True),
    Column("measure", String(16), primary_key=True),
    Column("amount", Money, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("changed_at", Instant, nullable=False),
)
"""What the current rows of the bitemporal tables add up to per UTC day: the bridge's sums kept
ahead of time (`projections.totals`), written in the same transaction as the rows.

Measures: `mrr` and `unconverted` are changes of a level (an interval adds its MRR, or 1 for an
unconverted subscription, on the day it starts and takes it away on the day it ends);
`fx_impact` and each movement type are the sums of the rows effective that day. `row_count`
counts the rows (for `mrr`, those with MRR > 0). `changed_at` is the latest recorded instant
of a row that touched the day and measure: the totals are what a report as known at K sees for
every K >= max(changed_at)."""

BITEMPORAL_TABLES = (customer_mrr, subscription_mrr, movements, fx_impacts)
