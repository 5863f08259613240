"""Analytics charts: valid PNGs of a sensible size, also with nulls, a fully churned cohort, one
period or no data (nulls are gaps, never 0)."""

from __future__ import annotations

import struct

import pytest

from projections.analytics.charts import cohort_heatmap, segment_mrr, unit_economics_chart
from projections.charts import mrr_and_customers


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def envelope(rows, **extra):
    return {"currency": "EUR", "period": "month", "as_of": "2024-12-31T00:00:00+00:00",
            "known_at": "2024-12-31T00:00:00+00:00", "rows": rows, **extra}


def cohorts_payload(n: int = 12):
    rows = []
    for c in range(n):
        for age in range(n - c):
            churned = c == 2  # a fully churned cohort: 0, drawn as 0 (not a gap)
            logo = 0 if churned else max(0.0, 1 - 0.04 * age)
            rows.append({"cohort": f"2024-{c + 1:02d}", "cohort_customers": 10 + c, "starting_mrr": "1000.00",
                         "periods_since_start": age, "period": f"2024-{c + age + 1:02d}", "customers": 0,
                         "mrr": "0.00", "logo_retention": f"{logo:.4f}",
                         "revenue_retention": f"{0 if churned else 1 + 0.01 * age:.4f}", "complete": c + age < n - 1})
    return envelope(rows, average=[])


def segments_payload(periods: int = 12, names=("pro", "basic", "(other)")):
    rows = [{"period": f"2024-{p + 1:02d}", "segment": s, "closing_mrr": f"{(i + 1) * 1000 + 50 * p}.00",
             "customers": 10 * (i + 1) + p} for p in range(periods) for i, s in enumerate(names)]
    return envelope(rows, dimension="plan", segments=list(names))


def unit_payload(periods: int = 12):
    rows = [{"period": f"2024-{p + 1:02d}", "ltv": None if p == 3 else f"{5000 + 100 * p}.00",
             "cac": None if p == 5 else "1500.00", "arpa": "100.00", "ltv_cac": None if p in (3, 5) else "3.3000",
             "cac_payback_months": None if p == 5 else "12.5000", "customer_retention_rate": "0.9700",
             "customer_churn_rate": "0.0300", "mrr_growth_rate": f"{0.02 - 0.005 * p:.4f}"} for p in range(periods)]
    return envelope(rows, ltv_window=3)


def kpi_rows(periods: int = 12):
    return [{"period": f"2024-{p + 1:02d}", "mrr": f"{10000 + 700 * p}.00", "customers": 40 + 3 * p,
             "new_customers": 5, "reactivated_customers": 1, "churned_customers": 3} for p in range(periods)]


@pytest.mark.parametrize("draw", [
    lambda path: cohort_heatmap(cohorts_payload(), path),
    lambda path: segment_mrr(segments_payload(), path),
    lambda path: unit_economics_chart(unit_payload(), path),
    lambda path: mrr_and_customers(kpi_rows(), "USD", path),
], ids=["cohorts", "segments", "unit-economics", "mrr-and-customers"])
def test_chart_is_a_readable_png(tmp_path, draw):
    path = draw(tmp_path / "sub" / "chart.png")
    data = path.read_bytes()
    width, height = png_size(data)
    assert 800 <= width <= 2000 and 500 <= height <= 2000, (width, height)
    assert 30_000 < len(data) < 1_500_000  # drawn, not blank


def test_charts_survive_no_data_and_one_period(tmp_path):
    for payload in (cohorts_payload(0), cohorts_payload(1)):
        assert png_size(cohort_heatmap(payload, tmp_path / "c.png").read_bytes())[0] > 0
    for payload in (segments_payload(0, ()), segments_payload(1)):
        assert png_size(segment_mrr(payload, tmp_path / "s.png").read_bytes())[0] > 0
    for payload in (unit_payload(0), unit_payload(1)):
        assert png_size(unit_economics_chart(payload, tmp_path / "u.png").read_bytes())[0] > 0
    for rows in ([], kpi_rows(1)):
        assert png_size(mrr_and_customers(rows, "JPY", tmp_path / "m.png").read_bytes())[0] > 0
