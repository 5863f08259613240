"""Cohort retention on hand-built projection rows, every number worked out by hand."""

from __future__ import annotations

from projections.analytics.cohorts import cohorts, cohorts_json
from projections.periods import parse_label, periods_between
from projections.queries import Scope
from tests.projections.conftest import at, interval, movement, put

NOW = at("2030-01-01")


def months(first: str, last: str):
    return periods_between(parse_label(first), parse_label(last))


def scope(as_of: str = "2024-05-15", known_at: str | None = None) -> Scope:
    return Scope(at(as_of), at(known_at) if known_at else NOW)


async def history(store):
    """January cohort: a (100 on Jan 10, 150 from Feb 5), b (200 on Jan 20, churns Mar 15).
    February cohort: c (50 on Feb 1, churns Feb 20): fully churned in its own month.
    March cohort: d (80 on Mar 3, churns Apr 10, reactivates at 80 on May 5)."""
    await put(store, "customer_mrr",
              interval("a", "2024-01-10", "2024-02-05", 10000), interval("a", "2024-02-05", None, 15000),
              interval("b", "2024-01-20", "2024-03-15", 20000),
              interval("c", "2024-02-01", "2024-02-20", 5000),
              interval("d", "2024-03-03", "2024-04-10", 8000), interval("d", "2024-05-05", None, 8000))
    await put(store, "movements",
              movement("a", "2024-01-10", "new_business", 0, 10000),
              movement("a", "2024-02-05", "expansion", 10000, 15000),
              movement("b", "2024-01-20", "new_business", 0, 20000),
              movement("b", "2024-03-15", "churn", 20000, 0),
              movement("c", "2024-02-01", "new_business", 0, 5000),
              movement("c", "2024-02-20", "churn", 5000, 0),
              movement("d", "2024-03-03", "new_business", 0, 8000),
              movement("d", "2024-04-10", "churn", 8000, 0),
              movement("d", "2024-05-05", "reactivation", 0, 8000))


def table(payload, key):
    return {(r["cohort"], r["periods_since_start"]): r[key] for r in payload["rows"]}


async def test_retention_triangle(store):
    await history(store)
    s = scope()
    rows = await store.read(cohorts, months("2024-01", "2024-05"), s)
    assert [(c.period.label, c.customers, c.starting_mrr) for c in rows] == [
        ("2024-01", 2, 30000), ("2024-02", 1, 5000), ("2024-03", 1, 8000)]
    payload = cohorts_json(rows, "USD", "month", s)
    # January (size 2, starting 100 + 200 = 300):
    #   Jan end: a 100, b 200 -> 2/2 = 1, 300/300 = 1;  Feb end: a 150, b 200 -> 1, 350/300 = 1.1667
    #   Mar, Apr, May (at as_of May 15): a 150 only -> 1/2 = 0.5, 150/300 = 0.5
    # February (size 1, starting 50): c churned on Feb 20 -> 0 at every age, never missing.
    # March (size 1, starting 80): Mar 1 -> 1; Apr churned -> 0; May reactivated -> 1 (80/80).
    assert table(payload, "logo_retention") == {
        ("2024-01", 0): "1.0000", ("2024-01", 1): "1.0000", ("2024-01", 2): "0.5000", ("2024-01", 3): "0.5000",
        ("2024-01", 4): "0.5000",
        ("2024-02", 0): "0.0000", ("2024-02", 1): "0.0000", ("2024-02", 2): "0.0000", ("2024-02", 3): "0.0000",
        ("2024-03", 0): "1.0000", ("2024-03", 1): "0.0000", ("2024-03", 2): "1.0000"}
    revenue = table(payload, "revenue_retention")
    assert [revenue[("2024-01", age)] for age in range(5)] == ["1.0000", "1.1667", "0.5000", "0.5000", "0.5000"]
    assert [revenue[("2024-02", age)] for age in range(4)] == ["0.0000"] * 4
    assert [revenue[("2024-03", age)] for age in range(3)] == ["1.0000", "0.0000", "1.0000"]
    first = payload["rows"][1]
    assert first == {"cohort": "2024-01", "cohort_customers": 2, "starting_mrr": "300.00", "periods_since_start": 1,
                     "period": "2024-02", "customers": 2, "mrr": "350.00", "logo_retention": "1.0000",
                     "revenue_retention": "1.1667", "complete": True}
    assert [r["complete"] for r in payload["rows"] if r["period"] == "2024-05"] == [False, False, False]
    # Averages over the cohorts that reached each age (Σ active / Σ size, Σ MRR / Σ starting):
    # age 0: (2 + 0 + 1) / 4 = 0.75, (300 + 0 + 80) / 430 = 0.8837
    # age 1: (2 + 0 + 0) / 4 = 0.5,  350 / 430 = 0.8140
    # age 2: (1 + 0 + 1) / 4 = 0.5,  (150 + 80) / 430 = 0.5349
    # age 3: (1 + 0) / 3 = 0.3333,   150 / 350 = 0.4286
    # age 4: 1 / 2 = 0.5,            150 / 300 = 0.5
    assert [(a["periods_since_start"], a["cohorts"], a["logo_retention"], a["revenue_retention"])
            for a in payload["average"]] == [
        (0, 3, "0.7500", "0.8837"), (1, 3, "0.5000", "0.8140"), (2, 3, "0.5000", "0.5349"),
        (3, 2, "0.3333", "0.4286"), (4, 1, "0.5000", "0.5000")]


async def test_from_selects_cohorts_and_to_ends_the_triangle(store):
    await history(store)
    rows = await store.read(cohorts, months("2024-02", "2024-03"), scope())
    # January's customers are not in any selected cohort; the triangle stops at March.
    assert [(c.period.label, [(cell.age, cell.customers) for cell in c.cells]) for c in rows] == [
        ("2024-02", [(0, 0), (1, 0)]), ("2024-03", [(0, 1)])]


async def test_quarterly_cohorts(store):
    await history(store)
    quarters = periods_between(parse_label("2024-Q1"), parse_label("2024-Q2"))
    [q1] = await store.read(cohorts, quarters, scope())
    # Q1 cohort: a, b, c, d (starting 100 + 200 + 50 + 80 = 430). Q1 end: a 150 (b, c churned,
    # d churned Apr 10 so still 80 at Mar 31) -> 2/4, 230/430; Q2 (at May 15): a 150, d 80 -> 2/4.
    assert (q1.customers, q1.starting_mrr) == (4, 43000)
    assert [(c.customers, c.mrr) for c in q1.cells] == [(2, 23000), (2, 23000)]


async def test_a_restated_churn_changes_retention_only_from_when_it_was_known(store):
    # c's churn on Feb 20 was recorded late, on Mar 5: the row that said "c stays" was
    # superseded then. Known at Mar 1, the February cohort was fully retained.
    late = at("2024-03-05")
    await put(store, "customer_mrr",
              interval("c", "2024-02-01", None, 5000, recorded_at=at("2024-02-01"), superseded_at=late),
              interval("c", "2024-02-01", "2024-02-20", 5000, recorded_at=late))
    await put(store, "movements", movement("c", "2024-02-01", "new_business", 0, 5000, recorded_at=at("2024-02-01")),
              movement("c", "2024-02-20", "churn", 5000, 0, recorded_at=late))
    feb = months("2024-02", "2024-02")
    [before] = await store.read(cohorts, feb, scope("2024-02-29T12:00", known_at="2024-03-01"))
    [after] = await store.read(cohorts, feb, scope("2024-02-29T12:00"))
    assert (before.cells[0].customers, after.cells[0].customers) == (1, 0)
    assert await store.read(cohorts, feb, scope("2024-02-29T12:00", known_at="2024-01-31")) == []


async def test_no_data_no_cohorts(store):
    assert await store.read(cohorts, [], scope()) == []
    assert cohorts_json([], "USD", "month", scope())["rows"] == []
