"""Charts: valid PNGs of a sensible size from bridge rows in the `--json` shape."""

from __future__ import annotations

import struct

import pytest

from projections.charts import bridge_waterfall, mrr_over_time


def _rows(months: int = 14) -> list[dict[str, str]]:
    rows, closing = [], 0
    for i in range(months):
        movements = {"new_business": 1000 + 150 * i, "expansion": 90 * i, "reactivation": 20 * (i % 3),
                     "contraction": -40 * i, "churn": -70 * i, "fx_impact": (-1) ** i * 15}
        opening, closing = closing, closing + sum(movements.values())
        rows.append({"period": f"{2023 + i // 12}-{i % 12 + 1:02d}", "opening_mrr": f"{opening}.00",
                     **{k: f"{v}.25" if v else "0.00" for k, v in movements.items()},
                     "closing_mrr": f"{closing}.50"})
    return rows


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("chart", [bridge_waterfall, mrr_over_time])
def test_chart_is_a_readable_png(tmp_path, chart):
    path = chart(_rows(), "EUR", tmp_path / "sub" / "chart.png")
    data = path.read_bytes()
    width, height = _png_size(data)
    assert 800 <= width <= 2000 and 400 <= height <= 1200
    assert 20_000 < len(data) < 1_000_000  # drawn, not blank


def test_charts_survive_an_empty_or_single_period(tmp_path):
    for rows in ([], _rows(1)):
        for chart in (bridge_waterfall, mrr_over_time):
            assert _png_size(chart(rows, "JPY", tmp_path / "c.png").read_bytes())[0] > 0
