"""`LedgerClient`: build ledger events with typed helpers and publish them.

    async with LedgerClient.http("http://127.0.0.1:8080", token="s3cret") as ledger:
        event = ledger.subscription_started(
            event_id="billing-42", customer_id="cus-1", subscription_id="sub-1",
            occurred_at="2024-03-01T00:00:00Z",
            terms=terms("active", "USD", [item("pro", 10_000)]),
        )
        await ledger.publish([event])

Every helper returns the event's Struct (`ledger.events`), validated by `ledger.validation`
exactly as the API and `mrr ingest` validate: a bad field raises `EventValidationError` with its
`path` (`terms.items[0].unit_amount`) before anything is sent. `publish` sends through `POST
/v1/events` (`LedgerClient.http`, batches of up to 1,000, each all-or-nothing) or appends to a
`LedgerWriter` (`LedgerClient.writer`); rejected events raise `PublishError` listing each one's
path and reason. Guide: docs/client.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Protocol

import msgspec

from ledger.events import Discount, EventBase, Item, Terms, encode_event
from ledger.ports import LedgerWriter
from ledger.validation import DEFAULT_HORIZON, decode_event, validate_batch

__all__ = ["LedgerClient", "PublishError", "Published", "Rejected", "discount", "item", "terms"]

MAX_BATCH = 1000
"""Events per `POST /v1/events` (the API's limit)."""

When = dt.datetime | str
Day = dt.date | str
Amount = Decimal | str | int


class Published(msgspec.Struct, frozen=True):
    """Outcome of one published event: `accepted` (appended) or `duplicate` (already there)."""

    event_id: str
    status: Literal["accepted", "duplicate"]


class Rejected(msgspec.Struct, frozen=True):
    """One event the ledger refused: `path` names the field (`event_id` for a conflict)."""

    event_id: str | None
    path: str | None
    reason: str


class PublishError(Exception):
    """Nothing (all-or-nothing batch) or not everything was published.

    `rejected` lists the refused events with path and reason; `published` what went through
    before (earlier batches, or the appended part of a batch with conflicts); `status_code` is
    the HTTP status (None in writer mode) and `retry_after` the seconds of a 429/503."""

    def __init__(self, message: str, *, rejected: Sequence[Rejected] = (),
                 published: Sequence[Published] = (), status_code: int | None = None,
                 retry_after: int | None = None) -> None:
        details = "; ".join(f"{r.event_id}: {r.path + ': ' if r.path else ''}{r.reason}"
                            for r in rejected[:5])
        super().__init__(f"{message}: {details}" if details else message)
        self.rejected = list(rejected)
        self.published = list(published)
        self.status_code = status_code
        self.retry_after = retry_after


def item(price_id: str, unit_amount: int, quantity: int = 1, interval: str = "month",
         interval_count: int = 1, usage_type: str = "licensed") -> Item:
    """One price of a subscription: `unit_amount` minor units per unit per interval."""
    return Item(price_id, unit_amount, quantity, interval, interval_count, usage_type)  # type: ignore[arg-type]


def discount(kind: str, value: Amount, duration: str, *, code: str | None = None,
             duration_in_intervals: int | None = None) -> Discount:
    """A coupon: `kind` `percent` (value in (0, 100]) or `amount` (minor units per invoice)."""
    return Discount(kind, Decimal(str(value)), duration, code, duration_in_intervals)  # type: ignore[arg-type]


def terms(status: str, currency: str, items: Sequence[Item], *, discount: Discount | None = None,
          current_period_start: When | None = None, current_period_end: When | None = None,
          trial_end: When | None = None) -> Terms:
    """The full state of a subscription (validated with the event that carries it)."""
    return Terms(status, currency, list(items), discount,  # type: ignore[arg-type]
                 current_period_start, current_period_end, trial_end)  # type: ignore[arg-type]


class _Publisher(Protocol):
    async def publish(self, events: Sequence[EventBase]) -> list[Published]: ...

    async def close(self) -> None: ...


class LedgerClient:
    """Builds validated events and publishes them; see the module docstring."""

    def __init__(self, publisher: _Publisher, *, source: str | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 horizon: dt.timedelta = DEFAULT_HORIZON) -> None:
        """Prefer `LedgerClient.http` / `LedgerClient.writer`. `source` is stamped on every
        event unless given per event; `clock` is the default `occurred_at` and the validation
        clock; events further than `horizon` in the future are refused (as the API does)."""
        self._publisher = publisher
        self.source = source
        self._clock = clock
        self._horizon = horizon

    @classmethod
    def http(cls, base_url: str, token: str, *, client: Any = None, timeout: float = 30.0,
             source: str | None = None) -> LedgerClient:
        """Publish through `POST {base_url}/v1/events` with `Authorization: Bearer {token}`.
        `client` may be an `httpx.AsyncClient` to use (not closed by `close`)."""
        return cls(_HttpPublisher(base_url, token, client, timeout), source=source)

    @classmethod
    def writer(cls, writer: LedgerWriter, *, source: str | None = None) -> LedgerClient:
        """Publish by appending to `writer` (embedded or Kafka ledger; not closed by `close`)."""
        return cls(_WriterPublisher(writer), source=source)

    async def __aenter__(self) -> LedgerClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connection pool this client opened (nothing in writer mode)."""
        await self._publisher.close()

    async def publish(self, events: EventBase | Sequence[EventBase]) -> list[Published]:
        """Publish `events` in order; one `Published` per event. Raises `PublishError`."""
        batch = [events] if isinstance(events, EventBase) else list(events)
        return await self._publisher.publish(batch) if batch else []

    # --- event builders (one per type of ledger/events.py) ------------------------------------

    def event(self, type: str, *, event_id: str | None = None, occurred_at: When | None = None,
              source: str | None = None, **fields: Any) -> EventBase:
        """Any event type by its tag (`subscription.started`, …), validated. `event_id` defaults
        to a random UUID: pass your own stable id so a re-sent event is a duplicate."""
        raw = {
            "type": type,
            "event_id": event_id or str(uuid.uuid4()),
            "occurred_at": occurred_at if occurred_at is not None else self._clock(),
            **({"source": source or self.source} if source or self.source else {}),
            **{name: value for name, value in fields.items() if value is not None},
        }
        builtins = msgspec.to_builtins(raw, builtin_types=(Decimal,))
        return decode_event(builtins, now=self._clock(), horizon=self._horizon)

    def customer_attributes_set(self, *, customer_id: str, attributes: Mapping[str, str],
                                **envelope: Any) -> EventBase:
        """`customer.attributes_set`: segment attributes of a customer."""
        return self.event("customer.attributes_set", customer_id=customer_id,
                          attributes=dict(attributes), **envelope)

    def subscription_started(self, *, customer_id: str, subscription_id: str, terms: Terms,
                             **envelope: Any) -> EventBase:
        """`subscription.started` with its full `terms`."""
        return self.event("subscription.started", customer_id=customer_id,
                          subscription_id=subscription_id, terms=terms, **envelope)

    def subscription_updated(self, *, customer_id: str, subscription_id: str, terms: Terms,
                             **envelope: Any) -> EventBase:
        """`subscription.updated`: the new full `terms` (never a delta)."""
        return self.event("subscription.updated", customer_id=customer_id,
                          subscription_id=subscription_id, terms=terms, **envelope)

    def subscription_renewed(self, *, customer_id: str, subscription_id: str, terms: Terms,
                             **envelope: Any) -> EventBase:
        """`subscription.renewed`: a new billing period, with the full `terms`."""
        return self.event("subscription.renewed", customer_id=customer_id,
                          subscription_id=subscription_id, terms=terms, **envelope)

    def cancellation_scheduled(self, *, customer_id: str, subscription_id: str, cancel_at: When,
                               **envelope: Any) -> EventBase:
        """`subscription.cancellation_scheduled` for `cancel_at`."""
        return self.event("subscription.cancellation_scheduled", customer_id=customer_id,
                          subscription_id=subscription_id, cancel_at=cancel_at, **envelope)

    def cancellation_withdrawn(self, *, customer_id: str, subscription_id: str,
                               **envelope: Any) -> EventBase:
        """`subscription.cancellation_withdrawn`."""
        return self.event("subscription.cancellation_withdrawn", customer_id=customer_id,
                          subscription_id=subscription_id, **envelope)

    def subscription_canceled(self, *, customer_id: str, subscription_id: str,
                              **envelope: Any) -> EventBase:
        """`subscription.canceled`: the subscription ended at `occurred_at`."""
        return self.event("subscription.canceled", customer_id=customer_id,
                          subscription_id=subscription_id, **envelope)

    def invoice_paid(self, *, customer_id: str, subscription_id: str, invoice_id: str,
                     amount_paid: int, currency: str, **envelope: Any) -> EventBase:
        """`invoice.paid` (clears past due)."""
        return self.event("invoice.paid", customer_id=customer_id,
                          subscription_id=subscription_id, invoice_id=invoice_id,
                          amount_paid=amount_paid, currency=currency, **envelope)

    def invoice_payment_failed(self, *, customer_id: str, subscription_id: str, invoice_id: str,
                               amount_due: int, currency: str, **envelope: Any) -> EventBase:
        """`invoice.payment_failed`."""
        return self.event("invoice.payment_failed", customer_id=customer_id,
                          subscription_id=subscription_id, invoice_id=invoice_id,
                          amount_due=amount_due, currency=currency, **envelope)

    def refund_issued(self, *, customer_id: str, invoice_id: str, amount: int, currency: str,
                      **envelope: Any) -> EventBase:
        """`refund.issued` (no MRR effect)."""
        return self.event("refund.issued", customer_id=customer_id, invoice_id=invoice_id,
                          amount=amount, currency=currency, **envelope)

    def fx_rate_published(self, *, base: str, quote: str, rate: Amount, effective_date: Day,
                          **envelope: Any) -> EventBase:
        """`fx.rate_published`: 1 `base` = `rate` `quote` from `effective_date` on."""
        return self.event("fx.rate_published", base=base, quote=quote, rate=Decimal(str(rate)),
                          effective_date=effective_date, **envelope)

    def acquisition_cost_recorded(self, *, amount: int, currency: str, period: str, channel: str,
                                  **envelope: Any) -> EventBase:
        """`acquisition.cost_recorded`: spend of `period` (`YYYY-MM`) on `channel`."""
        return self.event("acquisition.cost_recorded", amount=amount, currency=currency,
                          period=period, channel=channel, **envelope)


class _HttpResult(msgspec.Struct):
    index: int
    event_id: str | None
    status: str
    path: str | None = None
    reason: str | None = None


class _HttpAnswer(msgspec.Struct):
    results: list[_HttpResult]


class _HttpPublisher:
    """`POST /v1/events` in batches of `MAX_BATCH`, each all-or-nothing."""

    def __init__(self, base_url: str, token: str, client: Any, timeout: float) -> None:
        import httpx

        self._owned = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._url = base_url.rstrip("/") + "/v1/events"
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def publish(self, events: Sequence[EventBase]) -> list[Published]:
        done: list[Published] = []
        for first in range(0, len(events), MAX_BATCH):
            body = b"[" + b",".join(encode_event(e) for e in events[first:first + MAX_BATCH]) + b"]"
            response = await self._client.post(self._url, content=body, headers=self._headers)
            if response.status_code in (200, 207, 409, 422):
                answer = msgspec.json.decode(response.content, type=_HttpAnswer)
                ok = [Published(r.event_id, r.status) for r in answer.results  # type: ignore[arg-type]
                      if r.status != "rejected" and r.event_id is not None]
                done += ok
                bad = [Rejected(r.event_id, r.path, r.reason or "rejected")
                       for r in answer.results if r.status == "rejected"]
                if bad:
                    raise PublishError(f"{len(bad)} event(s) rejected (HTTP {response.status_code})",
                                       rejected=bad, published=done,
                                       status_code=response.status_code)
                continue
            retry = response.headers.get("Retry-After")
            raise PublishError(f"HTTP {response.status_code}: {_detail(response)}", published=done,
                               status_code=response.status_code,
                               retry_after=int(retry) if retry and retry.isdigit() else None)
        return done

    async def close(self) -> None:
        if self._owned:
            await self._client.aclose()


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:200]


class _WriterPublisher:
    """Append to a `LedgerWriter` after re-validating (all-or-nothing per call)."""

    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer

    async def publish(self, events: Sequence[EventBase]) -> list[Published]:
        checked = validate_batch([encode_event(e) for e in events], now=dt.datetime.now(dt.UTC))
        if checked.errors:
            bad = [Rejected(events[i].event_id, exc.path, exc.reason) for i, exc in checked.errors]
            raise PublishError(f"{len(bad)} event(s) invalid; nothing appended", rejected=bad)
        results = await self._writer.append_many([event for _, event in checked.events])
        done = [Published(r.event_id, r.status) for r in results  # type: ignore[arg-type]
                if r.status != "conflict"]
        conflicts = [Rejected(r.event_id, "event_id", f"conflict: {r.reason or 'other body'}")
                     for r in results if r.status == "conflict"]
        if conflicts:
            raise PublishError(f"{len(conflicts)} event(s) conflict with stored ones",
                               rejected=conflicts, published=done)
        return done

    async def close(self) -> None:
        """Nothing: the writer belongs to the caller."""
