"""`diff_parts`: one table's current rows against an engine answer, looking only at what changed."""

from __future__ import annotations

import datetime as dt

from projections.customer_state import CurrentRow
from projections.engine import CustomerInterval
from projections.row_diff import diff_parts

UTC = dt.timezone.utc
R1 = dt.datetime(2024, 5, 1, tzinfo=UTC)
R2 = dt.datetime(2024, 6, 1, tzinfo=UTC)


def interval(month: int, mrr: int, open_: bool = False) -> CustomerInterval:
    start = dt.datetime(2024, month, 1, tzinfo=UTC)
    return CustomerInterval("c1", start, None if open_ else dt.datetime(2024, month + 1, 1, tzinfo=UTC), mrr)


def stored(value, row_id: int) -> CurrentRow:
    return CurrentRow(value, id=row_id)


def test_a_resumed_run_compares_only_its_new_rows_and_tail():
    jan, feb_open = interval(1, 100), interval(2, 200, open_=True)
    settled, others = [stored(jan, 1)], [stored(feb_open, 2)]
    feb, mar_open = interval(2, 200), interval(3, 300, open_=True)
    rows = [jan, feb]  # the run's output: jan is the very object of the last answer (kept 1)
    supersede, inserts = [], []
    changed = diff_parts(settled, others, rows, 1, [mar_open], R2, supersede, inserts)
    assert supersede == [{"row_id": 2, "at": R2, "value": feb_open}]  # the open February interval closed
    assert [(r["valid_from"].month, r["mrr"], r["recorded_at"]) for r in inserts] == [(2, 200, R2), (3, 300, R2)]
    assert changed == [feb_open, feb, mar_open]
    assert [r.value for r in settled] == [jan, feb]  # aligned with the run's rows
    assert [r.value for r in others] == [mar_open]  # the tail stays open


def test_rows_beyond_what_the_run_kept_are_compared_again():
    jan, feb = interval(1, 100), interval(2, 200)
    settled, others = [stored(jan, 1), stored(feb, 2)], []
    feb_restated = interval(2, 250)  # a rewound run: February recomputed, January kept
    supersede, inserts = [], []
    diff_parts(settled, others, [jan, feb_restated], 1, [], R2, supersede, inserts)
    assert supersede == [{"row_id": 2, "at": R2, "value": feb}]
    assert [r["mrr"] for r in inserts] == [250]
    assert [r.value for r in settled] == [jan, feb_restated] and others == []


def test_an_equal_row_of_a_rebuilt_run_keeps_its_id():
    jan = interval(1, 100)
    settled, others = [stored(jan, 1)], []
    rebuilt = interval(1, 100)  # equal value, another object: nothing kept
    supersede, inserts = [], []
    assert diff_parts(settled, others, [rebuilt], 0, [], R1, supersede, inserts) == []
    assert (supersede, inserts) == ([], [])
    assert [(r.id, r.value is rebuilt) for r in settled] == [(1, True)]
