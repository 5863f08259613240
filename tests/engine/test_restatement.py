"""MRR_SPEC.md §5: late events restate history; incremental equals from scratch."""

from __future__ import annotations

from projections.engine import CustomerEngine, FxTable, MrrSettings, compute_timeline
from tests.engine.builders import cancel_scheduled, canceled, item, started, updated
from tests.engine.helpers import moves


def test_backdated_change_restates_a_closed_month() -> None:
    engine = CustomerEngine("c1", MrrSettings(), FxTable())
    first = engine.apply([started("2024-01-10", items=[item(5000)]), updated("2024-04-01", items=[item(8000)])])
    assert moves(first)[1] == ("2024-04-01", "expansion", 3000)
    late = engine.apply([updated("2024-03-05", items=[item(6000)])])  # arrives in April, effective March
    assert moves(late) == [
        ("2024-01-10", "new_business", 5000),
        ("2024-03-05", "expansion", 1000),
        ("2024-04-01", "expansion", 2000),
    ]


def test_backdated_cancellation_restates_a_closed_month() -> None:
    engine = CustomerEngine("c1", MrrSettings(), FxTable())
    engine.apply([started("2024-01-10", items=[item(5000)]), updated("2024-04-01", items=[item(8000)])])
    late = engine.apply([canceled("2024-03-15")])
    assert moves(late) == [("2024-01-10", "new_business", 5000), ("2024-03-15", "churn", -5000)]


def test_incremental_equals_from_scratch() -> None:
    events = [
        started("2024-01-10", items=[item(5000)]),
        cancel_scheduled("2024-02-01", cancel_at="2024-06-01"),
        updated("2024-03-01", items=[item(7000)]),
        started("2024-02-15", sub="s2", items=[item(1000)]),  # late
        canceled("2024-01-20", sub="s2"),  # later still, and before its start: no effect
    ]
    engine = CustomerEngine("c1", MrrSettings(), FxTable())
    for e in events:
        incremental = engine.apply([e])
    assert incremental == compute_timeline("c1", events, MrrSettings(), FxTable())
