"""How one customer's change at one instant splits across segments (pure; hand-computed)."""

from __future__ import annotations

import pytest

from projections.analytics.segment_flows import Piece, SegmentImbalanceError, allocate, customer_flows
from tests.projections.conftest import at

JAN, FEB, MAR = at("2024-01-01"), at("2024-02-01"), at("2024-03-01")
T = at("2024-02-10")


def flows(pieces, movements=None, fx=None):
    out = list(customer_flows(pieces, movements or {}, fx or {}, FEB, MAR, "c1"))  # since Feb
    return [(f.at, f.segment, f.delta, f.customers, f.amounts) for f in out]


def test_allocate_is_exact_and_proportional():
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]            # 3.33 each, the remainder to the first
    assert allocate(-10, [1, 1, 1]) == [-4, -3, -3]
    assert allocate(7, [50, 20]) == [5, 2]                 # 5.0 and 2.0
    assert sum(allocate(1001, [3, 7, 11])) == 1001
    with pytest.raises(ValueError):
        allocate(1, [0])


def test_upgrade_to_another_plan_is_a_transfer_plus_expansion_on_the_new_plan():
    # basic 30 -> pro 50 at T (one subscription, plan changes): the customer expands by 20.
    # basic: r = -30, pro: r = +50, m = +20 >= 0 -> basic's -30 is moved out, pro gets +30 moved
    # in and the remaining +20 is the expansion.
    pieces = [Piece("s1", JAN, T, "basic", 3000, 3000, "USD"), Piece("s1", T, None, "pro", 5000, 5000, "USD")]
    got = flows(pieces, {T: ("expansion", 2000)})
    assert got[1:] == [(T, "basic", -3000, -1, {"moved_out": -3000}),
                       (T, "pro", 5000, 1, {"expansion": 2000, "moved_in": 3000})]
    assert got[0] == (JAN, "basic", 3000, 1, {})  # before `since`: only the level, no parts


def test_downgrade_to_another_plan_puts_the_contraction_on_the_old_plan():
    # pro 50 -> basic 30: m = -20 < 0 -> basic's +30 is moved in, pro gives 30 (moved out) and
    # the remaining -20 is pro's contraction.
    pieces = [Piece("s1", JAN, T, "pro", 5000, 5000, "USD"), Piece("s1", T, None, "basic", 3000, 3000, "USD")]
    assert flows(pieces, {T: ("contraction", -2000)})[1:] == [
        (T, "basic", 3000, 1, {"moved_in": 3000}),
        (T, "pro", -5000, -1, {"contraction": -2000, "moved_out": -3000})]


def test_pure_fx_revaluation_and_the_rest_of_the_fx_impact():
    # Two EUR subscriptions renew at T with a new rate. s1 keeps its price (native 100): its
    # whole change 110 -> 120 is FX. s2 changes price 50 -> 80 native: reporting 55 -> 96.
    # The customer's FX impact is +15 (engine: 100*1.2 - 110 = +10 and 50*1.2 - 55 = +5), its
    # expansion +36. s1's FX is +10 (same native), the rest +5 goes to s2 (had MRR before), so
    # s2's remaining +36 is the expansion.
    pieces = [Piece("s1", JAN, T, "a", 11000, 10000, "EUR"), Piece("s1", T, None, "a", 12000, 10000, "EUR"),
              Piece("s2", JAN, T, "b", 5500, 5000, "EUR"), Piece("s2", T, None, "b", 9600, 8000, "EUR")]
    got = flows(pieces, {T: ("expansion", 3600)}, {T: 1500})
    assert [g for g in got if g[0] == T] == [(T, "a", 1000, 0, {"fx_impact": 1000}),
                                             (T, "b", 4100, 0, {"expansion": 3600, "fx_impact": 500})]


def test_a_change_without_movement_is_all_transfer_and_a_mismatch_is_loud():
    # Same price, another plan: no customer movement; 30 leaves basic and enters pro.
    pieces = [Piece("s1", JAN, T, "basic", 3000, 3000, "USD"), Piece("s1", T, None, "pro", 3000, 3000, "USD")]
    assert flows(pieces)[1:] == [(T, "basic", -3000, -1, {"moved_out": -3000}),
                                 (T, "pro", 3000, 1, {"moved_in": 3000})]
    with pytest.raises(SegmentImbalanceError, match="movement is 999"):
        flows(pieces, {T: ("expansion", 999)})


def test_changes_at_or_after_until_are_not_produced():
    pieces = [Piece("s1", JAN, MAR, "basic", 3000, 3000, "USD")]
    assert flows(pieces) == [(JAN, "basic", 3000, 1, {})]  # the end at MAR (= until) is out
