"""`mrr ledger tail|get|customer`: the ledger's records with their positions.

The options, exit statuses and wiring: reading is `streams.ledger_inspect` (which says what is
read, and how a record the worker would dead-letter is shown), output `_ledger_render`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import click

from streams.cli._ledger_render import note, print_copies, print_entries, progress
from streams.ledger_inspect.lookups import customer_events, find_event, follow, tail
from streams.ledger_inspect.sources import Entry, LedgerUnavailable, Source, open_source

_EPILOG = """\b
Ledger (streams/config.py):
  embedded  (default) <data_dir>/ledger.sqlite: partition 0, offsets are
            its append sequence.
  Kafka     when MRR_KAFKA_BOOTSTRAP / --bootstrap is set: MRR_LEDGER_TOPIC
            (default mrr.ledger), read without a consumer group.

\b
--json prints JSON Lines, one object per record: partition, offset,
recorded_at, then the event's own fields (event_id, type, ...). A record
that is not a valid event has key, undecodable (the reason) and value
instead of the event's fields.

\b
Exit status:
  0  records printed (or --follow stopped with Ctrl-C)
  1  get/customer: nothing found
  2  usage error, or the ledger could not be read (no embedded ledger,
     Kafka unreachable, topic missing, event index unreadable)
"""


def _ledger_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "as_json", is_flag=True,
                     help="JSON Lines on stdout, one object per record (see below)."),
        click.option("--data-dir", default=None, help="Embedded ledger directory [MRR_DATA_DIR]."),
        click.option("--bootstrap", default=None,
                     help="Kafka bootstrap servers: read the Kafka ledger [MRR_KAFKA_BOOTSTRAP]."),
        click.option("--topic", default=None,
                     help="Kafka ledger topic [MRR_LEDGER_TOPIC, mrr.ledger]."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run(flags: dict[str, Any], work: Callable[[Source, Any], Awaitable[int]]) -> None:
    """Load the configuration, open the ledger, run `work(source, config)` and exit with the
    status it returns (2 if the ledger cannot be read; 0 on Ctrl-C)."""
    from streams.config import load_config

    try:
        config = load_config({"data_dir": flags["data_dir"], "kafka_bootstrap": flags["bootstrap"],
                              "ledger_topic": flags["topic"]})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    async def main() -> int:
        async with open_source(config) as source:
            return await work(source, config)

    try:
        status = asyncio.run(main())
    except LedgerUnavailable as exc:
        note(str(exc))
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        status = 0
    except Exception as exc:
        from aiokafka.errors import KafkaError

        if not (config.kafka_bootstrap and isinstance(exc, (KafkaError, OSError, TimeoutError))):
            raise
        note(f"reading Kafka at {config.kafka_bootstrap} failed: {exc!r}")
        raise SystemExit(2) from None
    raise SystemExit(status)


@click.group("ledger")
def command() -> None:
    """Inspect the ledger: records with their partition, offset and recorded_at.

    Read-only: nothing is projected, committed or written, on Kafka or on the embedded ledger.
    """


@command.command("tail", epilog=_EPILOG)
@click.option("-n", "--lines", "count", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many of the latest records to print.")
@click.option("-f", "--follow", "keep_following", is_flag=True,
              help="Then keep printing records as they are appended, until Ctrl-C.")
@_ledger_options
def tail_command(count: int, keep_following: bool, as_json: bool, **flags: Any) -> None:
    """Print the last N records of the ledger, oldest first.

    Kafka: the last N records of every partition, merged by recorded_at (ties by partition,
    then offset), of which the last N. A record that is not a valid event (one `mrr worker`
    sends to the dead-letter topic) is shown as undecodable, with the reason. With --follow, new
    records are polled twice a second and printed as they arrive.
    """

    async def work(source: Source, config: Any) -> int:
        entries, ends = await tail(source, count)
        print_entries(entries, as_json=as_json, fixed=keep_following)
        if keep_following:
            await follow(source, dict(ends), lambda new: print_entries(
                new, as_json=as_json, header=False, fixed=True))
        return 0

    _run(flags, work)


@command.command("get", epilog=_EPILOG)
@click.argument("event_id")
@click.option("--scan", "force_scan", is_flag=True,
              help="Kafka: read every partition even with MRR_DATABASE_URL set (also finds "
              "identical re-sends, which the event index does not hold).")
@_ledger_options
def get_command(event_id: str, force_scan: bool, as_json: bool, **flags: Any) -> None:
    """Print the event EVENT_ID: its position and its full JSON body.

    Every copy is printed when the id occurs more than once: a re-sent event (duplicate) or
    another body under the same id (conflict); `mrr worker` applies the first. Kafka with
    MRR_DATABASE_URL set: the positions come from the projections' event index (tables events
    and event_conflicts, filled by `mrr worker`) and only those records are read. Otherwise, or
    with --scan, every partition is read (said on stderr, with progress). Exit status 1 when the
    id is not found.
    """

    async def work(source: Source, config: Any) -> int:
        found = sorted(await find_event(source, config, event_id, force_scan=force_scan,
                                      note=note, progress=progress),
                       key=Entry.order)
        if not found:
            note(f"event {event_id!r} not found in the {source.where}")
            return 1
        if as_json:
            print_entries(found, as_json=True)
        else:
            print_copies(found)
        return 0

    _run(flags, work)


@command.command("customer", epilog=_EPILOG)
@click.argument("customer_id")
@_ledger_options
def customer_command(customer_id: str, as_json: bool, **flags: Any) -> None:
    """Print every record of CUSTOMER_ID, in ledger order (offset order of its partition).

    Kafka: only the customer's partition is read, the one the ledger writer's producer put the
    key in (murmur2 of the key, made positive, modulo the partition count), and the records
    keyed CUSTOMER_ID are kept, undecodable ones included. Reference events are keyed by their
    type, so `mrr ledger customer fx.rate_published` lists the FX rates. Exit status 1 when there
    is none.
    """

    async def work(source: Source, config: Any) -> int:
        entries, partition = await customer_events(source, customer_id, note=note,
                                                    progress=progress)
        if not entries:
            note(f"no record keyed {customer_id!r} in partition {partition} of the {source.where}")
            return 1
        print_entries(entries, as_json=as_json)
        return 0

    _run(flags, work)
