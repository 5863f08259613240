"""The forecast on small hand-built bridges, every expected number worked out by hand below."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.analytics.forecast import backtest_from, forecast_from, forecast_json, summary, trailing_rates
from projections.periods import parse_label
from projections.queries.bridge import BridgeRow
from projections.queries.common import Scope
from tests.projections.conftest import at

SCOPE = Scope(as_of=at("2024-04-01"), known_at=at("2024-04-01"))


def row(label: str, opening: int, new: int = 0, expansion: int = 0, contraction: int = 0, churn: int = 0,
        reactivation: int = 0, fx: int = 0) -> BridgeRow:
    period = parse_label(label)
    closing = opening + new + expansion + contraction + churn + reactivation + fx
    r = BridgeRow(period, period.end, opening, new, expansion, contraction, churn, reactivation, fx, closing)
    r.check()
    return r


# Three months; the monthly rates are exact: expansion 8 %, 10 %, 12 %; contraction 2 %, 3 %, 4 %;
# churn 4 %, 5 %, 6 % of opening. February has an FX impact of -24, which the rates ignore.
#   Jan: 10000 + 1000 + 800 - 200 - 400 + 0            = 11200
#   Feb: 11200 + 3000 + 1120 - 336 - 560 + 400 - 24(fx) = 14800
#   Mar: 14800 + 5000 + 1776 - 592 - 888 + 800          = 20896
HISTORY = [
    row("2024-01", 10000, new=1000, expansion=800, contraction=-200, churn=-400),
    row("2024-02", 11200, new=3000, expansion=1120, contraction=-336, churn=-560, reactivation=400, fx=-24),
    row("2024-03", 14800, new=5000, expansion=1776, contraction=-592, churn=-888, reactivation=800),
]


def test_trailing_rates_by_hand():
    rates = trailing_rates(HISTORY).rates
    # Σ opening = 10000 + 11200 + 14800 = 36000
    assert rates["expansion_rate"].value == Decimal(3696) / 36000      # 800 + 1120 + 1776 = 3696
    assert rates["contraction_rate"].value == Decimal(1128) / 36000    # 200 + 336 + 592 = 1128
    assert rates["churn_rate"].value == Decimal(1848) / 36000          # 400 + 560 + 888 = 1848
    assert rates["new_business"].value == 3000                         # (1000 + 3000 + 5000) / 3
    assert rates["reactivation"].value == 400                          # (0 + 400 + 800) / 3
    # sample sd: new 1000, 3000, 5000 -> sqrt((2000² + 0 + 2000²) / 2) = 2000; reactivation 400;
    # expansion 0.08, 0.10, 0.12 -> 0.02; contraction and churn -> 0.01
    assert [rates[n].spread for n in ("new_business", "reactivation", "expansion_rate", "contraction_rate",
                                      "churn_rate")] == [2000, 400, Decimal("0.02"), Decimal("0.01"), Decimal("0.01")]
    assert [v for _, v in rates["expansion_rate"].monthly] == [Decimal("0.08"), Decimal("0.1"), Decimal("0.12")]


def test_forecast_by_hand():
    result = forecast_from(HISTORY, months=2, window=3)
    apr, may = result.rows
    # April from 20896: expansion 20896 × 3696/36000 = 2145.32 -> 2145; contraction 20896 × 1128/36000
    # = 654.74 -> -655; churn 20896 × 1848/36000 = 1072.66 -> -1073; + 3000 new + 400 reactivation
    s = apr.step
    assert (s.period.label, s.opening_mrr, s.new_business, s.expansion, s.contraction, s.churn, s.reactivation) == (
        "2024-04", 20896, 3000, 2145, -655, -1073, 400)
    assert s.closing_mrr == 24713  # 20896 + 3000 + 2145 - 655 - 1073 + 400
    # May from 24713: 2537.20 -> 2537; 774.34 -> -774; 1268.60 -> -1269
    assert (may.step.expansion, may.step.contraction, may.step.churn) == (2537, -774, -1269)
    assert may.step.closing_mrr == 28607  # 24713 + 3000 + 2537 - 774 - 1269 + 400
    # Low: new 3000-2000 = 1000, reactivation 0, expansion (3696-720)/36000, contraction
    # (1128+360)/36000, churn (1848+360)/36000 (0.01 × 36000 = 360, 0.02 × 36000 = 720):
    # 20896 × 2976/36000 = 1727.40 -> 1727; × 1488/36000 = 863.70 -> 864; × 2208/36000 = 1281.62 -> 1282
    assert apr.low == 20896 + 1000 + 1727 - 864 - 1282 + 0  # 21477
    # High: new 5000, reactivation 800, expansion 4416/36000 -> 2563.24 -> 2563; contraction
    # 768/36000 -> 445.78 -> 446; churn 1488/36000 -> 863.70 -> 864
    assert apr.high == 20896 + 5000 + 2563 - 446 - 864 + 800  # 27949
    assert result.jump_off.label == "2024-03" and result.warnings == []


def test_forecast_json_shape():
    payload = forecast_json(forecast_from(HISTORY, 2, 3), "USD", SCOPE, 2, 3)
    apr = payload["rows"][0]
    assert (apr["period"], apr["opening_mrr"], apr["expansion"], apr["closing_mrr"], apr["low"], apr["high"],
            apr["fx_impact"]) == ("2024-04", "208.96", "21.45", "247.13", "214.77", "279.49", "0.00")
    rates = payload["rates"]
    # 3696/36000 = 0.102666… -> "0.1027"; 1128/36000 = 0.031333… -> "0.0313"
    assert (rates["expansion_rate"]["value"], rates["contraction_rate"]["value"], rates["churn_rate"]["spread"],
            rates["new_business"]["value"], rates["new_business"]["low"]) == ("0.1027", "0.0313", "0.0100", "30.00", "10.00")
    assert payload["method"]["window"] == ["2024-01", "2024-02", "2024-03"]
    assert payload["jump_off"] == "2024-03" and payload["history"][-1]["closing_mrr"] == "208.96"


def test_zero_opening_makes_rates_null_and_projects_them_as_zero():
    # A business that starts in January: January's opening is 0, so its monthly rates are null.
    history = [row("2024-01", 0, new=5000), row("2024-02", 5000, new=1000, churn=-500)]
    jan_only = forecast_from(history[:1], months=1, window=1)
    rates = jan_only.rates.rates
    assert [rates[n].value for n in ("expansion_rate", "contraction_rate", "churn_rate")] == [None, None, None]
    assert jan_only.rows[0].step.closing_mrr == 10000  # 5000 + 5000 new; null rates project as 0
    assert jan_only.rows[0].low is None and jan_only.rows[0].high is None  # one month: no sample sd
    assert len(jan_only.warnings) == 4  # three null rates and no band
    payload = forecast_json(jan_only, "USD", SCOPE, 1, 1)
    assert payload["rates"]["churn_rate"]["value"] is None and payload["rows"][0]["low"] is None

    both = forecast_from(history, months=1, window=2)
    churn = both.rates.rates["churn_rate"]
    # Σ opening = 0 + 5000; churn 500 / 5000 = 0.1; January's monthly value is null, not 0
    assert churn.value == Decimal("0.1") and churn.monthly == (("2024-01", None), ("2024-02", Decimal("0.1")))
    assert churn.spread is None  # one defined month
    # March from 5500: churn 550, new (5000 + 1000) / 2 = 3000 -> 5500 + 3000 - 550 = 7950
    assert both.rows[0].step.closing_mrr == 7950 and both.rows[0].low is None


def test_churn_never_takes_mrr_below_zero():
    from projections.analytics.forecast import project

    values = {"new_business": Decimal(0), "reactivation": Decimal(0), "expansion_rate": Decimal(0),
              "contraction_rate": Decimal("0.5"), "churn_rate": Decimal("0.75")}
    [step] = project(1000, values, [parse_label("2024-05")])
    assert (step.contraction, step.churn, step.closing_mrr) == (-500, -500, 0)


def test_backtest_by_hand():
    result = backtest_from(HISTORY, months=2, window=2)
    # One origin: February (window Jan–Feb), forecasting March only (no actual after March).
    [point] = result.points
    assert (point.origin.label, point.horizon, point.actual) == ("2024-02", 1, 20896)
    # Σ opening 21200; expansion 1920/21200, contraction 536/21200, churn 960/21200; new 2000,
    # reactivation 200. From 14800: 1340.38 -> 1340; 374.19 -> -374; 670.19 -> -670
    assert point.row.step.closing_mrr == 14800 + 2000 + 1340 - 374 - 670 + 200  # 17296
    assert point.error == 17296 - 20896
    assert point.pct_error == Decimal(-3600) / 20896
    [h1] = summary(result)
    assert (h1["horizon"], h1["forecasts"], h1["mape"], h1["bias"]) == (1, 1, Decimal(3600) / 20896, Decimal(-3600) / 20896)
    with pytest.raises(ValueError, match="at least 4 complete months"):
        backtest_from(HISTORY, months=1, window=3)


def test_backtest_errors_against_a_zero_actual_are_null():
    # Jan: 0 -> 1000 new; Feb: all of it churns; Mar: nothing. Window 1, one month ahead.
    # From Jan (new 1000 a month, Jan's opening 0 so the proportional rates are null -> 0):
    #   Feb = 1000 + 1000 = 2000 against an actual 0: error 2000, % error 2000 / 0 = null.
    # From Feb (churn 1000 / 1000 = 100 %, no new): Mar = 0 - 0 = 0 against 0: error 0, 0 / 0 = null.
    history = [row("2024-01", 0, new=1000), row("2024-02", 1000, churn=-1000), row("2024-03", 0)]
    result = backtest_from(history, months=1, window=1)
    assert [(p.origin.label, p.row.step.closing_mrr, p.actual, p.error, p.pct_error, p.within_band)
            for p in result.points] == [("2024-01", 2000, 0, 2000, None, None), ("2024-02", 0, 0, 0, None, None)]
    # MAPE and bias have no defined % error to average; one-month windows have no band (no sample
    # sd), so band coverage is 0 / 0: all null, never 0. The mean absolute error is defined: 1000.
    [h1] = summary(result)
    assert (h1["forecasts"], h1["mape"], h1["bias"], h1["mean_absolute_error"], h1["band_coverage"]) == (
        2, None, None, 1000, None)
