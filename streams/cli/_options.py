"""Click option helpers the `mrr` subcommands share."""

from __future__ import annotations

import datetime as dt

import click


def instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.datetime | None:
    """Click callback: an RFC 3339 instant (or a date, or a period label) as a UTC datetime."""
    if value is None:
        return None
    from projections.periods import parse_instant

    try:
        return parse_instant(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
