"""The demo business's catalogue: plans and add-ons per currency, coupons, markets, channels.

All prices are integer minor units per unit per billing interval. Annual prices are ten months
of the monthly price (two months free), the usual SaaS annual discount.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from ledger.events import Discount

CURRENCIES = ("USD", "EUR", "GBP")
MONTHLY, ANNUAL = "month", "year"


class Plan(NamedTuple):
    """A sellable product; `tier` orders the base plans (None for add-ons and side products)."""

    name: str
    tier: int | None
    per_seat: bool
    monthly: dict[str, int]

    def unit_amount(self, currency: str, interval: str) -> int:
        monthly = self.monthly[currency]
        return monthly if interval == MONTHLY else monthly * 10

    def price_id(self, currency: str, interval: str) -> str:
        cadence = "monthly" if interval == MONTHLY else "annual"
        return f"{self.name}-{cadence}-{currency.lower()}"


BASE_PLANS = (
    Plan("starter", 0, False, {"USD": 2900, "EUR": 2700, "GBP": 2300}),
    Plan("team", 1, True, {"USD": 1500, "EUR": 1400, "GBP": 1200}),
    Plan("business", 2, True, {"USD": 4500, "EUR": 4200, "GBP": 3600}),
)
ADDONS = (
    Plan("sso", None, False, {"USD": 9900, "EUR": 9200, "GBP": 7900}),
    Plan("storage", None, True, {"USD": 2000, "EUR": 1800, "GBP": 1600}),
)
ANALYTICS = Plan("analytics", None, True, {"USD": 4900, "EUR": 4500, "GBP": 3900})
"""A separate product some customers buy as a second, concurrent subscription."""

COUPONS_MONTHLY = (
    Discount(kind="percent", value=Decimal(20), duration="repeating", code="WELCOME20",
             duration_in_intervals=3),
    Discount(kind="percent", value=Decimal(10), duration="forever", code="NONPROFIT10"),
    Discount(kind="percent", value=Decimal(50), duration="once", code="HALFOFF"),
    Discount(kind="amount", value=Decimal(500), duration="forever", code="PARTNER5"),
    Discount(kind="amount", value=Decimal(1000), duration="once", code="TENOFF"),
)
COUPONS_ANNUAL = (
    Discount(kind="percent", value=Decimal("12.5"), duration="forever", code="LOYAL12_5"),
    Discount(kind="percent", value=Decimal(15), duration="once", code="FIRSTYEAR15"),
)

# (country, currency, weight)
MARKETS = (
    ("US", "USD", 40), ("CA", "USD", 5), ("AU", "USD", 4), ("DE", "EUR", 12),
    ("FR", "EUR", 8), ("NL", "EUR", 5), ("ES", "EUR", 4), ("GB", "GBP", 14),
)
SEGMENTS = (("smb", 62), ("mid_market", 29), ("enterprise", 9))
CHANNELS = ("organic", "paid_search", "paid_social", "partner", "outbound")
CHANNEL_WEIGHTS = {
    "smb": (40, 30, 22, 8, 0),
    "mid_market": (30, 25, 10, 20, 15),
    "enterprise": (15, 5, 0, 30, 50),
}
CAC_PER_CUSTOMER_USD = {
    "organic": 80_000, "paid_search": 400_000, "paid_social": 300_000, "partner": 500_000,
    "outbound": 1_500_000,
}
"""Acquisition spend per signup (USD cents), sized for a CAC payback of about a year, typical of
SMB/mid-market SaaS; organic (content, SEO) also has a fixed monthly cost."""
ORGANIC_MONTHLY_COST_USD = 500_000

# Starting FX rates (1 base = rate USD) and the monthly volatility of their random walk.
FX_START = {"EUR": 1.0850, "GBP": 1.2450}
FX_MONTHLY_SIGMA = 0.012
