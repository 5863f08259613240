"""Price-change simulation: the customers' own events, repriced, through the pure MRR engine.

Not a spreadsheet formula: every customer with an item priced `plan` has its history read from
the projection store's `events` table (as known at `known_at`), transformed, and run through
`compute_timeline` with the stored settings and FX rates; the result is compared with the stored
projection month by month and by segment (plan, currency, billing interval). Customers without
that price are unchanged by construction and are not recomputed. The exact rules (documented in
docs/analytics.md, section Price-change simulation, with a worked example, and returned as
`assumptions`):

- Price: every item whose `price_id` is `plan` gets `unit_amount × (1 + change)`, rounded half-even
  to the minor unit (per unit price, before quantity and discounts).
- From `start` on: terms events (started/updated/renewed) occurring at or after `start` carry the
  new price; every subscription whose terms were set before `start` gets a synthetic
  `subscription.updated` at `start` with its repriced terms (its status kept, or `past_due` when
  the subscription is past due or not live then, so the engine's past-due and auto-churn state is
  untouched). A change that rounds to no change injects nothing, so +0 % is the projection itself.
- Churn uplift U: each month from `start` (at `start`, then at the 1st of each following month),
  `floor(U × n + carry)` of the n repriced subscriptions still paying just before that instant are
  canceled at it (a synthetic `subscription.canceled`); the fraction left over carries to the next
  month. Subscriptions are taken in a fixed pseudo-random order: SHA-256 of the subscription id.
  "Repriced subscriptions" are those with MRR > 0 on that price just before `start`.
- Nothing else changes: no other churn, new business or FX than the events known. Months after
  the last event show the current book rolled forward (with known scheduled cancellations).

The code is split by job: `simulate_scenario` (the `PriceChange` and its assumptions),
`simulate_events` (rewriting a customer's events), `simulate_uplift` (the churn uplift's
cancellations), `simulate_store` (reading the store), `simulate_compare` (`simulate`: the comparison)
and `simulate_report` (its result and JSON); this module re-exports their public names, so
`projections.analytics.simulate` stays the entry point.
"""

from __future__ import annotations

from projections.analytics.simulate_compare import SEGMENTS, simulate
from projections.analytics.simulate_events import reprice, simulated_events
from projections.analytics.simulate_report import MonthImpact, Simulation, simulation_json
from projections.analytics.simulate_scenario import PriceChange, parse_percent
from projections.analytics.simulate_store import customers_with_price, load_histories, stored_settings
from projections.analytics.simulate_uplift import uplift_cancellations

__all__ = [
    "SEGMENTS", "MonthImpact", "PriceChange", "Simulation", "customers_with_price", "load_histories",
    "parse_percent", "reprice", "simulate", "simulated_events", "simulation_json", "stored_settings",
    "uplift_cancellations",
]
