"""The `mrr` command: the composition root that wires ledger, projections and streams."""

from __future__ import annotations

import click

from streams.cli import commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mrr-ledger")
def cli() -> None:
    """mrr-ledger: an event-sourced subscription ledger with exact, live MRR.

    Events go in with `mrr ingest`; reports come out with `mrr report`. With no Kafka or
    Postgres configured everything runs on an embedded ledger in ./.mrr/. Settings come from
    flags, MRR_* environment variables or mrr.toml, in that order.
    """


commands.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli()
