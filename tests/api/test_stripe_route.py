"""`POST /v1/webhooks/stripe`: signature, mapping errors, ignored types, replays, conflicts."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.adapters.test_stripe import FIXTURES, sign
from tests.api.support import AUTH, TOKEN, client, embedded_app, stored_ids

SECRET = "whsec_route_test_secret"
PATH = "/v1/webhooks/stripe"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def signed(event: dict[str, Any] | bytes, *, age: int = 0, secret: str = SECRET
           ) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery signed `age` seconds ago."""
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    return payload, {"Stripe-Signature": sign(payload, int(time.time()) - age, secret),
                     "Content-Type": "application/json"}


@contextmanager
def route_log() -> Iterator[list[logging.LogRecord]]:
    """The records the route's logger emits (a handler on the logger itself: Litestar's
    logging setup replaces the root handlers pytest's caplog relies on)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[assignment,method-assign]
    logger = logging.getLogger("ledger.api.stripe_route")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
async def stripe_http(ledger_path: Path) -> Any:
    async with client(embedded_app(ledger_path, stripe_webhook_secret=SECRET)) as http:
        yield http


async def deliver(http: AsyncTestClient, event: dict[str, Any] | bytes, **kw: Any) -> Any:
    body, headers = signed(event, **kw)
    return await http.post(PATH, content=body, headers=headers)


async def test_valid_webhook_appends_the_mapped_events(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    response = await deliver(stripe_http, fixture("subscription_updated_cancel_at_period_end"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "processed"
    assert (body["stripe_event_id"], body["stripe_event_type"]) == (
        "evt_1PqCancelScheduled", "customer.subscription.updated")
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 0)
    assert [r["event_id"] for r in body["results"]] == [
        "evt_1PqCancelScheduled", "evt_1PqCancelScheduled:2"]
    assert await stored_ids(ledger_path) == ["evt_1PqCancelScheduled", "evt_1PqCancelScheduled:2"]


async def test_no_bearer_token_needed_and_a_token_is_no_substitute_for_the_signature(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    payload = json.dumps(fixture("invoice_paid")).encode()
    unsigned = await stripe_http.post(PATH, content=payload, headers=AUTH)
    assert unsigned.status_code == 400
    assert await stored_ids(ledger_path) == []
    ok = await deliver(stripe_http, payload)
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


async def test_replayed_webhook_is_duplicate(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    event = fixture("subscription_created_multi_item_coupon")
    first = await deliver(stripe_http, event)
    again = await deliver(stripe_http, event, age=60)  # Stripe's retry: new signature, same body
    assert first.status_code == again.status_code == 200
    assert first.json()["accepted"] >= 1
    assert again.json()["accepted"] == 0
    assert again.json()["duplicate"] == first.json()["accepted"]
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
    assert len(await stored_ids(ledger_path)) == first.json()["accepted"]


@pytest.mark.parametrize("headers", [
    {},
    {"Stripe-Signature": "garbage"},
    {"Stripe-Signature": "t=123"},
])
async def test_missing_or_malformed_signature_is_400(
    stripe_http: AsyncTestClient, ledger_path: Path, headers: dict[str, str]
) -> None:
    response = await stripe_http.post(PATH, content=json.dumps(fixture("invoice_paid")),
                                      headers=headers)
    assert response.status_code == 400
    assert "invalid Stripe-Signature" in response.json()["detail"]
    assert await stored_ids(ledger_path) == []


async def test_wrong_secret_or_tampered_body_is_400(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    wrong = await deliver(stripe_http, fixture("invoice_paid"), secret="whsec_other")
    body, headers = signed(fixture("invoice_paid"))
    tampered = await stripe_http.post(PATH, content=body.replace(b"cus_", b"cus_X"),
                                      headers=headers)
    assert wrong.status_code == tampered.status_code == 400
    assert await stored_ids(ledger_path) == []


async def test_expired_signature_is_400(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    response = await deliver(stripe_http, fixture("invoice_paid"), age=301)
    assert response.status_code == 400
    assert "expired Stripe-Signature" in response.json()["detail"]
    assert await stored_ids(ledger_path) == []
    fresh = await deliver(stripe_http, fixture("invoice_paid"), age=200)
    assert fresh.status_code == 200


async def test_unknown_type_is_ignored_and_counted(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    event = {"id": "evt_customer_created", "object": "event", "type": "customer.created",
             "created": 1709251200, "data": {"object": {"id": "cus_1", "object": "customer"}}}
    first = await deliver(stripe_http, event)
    second = await deliver(stripe_http, {**event, "id": "evt_other"})
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "ignored"
    assert first.json()["reason"] == "event type not mapped"
    assert first.json()["results"] == []
    assert (first.json()["ignored_total"], second.json()["ignored_total"]) == (1, 2)
    assert await stored_ids(ledger_path) == []


async def test_mapped_type_with_nothing_for_the_ledger_is_ignored(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    event = fixture("subscription_created_trial")
    event["id"] = "evt_incomplete"
    event["data"]["object"]["status"] = "incomplete"
    response = await deliver(stripe_http, event)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert await stored_ids(ledger_path) == []


async def test_mapping_error_is_400_with_path_and_logged(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    event = fixture("subscription_created_trial")
    price = event["data"]["object"]["items"]["data"][0]["price"]
    price.update(unit_amount=None, unit_amount_decimal=None, billing_scheme="tiered")
    with route_log() as records:
        response = await deliver(stripe_http, event)
    assert response.status_code == 400
    body = response.json()
    assert body["path"] == "data.object.items.data[0].price.billing_scheme"
    assert body["reason"] and body["path"] in body["detail"]
    assert any("evt_1PqTrial0001" in r.getMessage() and r.levelno == logging.ERROR
               for r in records)
    assert await stored_ids(ledger_path) == []


async def test_signed_body_that_is_not_json_is_a_mapping_error(
    stripe_http: AsyncTestClient,
) -> None:
    response = await deliver(stripe_http, b"not json")
    assert response.status_code == 400
    assert response.json()["path"] == "body"


async def test_same_stripe_id_with_another_body_is_a_conflict(
    stripe_http: AsyncTestClient, ledger_path: Path
) -> None:
    event = fixture("invoice_paid")
    assert (await deliver(stripe_http, event)).status_code == 200
    event["data"]["object"]["amount_paid"] += 1
    response = await deliver(stripe_http, event)
    assert response.status_code == 409
    [result] = response.json()["results"]
    assert result["status"] == "rejected" and result["path"] == "event_id"
    assert result["reason"].startswith("conflict:")
    assert await stored_ids(ledger_path) == ["evt_1PqInvoicePaid"]


async def test_without_a_secret_the_route_answers_503(ledger_path: Path) -> None:
    with route_log() as records:
        async with client(embedded_app(ledger_path)) as http:
            response = await deliver(http, fixture("invoice_paid"))
    assert response.status_code == 503
    assert "MRR_STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
    assert any("MRR_STRIPE_WEBHOOK_SECRET" in r.getMessage() and r.levelno == logging.ERROR
               for r in records)
    assert await stored_ids(ledger_path) == []


async def test_openapi_documents_the_route_without_bearer_auth(
    stripe_http: AsyncTestClient,
) -> None:
    doc = (await stripe_http.get("/schema/openapi.json")).json()
    operation = doc["paths"][PATH]["post"]
    assert "security" not in operation
    assert set(operation["responses"]) >= {"200", "400", "503"}
    assert any(p["name"] == "Stripe-Signature" and p["in"] == "header"
               for p in operation["parameters"])
    assert TOKEN not in json.dumps(doc)


def test_settings_carry_the_secret_from_the_environment(tmp_path: Path) -> None:
    from streams.cli.serve import api_settings
    from streams.config import load_config

    config = load_config(environ={"MRR_STRIPE_WEBHOOK_SECRET": "whsec_x",
                                  "MRR_CONFIG": str(tmp_path / "absent.toml")})
    assert api_settings(config).stripe_webhook_secret == "whsec_x"
    assert load_config(environ={"MRR_CONFIG": str(tmp_path / "absent.toml")}
                       ).stripe_webhook_secret is None
