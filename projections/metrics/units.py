"""The Prometheus boundary: integer minor units become float major units here, and only here.

Everything upstream is exact (int minor units, Decimal ratios) and computed by the report
queries. Prometheus samples are float64, so the conversion is: round an exact average half up to
a whole minor unit (as the reports do), format it exactly in major units (`ledger.money`), then
parse that decimal string as a float. The float is the nearest double to the report's decimal
string, so `float(report_json["mrr"]) == sample` holds exactly (to the cent and beyond).
"""

from __future__ import annotations

from decimal import Decimal

from projections.queries.money import format_major


def major(minor: int | Decimal | None, currency: str) -> float | None:
    """Minor units (or an exact Decimal average of them) as float major units; None stays None."""
    text = format_major(minor, currency)
    return None if text is None else float(text)


def fraction(value: Decimal | None) -> float | None:
    """An exact ratio as a float fraction (0.05 = 5 %); None (undefined) stays None."""
    return None if value is None else float(value)
