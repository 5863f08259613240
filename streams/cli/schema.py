"""`mrr schema`: print the JSON Schema of ledger events."""

from __future__ import annotations

import json

import click


@click.command("schema")
def command() -> None:
    """Print the JSON Schema of ledger events (schema v1), generated from the event Structs."""
    from ledger.events import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
