"""Bearer-token authentication on /v1/*: one generic 401 for every failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from ledger.api import ApiSettings, InsecureConfigurationError, create_app
from ledger.api.auth import _digest, token_matches
from tests.api.support import OTHER_TOKEN, TOKEN, client, embedded_app, stored_ids
from tests.ledger.factory import started

BODY = json.dumps(started("a"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"X-Api-Key": TOKEN},
    ],
    ids=["none", "empty", "scheme-only", "blank-token", "longer", "shorter", "basic",
         "no-scheme", "other-header"],
)
async def test_missing_or_wrong_token_is_401_and_stores_nothing(
    http: AsyncTestClient, ledger_path: Path, headers: dict[str, str]
) -> None:
    response = await http.post("/v1/events", content=BODY, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"status_code": 401, "detail": "Unauthorized"}  # says nothing more
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await stored_ids(ledger_path) == []


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
async def test_every_configured_token_is_accepted(http: AsyncTestClient, token: str) -> None:
    response = await http.post("/v1/events", content=BODY,
                               headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


async def test_auth_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    async with client(embedded_app(tmp_path / "l.sqlite", max_body_bytes=10)) as http:
        response = await http.post("/v1/events", content=BODY)
    assert response.status_code == 401


async def test_health_endpoints_and_the_schema_need_no_token(http: AsyncTestClient) -> None:
    for path in ("/healthz", "/readyz", "/schema/openapi.json"):
        assert (await http.get(path)).status_code == 200, path


async def _writer() -> object:
    raise AssertionError("not opened")


@pytest.mark.parametrize("tokens", [(), ("",)])
def test_no_token_configured_refuses_to_build(tokens: tuple[str, ...]) -> None:
    with pytest.raises(InsecureConfigurationError, match="--insecure-no-auth"):
        create_app(_writer, ApiSettings(tokens=tokens))  # type: ignore[arg-type]


async def test_insecure_no_auth_serves_without_a_token(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    async with client(embedded_app(path, tokens=(), insecure_no_auth=True)) as http:
        response = await http.post("/v1/events", content=BODY)
        schema = (await http.get("/schema/openapi.json")).json()
    assert response.status_code == 200
    assert "security" not in schema["paths"]["/v1/events"]["post"]
    assert await stored_ids(path) == ["a"]


def test_token_comparison() -> None:
    digests = [_digest("alpha"), _digest("beta")]
    assert token_matches("beta", digests)
    assert not token_matches("bet", digests)
    assert not token_matches("", digests)
    assert not token_matches("gamma", [])
