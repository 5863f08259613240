"""How `mrr ledger` shows records: a rich table or JSON Lines on stdout, one event's copies in
full, and notes and progress on stderr."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

if TYPE_CHECKING:
    from streams.ledger_inspect.sources import Entry


def note(text: str) -> None:
    """A line on stderr, prefixed `mrr ledger:`."""
    click.echo(f"mrr ledger: {text}", err=True)


@contextmanager
def progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (cleared when done) over `total` records."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress("reading", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("reading", total=total)
        yield lambda n: bar.advance(task, n)


def entry_json(entry: Entry) -> dict[str, Any]:
    """partition, offset, recorded_at, then the event body (or key/undecodable/value)."""
    import msgspec

    head = {"partition": entry.partition, "offset": entry.offset,
            "recorded_at": msgspec.to_builtins(entry.recorded_at)}
    if entry.event is not None:
        from ledger.events import encode_event

        return {**head, **json.loads(encode_event(entry.event))}
    text = None if entry.value is None else entry.value.decode("utf-8", "replace")
    return {**head, "key": entry.key, "undecodable": entry.problem, "value": text}


def _time(value: dt.datetime) -> str:
    """`2024-03-01 10:00:00.123Z` (UTC; milliseconds unless whole seconds)."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S" + (".%f" if utc.microsecond else ""))[:23] + "Z"


def print_entries(entries: list[Entry], *, as_json: bool, header: bool = True,
                  fixed: bool = False) -> None:
    """JSON Lines, or a rich table (undecodable records in red, with the reason); `fixed` keeps
    the columns of successive tables aligned (--follow)."""
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry_json(entry)))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ledger.events import customer_of, event_type

    table = Table(box=None, show_header=header, pad_edge=False)
    for name, width in (("partition", 9), ("offset", 10), ("recorded_at", 24), ("occurred_at", 24)):
        table.add_column(name, justify="left" if "_" in name else "right", no_wrap=True,
                         min_width=width if fixed else None)
    table.add_column("type", overflow="fold", min_width=35 if fixed else None)
    table.add_column("customer_id", overflow="fold")
    table.add_column("event_id", overflow="fold")
    for e in entries:
        position = (str(e.partition), str(e.offset), _time(e.recorded_at))
        if e.event is None:
            table.add_row(*position, "", Text("undecodable", "bold red"), e.key or "",
                          Text(e.problem or "", "red"))
        else:
            table.add_row(*position, _time(e.event.occurred_at), event_type(e.event),
                          customer_of(e.event) or "", e.event.event_id)
    console = Console()
    if not console.is_terminal:  # a pipe or file: never cut or wrap a cell
        console = Console(width=1000)
    console.print(table)


def print_copies(entries: list[Entry]) -> None:
    """`mrr ledger get`: each copy's position, then its full JSON body."""
    bodies = [entry_json(entry) for entry in entries]
    first = next((body for body in bodies if "undecodable" not in body), bodies[0])
    for number, (entry, body) in enumerate(zip(entries, bodies), 1):
        where = (f"partition {entry.partition}  offset {entry.offset}  "
                 f"recorded_at {_time(entry.recorded_at)}")
        if len(entries) > 1:
            where += f"  [copy {number} of {len(entries)}: {_relation(first, body)}]"
        if entry.event is None:
            click.echo(f"undecodable record  {where}\n  reason: {entry.problem}\n{body['value']}")
            continue
        click.echo(f"event {entry.event.event_id}  {where}")
        click.echo(json.dumps({k: v for k, v in body.items() if k not in ("partition", "offset")},
                              indent=2))


def _relation(first: dict[str, Any], body: dict[str, Any]) -> str:
    """How a copy relates to the first decodable one (the copy `mrr worker` applies)."""
    if "undecodable" in body:
        return "undecodable"
    if body is first:
        return "first recorded"
    ignored = {"partition", "offset", "recorded_at"}
    differing = sorted(k for k in set(first) | set(body)
                       if k not in ignored and first.get(k) != body.get(k))
    return f"conflict, differs in {', '.join(differing)}" if differing else "duplicate (same body)"
