"""`/healthz` (process up) and `/readyz` (ledger reachable)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ledger.api import ApiSettings
from streams.cli.serve import build_app
from streams.config import load_config
from tests.api.support import TOKEN, client


def settings() -> ApiSettings:
    return ApiSettings(tokens=(TOKEN,), readiness_timeout_seconds=1.0)


async def test_embedded_ledger_ready(tmp_path: Path) -> None:
    config = load_config({"data_dir": str(tmp_path / "data")}, environ={})
    async with client(build_app(config, settings())) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


async def test_embedded_ledger_that_cannot_open_is_not_ready(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load_config({"data_dir": str(data)}, environ={})
    async with client(build_app(config, settings())) as http:
        (data / "ledger.sqlite").unlink()
        (data / "ledger.sqlite").mkdir()  # the ledger file is now a directory: cannot open
        ready = await http.get("/readyz")
        alive = await http.get("/healthz")
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
    assert alive.status_code == 200


async def test_a_hanging_check_is_not_ready(tmp_path: Path) -> None:
    from ledger.api import create_app
    from ledger.embedded import EmbeddedLedger

    async def writer() -> EmbeddedLedger:
        return EmbeddedLedger(tmp_path / "l.sqlite")

    async def hang() -> None:
        await asyncio.sleep(60)

    app = create_app(writer, ApiSettings(tokens=(TOKEN,), readiness_timeout_seconds=0.2),
                     readiness=hang)
    async with client(app) as http:
        assert (await http.get("/readyz")).status_code == 503
