"""Old schema versions are upcast on read, never rewritten: shown with a fake v0."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.embedded import EmbeddedLedger
from ledger.events import SubscriptionStarted
from ledger.upcast import UPCASTERS, UnsupportedSchemaVersion, UpcasterRegistry, decode_stored
from ledger.validation import EventValidationError, decode_event
from tests.ledger.factory import NOW, started


def v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """Fake v0: `customer` instead of `customer_id`, items priced by `amount`."""
    raw["customer_id"] = raw.pop("customer")
    for item in raw.get("terms", {}).get("items", []):
        item["unit_amount"] = item.pop("amount")
    return raw


def v0_event() -> dict[str, Any]:
    raw = started("old-1", schema_version=0)
    raw["customer"] = raw.pop("customer_id")
    raw["terms"]["items"][0]["amount"] = raw["terms"]["items"][0].pop("unit_amount")
    return raw


@pytest.fixture
def with_v0() -> Iterator[UpcasterRegistry]:
    """The project registry with a fake v0 upcaster, removed afterwards."""
    UPCASTERS.register(0)(v0_to_v1)
    yield UPCASTERS
    UPCASTERS.unregister(0)


def test_v0_is_rejected_without_an_upcaster() -> None:
    with pytest.raises(
        EventValidationError, match=r"^schema_version: unsupported version 0 \(supported: 1\)$"
    ):
        decode_event(json.dumps(v0_event()), now=NOW)


def test_v0_event_decodes_to_a_v1_struct(with_v0: UpcasterRegistry) -> None:
    raw = v0_event()
    event = decode_event(json.dumps(raw), now=NOW)
    assert isinstance(event, SubscriptionStarted)
    assert event.schema_version == 1
    assert event.customer_id == "cus-1"
    assert event.terms.items[0].unit_amount == 10000
    assert event == decode_event(json.dumps(started("old-1")), now=NOW)


def test_upcasting_does_not_touch_the_input(with_v0: UpcasterRegistry) -> None:
    raw = v0_event()
    decode_event(raw, now=NOW)
    assert raw == v0_event()


def test_a_broken_old_event_is_a_validation_error(with_v0: UpcasterRegistry) -> None:
    raw = v0_event()
    del raw["customer"]
    with pytest.raises(
        EventValidationError, match=r"^body: cannot upcast from version 0: KeyError\('customer'\)$"
    ):
        decode_event(json.dumps(raw), now=NOW)


def test_chains_run_in_order() -> None:
    registry = UpcasterRegistry(current=3)
    registry.register(1)(lambda raw: raw | {"seen": raw.get("seen", "") + "1"})
    registry.register(2)(lambda raw: raw | {"seen": raw["seen"] + "2"})
    assert registry.supported() == range(1, 4)
    assert registry.upcast({"schema_version": 1}) == {"schema_version": 3, "seen": "12"}
    assert registry.upcast({}) == {"schema_version": 3, "seen": "12"}  # missing means 1
    registry.unregister(1)
    assert registry.supported() == range(2, 4)
    with pytest.raises(UnsupportedSchemaVersion, match="supported: 2 to 3"):
        registry.upcast({"schema_version": 1})


def test_cannot_register_the_current_version() -> None:
    with pytest.raises(ValueError):
        UpcasterRegistry(current=1).register(1)


async def test_stored_v0_rows_are_upcast_on_read_and_never_rewritten(
    tmp_path: Path, with_v0: UpcasterRegistry
) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = EmbeddedLedger(path)
    body = json.dumps(v0_event() | {"recorded_at": "2024-03-01T00:00:00Z"}).encode()
    with sqlite3.connect(path) as db:  # as a v0 writer left it, years ago
        db.execute(
            "INSERT INTO ledger VALUES (0, 'old-1', 'cus-1', 'subscription.started', "
            "'2024-03-01T00:00:00.000000Z', '2024-03-01T00:00:00.000000Z', ?)",
            (body,),
        )
    [record] = await ledger.read(0, 0, 10)
    assert isinstance(record.event, SubscriptionStarted)
    assert record.event.schema_version == 1 and record.event.customer_id == "cus-1"
    assert decode_stored(body).terms.items[0].unit_amount == 10000
    # Re-sending the same event (now as v1) is a duplicate of the stored v0 one.
    [result] = await ledger.append_many([decode_event(started("old-1"), now=NOW)])
    assert (result.status, result.offset) == ("duplicate", 0)
    await ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT body FROM ledger").fetchone()[0] == body
