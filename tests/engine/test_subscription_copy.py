"""`_Subscription.copy` is spelled out field by field for speed: it must copy every field (the
engine may run compiled, so values must have the fields' types)."""

import datetime as dt
from fractions import Fraction

import msgspec

from ledger.events import Terms

from projections.engine.timeline import _SUBSCRIPTION_FIELDS, _Subscription
from tests.engine.builders import item, terms

AT = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
VALUES = {
    "subscription_id": "sub-x", "terms": msgspec.convert(terms(item(1000)), Terms), "list_mrr": 1234, "ended": True,
    "cancel_at": AT, "past_due_since": AT + dt.timedelta(days=1), "auto_churned": True,
    "rate": Fraction(3, 2), "emitted": (1, 2), "emitted_from": AT + dt.timedelta(days=2),
    "state": (5, Fraction(1, 3), 7), "plan": "pro", "interval": "month",
}


def test_copy_copies_every_field():
    assert set(VALUES) == set(_SUBSCRIPTION_FIELDS)  # a new field needs a value here
    sub = _Subscription("s")
    for name, value in VALUES.items():
        setattr(sub, name, value)
    other = sub.copy()
    assert other is not sub
    assert {name: getattr(other, name) for name in _SUBSCRIPTION_FIELDS} == VALUES
