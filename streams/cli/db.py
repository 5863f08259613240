"""`mrr db upgrade|check`: Alembic migrations of the PostgreSQL projection schema."""

from __future__ import annotations

import asyncio
import json

import click


def _url(database_url: str | None) -> str:
    from streams.config import load_config

    url = load_config({"database_url": database_url}).database_url
    if not url:
        raise click.UsageError("no database: set MRR_DATABASE_URL or pass --database-url "
                               "(the embedded SQLite store creates its tables itself)")
    return url


database_url_option = click.option(
    "--database-url", help="SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db "
    "(default: MRR_DATABASE_URL or mrr.toml).")


@click.group("db")
def command() -> None:
    """Create and upgrade the PostgreSQL projection schema with Alembic migrations."""


@command.command("upgrade")
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(database_url: str | None, revision: str) -> None:
    """Upgrade the projection schema to REVISION (default: the newest), in one transaction."""
    from projections.migrate import upgrade as run_upgrade

    now = asyncio.run(run_upgrade(_url(database_url), revision))
    click.echo(f"projection schema at revision {now}")


@command.command("check")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(database_url: str | None, as_json: bool) -> None:
    """Show the current revision and any difference from the code's schema; exit 1 if any."""
    from projections.migrate import current_revision, schema_drift

    url = _url(database_url)
    revision = asyncio.run(current_revision(url))
    drift = [str(d) for d in asyncio.run(schema_drift(url))]
    if as_json:
        click.echo(json.dumps({"revision": revision, "differences": drift}))
    else:
        click.echo(f"revision: {revision or 'none (never migrated)'}")
        for line in drift:
            click.echo(f"difference: {line}")
        click.echo("schema matches the code" if not drift else f"{len(drift)} difference(s)")
    if drift:
        raise SystemExit(1)
