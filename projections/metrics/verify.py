"""The outcome of the last `mrr verify`, as the exporter reads it from `projection_meta`.

`mrr verify` (streams/verify.py, `record_result`) stores a JSON summary under the key `verify`:
`{"checked_at": RFC3339, "differences": int, "events": int}`. This module reads that row with
SQLAlchemy Core and decodes it into a Struct of its own (projections never import from streams/;
tests/metrics/test_verify_gauges.py runs the real `mrr verify` and checks both ends agree).

No row means no verify ever ran on these projections (or they were swapped in by `mrr replay`
since): the exporter then exports no `mrr_verify_*` gauge at all. An undecodable row is logged
and treated the same way, so it never stops the business gauges from refreshing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

import msgspec
from sqlalchemy import Connection

from projections.store import read_meta

log = logging.getLogger(__name__)

META_KEY = "verify"
"""The `projection_meta` key `mrr verify` writes (streams.verify.META_KEY)."""


class VerifyStatus(msgspec.Struct, frozen=True):
    """The stored summary of the last `mrr verify` (unknown fields are ignored)."""

    checked_at: Annotated[dt.datetime, msgspec.Meta(tz=True)]
    differences: int
    events: int

    @property
    def timestamp(self) -> float:
        """`checked_at` as Unix time."""
        return self.checked_at.timestamp()


def read_verify(conn: Connection) -> VerifyStatus | None:
    """The last stored verify summary, or None when there is none (or it cannot be decoded)."""
    raw = read_meta(conn, META_KEY)
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=VerifyStatus)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        log.warning("projection_meta[%r] is not a verify summary, not exported: %s (%r)", META_KEY, exc, raw[:200])
        return None
