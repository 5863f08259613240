"""`POST /v1/events` on the embedded ledger: validation, all-or-nothing, partial, duplicates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.api.support import AUTH, client, embedded_app, stored_ids
from tests.ledger.factory import fx, invoice_paid, started, with_


async def post(http: AsyncTestClient, body: Any, *, partial: bool | None = None) -> Any:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    params = {} if partial is None else {"partial": str(partial).lower()}
    return await http.post("/v1/events", content=content, headers=AUTH, params=params)


async def test_one_event_is_accepted_and_stored(http: AsyncTestClient, ledger_path: Path) -> None:
    response = await post(http, started("a"))
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1, "duplicate": 0, "rejected": 0,
        "results": [{"index": 0, "event_id": "a", "status": "accepted"}],
    }
    assert await stored_ids(ledger_path) == ["a"]


async def test_a_batch_is_stored_in_order(http: AsyncTestClient, ledger_path: Path) -> None:
    batch = [started("a"), fx("b"), invoice_paid("c")]
    response = await post(http, batch)
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3
    assert await stored_ids(ledger_path) == ["a", "b", "c"]


async def test_a_resent_event_is_a_duplicate(http: AsyncTestClient, ledger_path: Path) -> None:
    assert (await post(http, started("a"))).status_code == 200
    response = await post(http, [started("a"), started("b", customer_id="cus-2")])
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicate"]) == (1, 1)
    assert body["results"][0] == {"index": 0, "event_id": "a", "status": "duplicate"}
    assert await stored_ids(ledger_path) == ["a", "b"]


async def test_same_id_other_body_is_a_rejected_conflict(
    http: AsyncTestClient, ledger_path: Path
) -> None:
    await post(http, started("a"))
    response = await post(http, started("a", customer_id="cus-other"))
    assert response.status_code == 409
    (result,) = response.json()["results"]
    assert (result["status"], result["path"]) == ("rejected", "event_id")
    assert result["reason"].startswith("conflict: already recorded at offset 0")
    assert "customer_id" in result["reason"]
    assert await stored_ids(ledger_path) == ["a"]


async def test_a_conflict_does_not_stop_the_rest_of_a_batch(
    http: AsyncTestClient, ledger_path: Path
) -> None:
    await post(http, started("a"))
    response = await post(http, [started("a", source="elsewhere"), started("b")])
    assert response.status_code == 207
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "accepted"]
    assert await stored_ids(ledger_path) == ["a", "b"]


BAD_EVENTS = [
    (with_(started(), "terms.currency", "XYZ"), "terms.currency", "unknown currency 'XYZ'"),
    (with_(started(), "terms.currency", "usd"), "terms.currency", "upper-case"),
    (with_(started(), "terms.items.0.unit_amount", -1), "terms.items[0].unit_amount", ">= 0"),
    (with_(started(), "terms.items.0.interval", "fortnight"), "terms.items[0].interval",
     "must be one of"),
    (with_(started(), "terms.items", []), "terms.items", "at least 1 item"),
    (with_(started(), "terms.status", 3), "terms.status", "expected"),
    (with_(started(), "occurred_at", "yesterday"), "occurred_at", "RFC 3339"),
    (with_(started(), "occurred_at", "2024-03-01T00:00:00"), "occurred_at", "UTC offset"),
    (with_(started(), "occurred_at", "2999-01-01T00:00:00Z"), "occurred_at", "in the future"),
    (with_(started(), "event_id", ""), "event_id", "at least 1 character"),
    (with_(started(), "surprise", 1), "surprise", "unknown field"),
    ({k: v for k, v in started().items() if k != "customer_id"}, "customer_id", "is required"),
    ({k: v for k, v in started().items() if k != "type"}, "type", "is required"),
    (with_(started(), "type", "subscription.exploded"), "type", "unknown event type"),
    (with_(started(), "schema_version", 99), "schema_version", ""),
    (with_(fx(), "rate", "-1"), "rate", "> 0"),
    (with_(fx(), "quote", "EUR"), "quote", "must differ from base"),
    (with_(invoice_paid(), "amount_paid", 2**60), "amount_paid", "<="),
]


@pytest.mark.parametrize(("event", "path", "reason"), BAD_EVENTS,
                         ids=[f"{p}:{r or 'any'}" for _, p, r in BAD_EVENTS])
async def test_every_validation_failure_is_422_with_the_field_path(
    http: AsyncTestClient, ledger_path: Path, event: dict[str, Any], path: str, reason: str
) -> None:
    response = await post(http, event)
    assert response.status_code == 422
    (result,) = response.json()["results"]
    assert result["status"] == "rejected"
    assert result["path"] == path
    assert reason in result["reason"]
    assert result["event_id"] == event.get("event_id")
    assert await stored_ids(ledger_path) == []  # nothing reached the ledger


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"", "is empty"), (b"{", "malformed JSON"), (b'"an event"', "expected a JSON object"),
     (b"\xff{}", "malformed JSON")],
)
async def test_a_body_that_is_not_an_event_is_422_at_path_body(
    http: AsyncTestClient, ledger_path: Path, body: bytes, reason: str
) -> None:
    response = await post(http, body)
    assert response.status_code == 422
    (result,) = response.json()["results"]
    assert (result["path"], result["event_id"]) == ("body", None)
    assert reason in result["reason"]
    assert await stored_ids(ledger_path) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"[", "malformed JSON array"), (b"[{}, ", "malformed JSON array"),
     (b"[]", "empty batch")],
)
async def test_an_unreadable_or_empty_batch_is_400(
    http: AsyncTestClient, ledger_path: Path, body: bytes, reason: str
) -> None:
    response = await post(http, body)
    assert response.status_code == 400
    error = response.json()
    assert error["path"] == "body" and reason in error["reason"]
    assert await stored_ids(ledger_path) == []


async def test_a_batch_is_all_or_nothing(http: AsyncTestClient, ledger_path: Path) -> None:
    batch = [started("a"), with_(started("b"), "terms.currency", "XYZ"), started("c")]
    response = await post(http, batch)
    assert response.status_code == 422
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (0, 3)
    first, bad, last = body["results"]
    assert bad == {"index": 1, "event_id": "b", "status": "rejected",
                   "path": "terms.currency", "reason": "unknown currency 'XYZ'"}
    for valid in (first, last):
        assert valid["status"] == "rejected" and "path" not in valid
        assert "all-or-nothing" in valid["reason"]
    assert await stored_ids(ledger_path) == []


async def test_partial_appends_the_valid_events(http: AsyncTestClient, ledger_path: Path) -> None:
    batch = [started("a"), with_(started("b"), "terms.currency", "XYZ"), started("c")]
    response = await post(http, batch, partial=True)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"), (1, "rejected"), (2, "accepted")]
    assert results[1]["path"] == "terms.currency"
    assert await stored_ids(ledger_path) == ["a", "c"]


async def test_partial_with_nothing_valid_is_422(http: AsyncTestClient, ledger_path: Path) -> None:
    response = await post(http, [{"type": "nope"}, started("")], partial=True)
    assert response.status_code == 422
    assert [r["path"] for r in response.json()["results"]] == ["type", "event_id"]
    assert await stored_ids(ledger_path) == []


async def test_partial_with_everything_valid_is_200(http: AsyncTestClient) -> None:
    response = await post(http, [started("a"), started("b")], partial=True)
    assert response.status_code == 200


async def test_a_batch_of_1000_is_accepted(http: AsyncTestClient, ledger_path: Path) -> None:
    batch = [started(f"e{i}", customer_id=f"cus-{i % 7}") for i in range(1000)]
    response = await post(http, batch)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    assert len(await stored_ids(ledger_path)) == 1000


async def test_a_batch_of_1001_is_413_and_stores_nothing(
    http: AsyncTestClient, ledger_path: Path
) -> None:
    response = await post(http, [started(f"e{i}") for i in range(1001)])
    assert response.status_code == 413
    assert "at most 1000 events, got 1001" in response.json()["reason"]
    assert await stored_ids(ledger_path) == []


async def test_an_oversized_body_is_413(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    async with client(embedded_app(path, max_body_bytes=2000)) as http:
        small = await post(http, started("a"))
        big = await post(http, [started(f"e{i}") for i in range(20)])
    assert small.status_code == 200
    assert big.status_code == 413
    assert await stored_ids(path) == ["a"]


async def test_an_oversized_event_inside_a_batch_is_rejected_at_path_body(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    async with client(embedded_app(path, max_event_bytes=1000)) as http:
        response = await post(http, [started("a"), started("b", source="x" * 2000)], partial=True)
    assert response.status_code == 207
    bad = response.json()["results"][1]
    assert (bad["path"], bad["status"]) == ("body", "rejected")
    assert "exceeds the 1000-byte limit" in bad["reason"]
    assert await stored_ids(path) == ["a"]


async def test_a_producers_recorded_at_is_replaced(
    http: AsyncTestClient, ledger_path: Path
) -> None:
    from ledger.embedded import EmbeddedLedger

    await post(http, started("a", recorded_at="2000-01-01T00:00:00Z"))
    async with EmbeddedLedger(ledger_path) as ledger:
        (record,) = await ledger.read(0, 0, 10)
    assert record.event.recorded_at.year >= 2025


async def test_an_unknown_query_parameter_is_400(http: AsyncTestClient, ledger_path: Path) -> None:
    response = await http.post("/v1/events?parital=true", content=json.dumps(started("a")),
                               headers=AUTH)
    assert response.status_code == 400
    assert response.json()["path"] == "query.parital"
    assert await stored_ids(ledger_path) == []
