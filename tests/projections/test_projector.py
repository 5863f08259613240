"""The projector: one transaction per batch, offsets compare-and-set, idempotence, bitemporal rows."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import func, select

from projections import customer_state as state_module
from projections import projector as projector_module
from projections import schema
from projections.engine import MrrSettings
from projections.periods import parse_label
from projections.projector import FencingError, OffsetGapError, Projector, SettingsMismatchError
from projections.queries import Scope, bridge
from tests.engine.builders import canceled, event, item, started, updated
from tests.projections.conftest import at, record

SETTINGS = MrrSettings()


BATCH1 = [
    record(0, started("2024-01-01", items=[item(10000)]), "2024-01-01"),
    record(1, started("2024-01-10", sub="s2", customer="c2", items=[item(5000)]), "2024-01-10"),
]


def batch1():
    return list(BATCH1)


async def counts(store) -> dict[str, int]:
    def go(conn):
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in schema.metadata.sorted_tables}
    return await store.read(go)


async def current_rows(store) -> dict[str, list[tuple]]:
    """Every current (not superseded) row, without ids and recorded times."""
    def go(conn):
        out = {}
        for table in schema.BITEMPORAL_TABLES:
            cols = [c for c in table.c if c.name not in ("id", "recorded_at", "superseded_at")]
            rows = conn.execute(select(*cols).where(table.c.superseded_at.is_(None))).all()
            out[table.name] = sorted(tuple(str(v) for v in r) for r in rows)
        return out
    return await store.read(go)


async def test_applies_a_batch_and_records_offsets(store):
    result = await Projector(store, SETTINGS).apply_batch(batch1(), {0: 2})
    assert (result.applied, result.duplicates, result.skipped, result.customers) == (2, 0, 0, 2)
    assert await store.offsets() == {0: 2}
    n = await counts(store)
    assert (n["events"], n["customer_mrr"], n["movements"], n["subscription_mrr"]) == (2, 2, 2, 2)


async def test_an_error_mid_batch_writes_nothing(store, monkeypatch):
    real = state_module.CustomerState.catch_up

    def failing(state, *args):
        if state.customer_id == "c2":
            raise RuntimeError("boom")
        return real(state, *args)

    monkeypatch.setattr(state_module.CustomerState, "catch_up", failing)
    projector = Projector(store, SETTINGS)
    with pytest.raises(RuntimeError, match="boom"):
        await projector.apply_batch(batch1(), {0: 2})
    assert all(v == 0 for v in (await counts(store)).values())
    monkeypatch.setattr(state_module.CustomerState, "catch_up", real)
    # The same projector retries the batch cleanly.
    assert (await projector.apply_batch(batch1(), {0: 2})).applied == 2


async def test_a_zombie_worker_is_fenced(store):
    worker_a, zombie = Projector(store, SETTINGS), Projector(store, SETTINGS)
    await zombie.apply_batch(batch1()[:1], {0: 1})
    await worker_a.apply_batch(batch1()[1:], {0: 2})  # partition moved to A, which continues
    late = record(2, canceled("2024-02-01"), "2024-02-01")
    with pytest.raises(FencingError, match="stored next offset 2 != expected 1"):
        await zombie.apply_batch([late], {0: 3})
    assert await store.offsets() == {0: 2}
    assert (await counts(store))["events"] == 2
    # An explicitly stale expectation is refused too; the right one is accepted.
    with pytest.raises(FencingError):
        await worker_a.apply_batch([late], {0: 3}, expected={0: 1})
    assert (await worker_a.apply_batch([late], {0: 3}, expected={0: 2})).applied == 1


async def test_compare_and_set_refuses_a_concurrent_move(store, monkeypatch):
    await Projector(store, SETTINGS).apply_batch(batch1(), {0: 2})
    # Another writer moved the offset between this worker's read and its update.
    real = projector_module.lock_offsets
    monkeypatch.setattr(projector_module, "lock_offsets", lambda conn, partitions: {**real(conn, partitions), 0: 1})
    with pytest.raises(FencingError, match="moved from 1 concurrently"):
        await Projector(store, SETTINGS).apply_batch([BATCH1[1], record(2, canceled("2024-02-01"), "2024-02-01")],
                                                     {0: 3})
    monkeypatch.undo()
    assert await store.offsets() == {0: 2}
    assert (await counts(store))["events"] == 2


async def test_records_below_the_stored_offset_are_skipped(store):
    await Projector(store, SETTINGS).apply_batch(batch1(), {0: 2})
    before = await current_rows(store), await counts(store)
    result = await Projector(store, SETTINGS).apply_batch(batch1(), {0: 2})  # a restarted worker
    assert (result.applied, result.skipped) == (0, 2)
    assert (await current_rows(store), await counts(store)) == before
    assert await store.offsets() == {0: 2}


async def test_duplicate_event_ids_are_ignored(store):
    projector = Projector(store, SETTINGS)
    await projector.apply_batch(batch1(), {0: 2})
    before = await current_rows(store)
    again = [record(2, batch1()[0].event, "2024-03-01"), record(3, batch1()[0].event, "2024-03-01")]
    result = await projector.apply_batch(again, {0: 4})
    assert (result.applied, result.duplicates) == (0, 2)
    assert await current_rows(store) == before
    assert await store.offsets() == {0: 4}


async def test_a_gap_is_refused(store):
    projector = Projector(store, SETTINGS)
    await projector.apply_batch(batch1(), {0: 2})
    with pytest.raises(OffsetGapError, match="apply offsets 2..4 first"):
        await projector.apply_batch([record(5, canceled("2024-02-01"), "2024-02-01")], {0: 6})


async def test_other_settings_are_refused(store):
    await Projector(store, SETTINGS).apply_batch(batch1(), {0: 2})
    with pytest.raises(SettingsMismatchError):
        await Projector(store, MrrSettings(reporting_currency="EUR")).apply_batch(
            [record(2, canceled("2024-02-01"), "2024-02-01")], {0: 3})


async def test_rows_carry_the_recorded_time_of_each_step(store):
    # One batch, two recorded instants for c1: the 100 row is recorded Jan 1 and superseded Feb 10.
    records = [
        record(0, started("2024-01-01", items=[item(10000)]), "2024-01-01"),
        record(1, updated("2024-01-15", items=[item(20000)]), "2024-02-10"),
    ]
    await Projector(store, SETTINGS).apply_batch(records, {0: 2})

    def go(conn):
        t = schema.customer_mrr
        return conn.execute(select(t.c.valid_from, t.c.valid_to, t.c.mrr, t.c.recorded_at, t.c.superseded_at)
                            .order_by(t.c.id)).all()

    rows = await store.read(go)
    assert [tuple(r) for r in rows] == [
        (at("2024-01-01"), None, 10000, at("2024-01-01"), at("2024-02-10")),
        (at("2024-01-01"), at("2024-01-15"), 10000, at("2024-02-10"), None),
        (at("2024-01-15"), None, 20000, at("2024-02-10"), None),
    ]


async def test_batching_does_not_change_the_result(store, tmp_path):
    from projections.store import ProjectionStore, sqlite_url

    records = [
        record(0, started("2024-01-01", items=[item(10000)]), "2024-01-01"),
        record(1, started("2024-01-10", sub="s2", customer="c2", items=[item(5000)]), "2024-01-10"),
        record(2, updated("2024-01-05", items=[item(7000)]), "2024-02-01"),  # backdated
        record(3, canceled("2024-03-01", sub="s2", customer="c2"), "2024-03-01"),
        record(4, started("2024-04-01", sub="s3", customer="c2", items=[item(100)]), "2024-04-01"),
    ]
    await Projector(store, SETTINGS).apply_batch(records, {0: 5})
    other = ProjectionStore.from_url(sqlite_url(tmp_path / "one_by_one.sqlite"))
    await other.create_all()
    try:
        projector = Projector(other, SETTINGS)
        for r in records:
            await projector.apply_batch([r], {0: r.offset + 1})
        assert await current_rows(other) == await current_rows(store)
        assert (await counts(other))["customer_mrr"] == (await counts(store))["customer_mrr"]
    finally:
        await other.close()


def fx(event_id: str, when: str, rate: str):
    return event("fx.rate_published", when, event_id=event_id, base="EUR", quote="USD", rate=rate,
                 effective_date=when)


async def test_a_late_rate_restates_foreign_customers(store):
    projector = Projector(store, SETTINGS)
    eur = started("2024-01-01", customer="c9", sub="s9", currency="EUR", items=[item(10000)])
    await projector.apply_batch([record(0, eur, "2024-01-02")], {0: 1})
    month = [parse_label("2024-01")]

    def sub_mrr(conn):
        t = schema.subscription_mrr
        return conn.execute(select(t.c.mrr).where(t.c.superseded_at.is_(None), t.c.valid_to.is_(None))).scalars().all()

    assert await store.read(sub_mrr) == [None]  # unconverted, not 0
    [row] = await store.read(bridge, month, Scope(at("2024-02-01"), at("2024-02-01")))
    assert (row.closing_mrr, row.unconverted_subscriptions) == (0, 1)
    # The rate arrives later (another partition), effective before the subscription started.
    result = await projector.apply_batch([record(0, fx("fx1", "2023-12-31", "1.1"), "2024-02-05", partition=1)], {1: 1})
    assert (result.customers, result.restated) == (0, 1)  # no event of c9, yet its January changed
    assert await store.read(sub_mrr) == [11000]
    [now] = await store.read(bridge, month, Scope(at("2024-02-01"), at("2024-03-01")))
    assert (now.new_business, now.closing_mrr, now.unconverted_subscriptions) == (11000, 11000, 0)
    [then] = await store.read(bridge, month, Scope(at("2024-02-01"), at("2024-02-04")))
    assert (then.closing_mrr, then.unconverted_subscriptions) == (0, 1)
    # A second projector (fresh FX cache) sees the same rate.
    again = Projector(store, SETTINGS)
    await again.apply_batch([record(1, updated("2024-01-20", customer="c9", sub="s9", currency="EUR",
                                               items=[item(20000)]), "2024-02-06")], {0: 2})
    assert await store.read(sub_mrr) == [22000]


async def test_reference_and_attribute_events_are_stored(store):
    cost = event("acquisition.cost_recorded", "2024-01-31", amount=50000, currency="USD", period="2024-01",
                 channel="ads")
    attrs = event("customer.attributes_set", "2024-01-01", attributes={"country": "DE", "segment": "smb"})
    await Projector(store, SETTINGS).apply_batch(
        [record(0, cost, "2024-02-01"), record(1, attrs, "2024-02-01"),
         record(2, fx("fx2", "2024-01-01", "1.08"), "2024-02-01")], {0: 3})
    n = await counts(store)
    assert (n["acquisition_costs"], n["customer_attributes"], n["fx_rates"], n["events"]) == (1, 2, 1, 3)


async def test_a_late_rate_effective_on_the_renewal_day_restates_it(store):
    projector = Projector(store, SETTINGS)
    start = started("2024-01-01", customer="c8", sub="s8", currency="EUR", items=[item(10000)])
    renew = event("subscription.renewed", "2024-02-01", customer="c8", subscription_id="s8",
                  terms={"status": "active", "currency": "EUR", "items": [item(10000)]})
    await projector.apply_batch([record(0, fx("fx-jan", "2024-01-01", "1.10"), "2023-12-31"),
                                 record(1, start, "2024-01-01"), record(2, renew, "2024-02-01")], {0: 3})
    # February's rate is published late, effective on the renewal day itself.
    late = await projector.apply_batch([record(3, fx("fx-feb", "2024-02-01", "1.20"), "2024-02-05")], {0: 4})
    assert (late.customers, late.restated) == (0, 1)  # no event of c8, yet its reported history changed
    [feb] = await store.read(bridge, [parse_label("2024-02")], Scope(at("2024-02-10"), at("2024-02-10")))
    assert (feb.opening_mrr, feb.fx_impact, feb.closing_mrr) == (11000, 1000, 12000)
    [then] = await store.read(bridge, [parse_label("2024-02")], Scope(at("2024-02-10"), at("2024-02-04")))
    assert (then.fx_impact, then.closing_mrr) == (0, 11000)


async def test_a_batch_above_offset_zero_on_fresh_projections_is_a_gap(store):
    # A partition never seen before starts at offset 0 (the ledger keeps every record), so a
    # consumer that resumes further on must fill the range first.
    with pytest.raises(OffsetGapError, match="apply offsets 0..2 first"):
        await Projector(store, SETTINGS).apply_batch([record(3, canceled("2024-02-01"), "2024-02-01")], {0: 4})
    assert (await counts(store))["events"] == 0


async def test_same_event_id_with_another_body_is_a_recorded_conflict(store):
    projector = Projector(store, SETTINGS)
    await projector.apply_batch(batch1(), {0: 2})
    before = await current_rows(store)
    first = batch1()[0].event
    resent = record(2, first, "2024-03-01")  # same content, re-stamped: a duplicate
    other = record(3, msgspec.structs.replace(updated("2024-01-01", items=[item(99999)]),
                                              event_id=first.event_id), "2024-03-01")
    result = await projector.apply_batch([resent, other], {0: 4})
    assert (result.applied, result.duplicates, result.conflicts) == (0, 1, 1)
    assert await current_rows(store) == before  # the first copy wins; nothing overwritten

    def conflicts(conn):
        t = schema.event_conflicts
        return conn.execute(select(t.c.partition, t.c["offset"], t.c.event_id)).all()

    assert await store.read(conflicts) == [(0, 3, first.event_id)]
    # Re-reading the same records (a restarted worker) records nothing twice.
    projector.forget_positions()
    again = await Projector(store, SETTINGS).apply_batch([resent, other], {0: 4})
    assert again.skipped == 2
    assert len(await store.read(conflicts)) == 1


async def test_concurrent_projectors_on_one_partition_apply_each_record_once(store):
    import asyncio

    records = [record(i, started("2024-01-01", sub=f"s{i}", customer=f"c{i}", items=[item(1000)]),
                      "2024-01-02") for i in range(40)]
    a, b = Projector(store, SETTINGS), Projector(store, SETTINGS)

    async def run(projector, chunks):
        outcomes = []
        for chunk in chunks:
            try:
                outcomes.append((await projector.apply_batch(chunk, {0: chunk[-1].offset + 1})).applied)
            except (FencingError, OffsetGapError) as exc:
                outcomes.append(type(exc).__name__)
                projector.forget_positions()
        return outcomes

    halves = [records[i:i + 10] for i in range(0, 40, 10)]
    await asyncio.gather(run(a, halves), run(b, halves))
    n = await counts(store)
    assert n["events"] == 40 and await store.offsets() == {0: 40}
    rows = await current_rows(store)
    assert len(rows["customer_mrr"]) == 40


async def test_restated_counts_customers_whose_stored_movements_changed(store):
    projector = Projector(store, SETTINGS)
    first = await projector.apply_batch(batch1(), {0: 2})
    assert (first.customers, first.restated) == (2, 0)
    # A forward update closes c1's open interval and adds a movement: nothing reported changes.
    forward = await projector.apply_batch(
        [record(2, updated("2024-02-01", items=[item(20000)]), "2024-02-01")], {0: 3})
    assert (forward.customers, forward.restated) == (1, 0)
    # A backdated update changes the February expansion already reported: c1 is restated.
    late = await projector.apply_batch(
        [record(3, updated("2024-01-05", items=[item(7000)]), "2024-02-10"),
         record(4, started("2024-02-11", sub="s3", customer="c3", items=[item(100)]), "2024-02-11")], {0: 5})
    assert (late.customers, late.restated) == (2, 1)


async def test_history_written_in_the_same_batch_is_no_restatement(store):
    records = [
        record(0, started("2024-01-01", items=[item(10000)]), "2024-01-01"),
        record(1, updated("2024-02-01", items=[item(20000)]), "2024-02-01"),
        record(2, updated("2024-01-05", items=[item(7000)]), "2024-02-10"),  # backdated
    ]
    result = await Projector(store, SETTINGS).apply_batch(records, {0: 3})
    assert (result.customers, result.restated) == (1, 0)


async def test_a_cold_projector_continues_after_an_instant_that_only_superseded_rows(store):
    """A step can leave its instant only in `superseded_at`: here a late rate restates c9 at
    02-05 (new rows recorded then), and a cancellation recorded 02-03 but consumed after it
    (another partition's pace) removes every row at 02-05. A projector with an empty customer
    cache must still know c9 changed at 02-05, so c9's next rows are recorded at 02-05, not at
    their own earlier instant: otherwise, known at 02-04, both the old subscription and the new
    one would show."""
    eur = dict(customer="c9", currency="EUR")
    warm = Projector(store, SETTINGS)
    await warm.apply_batch([record(0, fx("fx1", "2023-12-01", "1.1"), "2023-12-01", partition=1)], {1: 1})
    await warm.apply_batch([record(0, started("2024-01-01", sub="s9", items=[item(10000)], **eur), "2024-01-02")], {0: 1})
    await warm.apply_batch([record(1, fx("fx2", "2023-12-31", "1.2"), "2024-02-05", partition=1)], {1: 2})
    await warm.apply_batch([record(1, canceled("2024-01-01", sub="s9", customer="c9"), "2024-02-03")], {0: 2})
    cold = Projector(store, SETTINGS)
    await cold.apply_batch([record(2, started("2024-01-15", sub="s10", items=[item(5000)], **eur), "2024-02-04")], {0: 3})

    def history(conn):
        t = schema.subscription_mrr
        return conn.execute(select(t.c.subscription_id, t.c.recorded_at, t.c.superseded_at).order_by(t.c.id)).all()

    rows = await store.read(history)
    assert max(r.superseded_at for r in rows if r.subscription_id == "s9") == at("2024-02-05")
    assert [r.recorded_at for r in rows if r.subscription_id == "s10"] == [at("2024-02-05")]
