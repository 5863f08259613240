"""Schemathesis against the published OpenAPI: no 5xx, no invalid event accepted.

Generates at least 500 requests to `POST /v1/events` (schema-valid and schema-violating bodies
and query strings) plus the health endpoints, against the ASGI app on an embedded ledger. Every
event the API answers `accepted` or `duplicate` is re-validated independently, and the ledger
must hold exactly the accepted events.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from ledger.events import encode_event
from ledger.validation import decode_event
from tests.api.support import AUTH, embedded_app, stored_ids

EXAMPLES = {GenerationMode.POSITIVE: 300, GenerationMode.NEGATIVE: 300}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def sent_events(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


def check_nothing_invalid_accepted(body: Any, response: Any) -> int:
    """Re-validate every event the API accepted; return how many were accepted."""
    if response.status_code not in (200, 207):
        return 0
    events = sent_events(body)
    accepted = 0
    for result in response.json()["results"]:
        if result["status"] in ("accepted", "duplicate"):
            # Generous `now`: the API validated a moment ago with the real clock.
            decode_event(json.dumps(events[result["index"]]), now=dt.datetime.now(dt.UTC))
            accepted += result["status"] == "accepted"
    return accepted


def test_schemathesis_finds_no_5xx_and_no_accepted_invalid_event(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    app = embedded_app(path)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    counts = {"requests": 0, "accepted": 0}

    for mode, examples in EXAMPLES.items():
        checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

        @given(case=schema["/v1/events"]["POST"].as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def post_events(case: Any) -> None:
            response = case.call_and_validate(headers=AUTH, checks=checks)
            counts["requests"] += 1
            counts["accepted"] += check_nothing_invalid_accepted(case.body, response)

        post_events()

    for operation in ("/healthz", "/readyz"):

        @given(case=schema[operation]["GET"].as_strategy())
        @settings(max_examples=10, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def get_health(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)
            counts["requests"] += 1

        get_health()

    assert counts["requests"] >= 500, counts
    assert counts["accepted"] > 0, counts  # valid events were generated and went through
    ids = _run(stored_ids(path))
    assert len(ids) == counts["accepted"]  # the ledger holds exactly what was answered accepted


def _run(coro: Any) -> Any:
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
