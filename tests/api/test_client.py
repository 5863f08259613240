"""`ledger.client.LedgerClient`: typed builders, publishing over HTTP (the real app through
Litestar's test client) and straight to a writer (an embedded ledger in tmp)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ledger.client import LedgerClient, PublishError, discount, item, terms
from ledger.embedded import EmbeddedLedger
from ledger.events import EVENT_TYPES, FxRatePublished, SubscriptionStarted, event_type
from ledger.validation import EventValidationError
from tests.api.support import TOKEN, client, embedded_app, stored_ids

AT = "2024-03-01T00:00:00Z"
PRO = terms("active", "USD", [item("pro", 10_000), item("seat", 1_500, quantity=3)],
            discount=discount("percent", "12.5", "forever", code="LAUNCH"),
            current_period_start=AT)


def every_event(ledger: LedgerClient) -> list[Any]:
    """One event of every type, through the typed helpers."""
    sub = {"customer_id": "cus-1", "subscription_id": "sub-1", "occurred_at": AT}
    return [
        ledger.customer_attributes_set(customer_id="cus-1", attributes={"plan": "pro"},
                                       event_id="e-attr", occurred_at=AT),
        ledger.subscription_started(terms=PRO, event_id="e-start", **sub),
        ledger.subscription_updated(terms=terms("past_due", "USD", [item("pro", 10_000)]),
                                    event_id="e-upd", **sub),
        ledger.subscription_renewed(terms=PRO, event_id="e-ren", **sub),
        ledger.cancellation_scheduled(cancel_at="2024-04-01T00:00:00Z", event_id="e-sched", **sub),
        ledger.cancellation_withdrawn(event_id="e-wd", **sub),
        ledger.invoice_payment_failed(invoice_id="in-1", amount_due=10_000, currency="USD",
                                      event_id="e-fail", **sub),
        ledger.invoice_paid(invoice_id="in-1", amount_paid=10_000, currency="USD",
                            event_id="e-paid", **sub),
        ledger.refund_issued(customer_id="cus-1", invoice_id="in-1", amount=500, currency="USD",
                             event_id="e-ref", occurred_at=AT),
        ledger.subscription_canceled(event_id="e-cancel", **sub),
        ledger.fx_rate_published(base="EUR", quote="USD", rate="1.0850",
                                 effective_date=dt.date(2024, 3, 1), event_id="e-fx",
                                 occurred_at=AT),
        ledger.acquisition_cost_recorded(amount=50_000, currency="USD", period="2024-03",
                                         channel="ads", event_id="e-cac", occurred_at=AT),
    ]


def offline() -> LedgerClient:
    return LedgerClient.writer(None, source="billing")  # type: ignore[arg-type]


def test_a_helper_for_every_event_type() -> None:
    events = every_event(offline())
    assert sorted(event_type(e) for e in events) == sorted(EVENT_TYPES)
    started = events[1]
    assert isinstance(started, SubscriptionStarted)
    assert started.source == "billing"
    assert started.occurred_at == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert started.terms.discount is not None and str(started.terms.discount.value) == "12.5"
    assert [i.quantity for i in started.terms.items] == [1, 3]


def test_defaults_random_id_and_the_clock() -> None:
    fixed = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    ledger = LedgerClient(None, clock=lambda: fixed)  # type: ignore[arg-type]
    a = ledger.fx_rate_published(base="EUR", quote="USD", rate=1.1, effective_date="2024-05-01",
                                 source="ecb")
    b = ledger.fx_rate_published(base="EUR", quote="USD", rate=1.1, effective_date="2024-05-01")
    assert isinstance(a, FxRatePublished) and a.occurred_at == fixed and a.source == "ecb"
    assert a.event_id != b.event_id and b.source is None


@pytest.mark.parametrize(("build", "path"), [
    (lambda c: c.subscription_started(customer_id="c", subscription_id="s",
                                      terms=terms("active", "USD", [item("p", -1)])),
     "terms.items[0].unit_amount"),
    (lambda c: c.subscription_started(customer_id="c", subscription_id="s",
                                      terms=terms("active", "XYZ", [item("p", 1)])),
     "terms.currency"),
    (lambda c: c.subscription_updated(customer_id="c", subscription_id="s",
                                      terms=terms("active", "USD", [])), "terms.items"),
    (lambda c: c.invoice_paid(customer_id="c", subscription_id="s", invoice_id="",
                              amount_paid=1, currency="USD"), "invoice_id"),
    (lambda c: c.acquisition_cost_recorded(amount=1, currency="USD", period="2024-13",
                                           channel="x"), "period"),
    (lambda c: c.subscription_canceled(customer_id="c", subscription_id="s",
                                       occurred_at="2999-01-01T00:00:00Z"), "occurred_at"),
])
def test_invalid_fields_raise_with_their_path(build: Any, path: str) -> None:
    with pytest.raises(EventValidationError) as exc:
        build(offline())
    assert exc.value.path == path


# --- writer mode --------------------------------------------------------------------------------


async def test_writer_mode_appends_reports_duplicates_and_conflicts(tmp_path: Path) -> None:
    async with EmbeddedLedger(tmp_path / "ledger.sqlite") as writer:
        ledger = LedgerClient.writer(writer, source="billing")
        events = every_event(ledger)
        first = await ledger.publish(events)
        again = await ledger.publish(events[0])
        changed = ledger.invoice_paid(customer_id="cus-1", subscription_id="sub-1",
                                      invoice_id="in-1", amount_paid=1, currency="USD",
                                      event_id="e-paid", occurred_at=AT)
        with pytest.raises(PublishError) as exc:
            await ledger.publish([events[1], changed])
        await ledger.close()  # does not close the caller's writer
        assert (await writer.end_offsets())
    assert [p.status for p in first] == ["accepted"] * len(events)
    assert [(p.event_id, p.status) for p in again] == [("e-attr", "duplicate")]
    [rejected] = exc.value.rejected
    assert (rejected.event_id, rejected.path) == ("e-paid", "event_id")
    assert rejected.reason.startswith("conflict:")
    assert [p.status for p in exc.value.published] == ["duplicate"]


async def test_writer_mode_refuses_an_invalid_struct_before_appending(tmp_path: Path) -> None:
    async with EmbeddedLedger(tmp_path / "ledger.sqlite") as writer:
        bad = FxRatePublished(event_id="fx", occurred_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                              base="EUR", quote="XYZ", rate=1, effective_date=dt.date(2024, 1, 1))  # type: ignore[arg-type]
        good = every_event(offline())[0]
        with pytest.raises(PublishError) as exc:
            await LedgerClient.writer(writer).publish([good, bad])
    assert [(r.event_id, r.path) for r in exc.value.rejected] == [("fx", "quote")]
    assert await stored_ids(tmp_path / "ledger.sqlite") == []


# --- HTTP mode (the real app; `tests/api/test_api_stack.py` covers a real server) --------------


@pytest.fixture
async def http_ledger(ledger_path: Path) -> AsyncIterator[LedgerClient]:
    async with client(embedded_app(ledger_path)) as http:
        async with LedgerClient.http(str(http.base_url), TOKEN, client=http,
                                     source="billing") as ledger:
            yield ledger


async def test_http_mode_publishes_and_reports_duplicates(
    http_ledger: LedgerClient, ledger_path: Path
) -> None:
    events = every_event(http_ledger)
    first = await http_ledger.publish(events)
    again = await http_ledger.publish(events[:2])
    assert [p.status for p in first] == ["accepted"] * len(events)
    assert [p.status for p in again] == ["duplicate", "duplicate"]
    assert await stored_ids(ledger_path) == [e.event_id for e in events]


async def test_http_mode_raises_with_path_and_reason_and_appends_nothing(
    http_ledger: LedgerClient, ledger_path: Path
) -> None:
    good = every_event(http_ledger)[0]
    bad = FxRatePublished(event_id="fx", occurred_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                          base="EUR", quote="XYZ", rate=1, effective_date=dt.date(2024, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(PublishError) as exc:
        await http_ledger.publish([good, bad])
    assert exc.value.status_code == 422
    assert [(r.event_id, r.path) for r in exc.value.rejected if r.path] == [("fx", "quote")]
    assert "fx: quote: unknown currency 'XYZ'" in str(exc.value)
    assert await stored_ids(ledger_path) == []


async def test_http_mode_splits_large_batches(http_ledger: LedgerClient, ledger_path: Path) -> None:
    events = [http_ledger.fx_rate_published(base="EUR", quote="USD", rate="1.1",
                                            effective_date="2024-03-01", event_id=f"fx-{n}",
                                            occurred_at=AT) for n in range(1001)]
    published = await http_ledger.publish(events)
    assert len(published) == 1001 and {p.status for p in published} == {"accepted"}
    assert len(await stored_ids(ledger_path)) == 1001


async def test_http_mode_wrong_token_is_a_publish_error(ledger_path: Path) -> None:
    async with client(embedded_app(ledger_path)) as http:
        ledger = LedgerClient.http(str(http.base_url), "wrong", client=http)
        with pytest.raises(PublishError) as exc:
            await ledger.publish(every_event(ledger)[0])
    assert exc.value.status_code == 401 and "Unauthorized" in str(exc.value)
