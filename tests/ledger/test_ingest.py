"""`ingest_lines`: every bad line reported with its number and reason, nothing else lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger.embedded import EmbeddedLedger
from ledger.ingest import IngestReport, ingest_lines
from tests.ledger.contract import T0, read_all
from tests.ledger.factory import HORIZON, NOW, fx, invoice_paid, started, with_


def bad_input_file() -> tuple[list[str], dict[int, str]]:
    """A JSON Lines file mixing good lines with one of every kind of bad line."""
    lines = [
        json.dumps(started("ok-1")),  # 1
        "",  # 2 blank
        '{"type": "subscription.started", "event_id": "broken"',  # 3
        json.dumps(with_(started("bad-type"), "terms.items.0.unit_amount", "lots")),  # 4
        json.dumps(invoice_paid("ok-2")),  # 5
        json.dumps(with_(started("bad-cur"), "terms.currency", "XYZ")),  # 6
        json.dumps(with_(started("naive"), "occurred_at", "2024-03-01T00:00:00")),  # 7
        json.dumps(started("huge", source="x" * 70_000)),  # 8
        "   ",  # 9 blank
        json.dumps(with_(started("future"), "occurred_at", "2030-01-01T00:00:00Z")),  # 10
        json.dumps(with_(started("neg"), "terms.items.0.quantity", -1)),  # 11
        json.dumps(fx("ok-3")),  # 12
    ]
    huge_size = len(lines[7].encode())
    expected = {
        3: "body: malformed JSON: input data was truncated",
        4: 'terms.items[0].unit_amount: expected integer, got string "lots"',
        6: "terms.currency: unknown currency 'XYZ'",
        7: "occurred_at: must include a UTC offset",
        8: f"body: {huge_size} bytes exceeds the 65536-byte limit",
        10: "occurred_at: 2030-01-01T00:00:00+00:00 is more than 366 days in the future "
        "(latest accepted: 2025-06-02T00:00:00+00:00)",
        11: "terms.items[0].quantity: must be >= 0",
    }
    return [line + "\n" for line in lines], expected


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    async with EmbeddedLedger(tmp_path / "ledger.sqlite") as store:
        yield store


async def ingest(
    lines: list[str] | list[bytes], ledger: EmbeddedLedger, **kw: object
) -> IngestReport:
    return await ingest_lines(lines, ledger, now=NOW, horizon=HORIZON, recorded_at=T0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("as_bytes", [False, True])
async def test_bad_lines_are_reported_and_the_rest_ingested(
    ledger: EmbeddedLedger, as_bytes: bool
) -> None:
    lines, expected = bad_input_file()
    report = await ingest([text.encode() for text in lines] if as_bytes else lines, ledger)
    assert {r.line: r.reason for r in report.rejections} == expected
    assert (report.accepted, report.duplicate, report.rejected, report.conflicts) == (3, 0, 7, 0)
    assert not report.ok
    assert [r.event.event_id for r in await read_all(ledger)] == ["ok-1", "ok-2", "ok-3"]


async def test_reingesting_the_same_file_changes_nothing(ledger: EmbeddedLedger) -> None:
    lines, expected = bad_input_file()
    await ingest(lines, ledger)
    before = await read_all(ledger)
    again = await ingest(lines, ledger)
    assert (again.accepted, again.duplicate, again.rejected) == (0, 3, 7)
    assert {r.line: r.reason for r in again.rejections} == expected
    assert await read_all(ledger) == before


async def test_conflicts_are_rejections_with_line_numbers(ledger: EmbeddedLedger) -> None:
    await ingest([json.dumps(started("a"))], ledger)
    report = await ingest(
        [json.dumps(started("b")), json.dumps(with_(started("a"), "terms.items.0.unit_amount", 1))],
        ledger,
    )
    assert (report.accepted, report.rejected, report.conflicts) == (1, 1, 1)
    [rejection] = report.rejections
    assert rejection.line == 2 and rejection.event_id == "a" and rejection.conflict
    assert rejection.reason == (
        "event_id: conflict: 'a' already recorded at offset 0 with a different body"
        " (differs in: terms)"
    )
    assert [r.event.event_id for r in await read_all(ledger)] == ["a", "b"]


async def test_batches_preserve_file_order(ledger: EmbeddedLedger) -> None:
    lines = [json.dumps(started(f"e{i:03}")) for i in range(25)]
    lines.insert(7, "not json")
    report = await ingest(lines, ledger, batch_size=4)
    assert report.accepted == 25 and [r.line for r in report.rejections] == [8]
    assert [r.event.event_id for r in await read_all(ledger)] == [f"e{i:03}" for i in range(25)]


async def test_bom_crlf_and_blank_lines(ledger: EmbeddedLedger) -> None:
    lines = [
        b"\xef\xbb\xbf" + json.dumps(started("a")).encode() + b"\r\n",
        b"\r\n",
        b"\n",
        json.dumps(started("b")).encode(),
    ]
    report = await ingest(lines, ledger)
    assert (report.accepted, report.rejected) == (2, 0)


async def test_report_json_shape(ledger: EmbeddedLedger) -> None:
    report = await ingest([json.dumps(started("a")), "{"], ledger)
    assert report.to_json() == {
        "accepted": 1,
        "duplicate": 0,
        "rejected": 1,
        "conflicts": 0,
        "rejections": [
            {
                "line": 2,
                "reason": "body: malformed JSON: input data was truncated",
                "event_id": None,
            }
        ],
    }
