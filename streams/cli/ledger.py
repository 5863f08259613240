"""`mrr ledger tail|get|customer`: the ledger's records with their positions.

Reads the configured ledger and nothing else (no projection, no consumer group, no commit):
Kafka when `kafka_bootstrap` is set (a group-less `KafkaLedgerReader`), else the embedded SQLite
ledger in `data_dir`, whose one partition is 0 and whose offsets are its own sequence. Kafka
records are decoded exactly as the worker decodes them (`decode_ledger_value`), so a record the
worker would dead-letter is shown as undecodable, with the reason, never hidden.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import click

_CHUNK = 5000
_FOLLOW_SECONDS = 0.5

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


class LedgerUnavailable(Exception):
    """The configured ledger (or event index) cannot be read; the message says why."""


@dataclass(frozen=True)
class Entry:
    """One ledger record as shown: its position, and its event or why it is not one."""

    partition: int
    offset: int
    recorded_at: dt.datetime
    key: str | None
    event: Any = None
    """The decoded `EventBase`; None for an undecodable record."""
    problem: str | None = None
    value: bytes | None = None

    def order(self) -> tuple[dt.datetime, int, int]:
        """Merge order across partitions: recorded_at, then position."""
        return (self.recorded_at, self.partition, self.offset)

    def to_json(self) -> dict[str, Any]:
        """partition, offset, recorded_at, then the event body (or key/undecodable/value)."""
        import msgspec

        head = {"partition": self.partition, "offset": self.offset,
                "recorded_at": msgspec.to_builtins(self.recorded_at)}
        if self.event is not None:
            from ledger.events import encode_event

            return {**head, **json.loads(encode_event(self.event))}
        text = None if self.value is None else self.value.decode("utf-8", "replace")
        return {**head, "key": self.key, "undecodable": self.problem, "value": text}


class _KafkaSource:
    """Kafka: raw records, filtered on key/bytes before decoding, decoded as the worker does."""

    def __init__(self, reader: Any, horizon: dt.timedelta) -> None:
        self.reader, self.horizon = reader, horizon
        self.where = f"Kafka topic {reader.topic!r}"

    async def ends(self) -> dict[int, int]:
        return await self.reader.end_offsets()

    def partition_of(self, key: str, partitions: list[int]) -> int:
        from ledger.kafka.reader import partition_for_key

        return partition_for_key(key.encode(), partitions)

    async def fetch(self, partition: int, start: int, limit: int, *, key: str | None = None,
                    needle: bytes | None = None) -> tuple[list[Entry], int]:
        """Records from `start` (at most `limit`) that pass the filters, and the offset after
        the last one read (`start` when the partition has nothing more)."""
        raws = await self.reader.read_raw(partition, start, limit)
        wanted = key.encode() if key is not None else None
        entries = [self._decode(raw) for raw in raws
                   if (wanted is None or raw.key == wanted)
                   and (needle is None or (raw.value is not None and needle in raw.value))]
        return entries, (raws[-1].offset + 1 if raws else start)

    def _decode(self, raw: Any) -> Entry:
        from ledger.kafka.messages import PoisonMessage, decode_ledger_value

        key = None if raw.key is None else raw.key.decode("utf-8", "replace")
        try:
            event = decode_ledger_value(raw.value, raw.timestamp_ms, horizon=self.horizon)
        except PoisonMessage as exc:
            stamp = dt.datetime.fromtimestamp(raw.timestamp_ms / 1000, dt.UTC)
            return Entry(raw.partition, raw.offset, stamp, key, problem=exc.reason, value=raw.value)
        return Entry(raw.partition, raw.offset, event.recorded_at, key, event)


class _EmbeddedSource:
    """The embedded ledger: one partition, every record a validated event."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.where = f"embedded ledger {ledger.path}"

    async def ends(self) -> dict[int, int]:
        return await self.ledger.end_offsets()

    def partition_of(self, key: str, partitions: list[int]) -> int:
        return partitions[0]

    async def fetch(self, partition: int, start: int, limit: int, *, key: str | None = None,
                    needle: bytes | None = None) -> tuple[list[Entry], int]:
        """As `_KafkaSource.fetch`; the key is the writer's (customer id, else event type)."""
        from ledger.events import customer_of, event_type

        records = await self.ledger.read(partition, start, limit)
        entries = [Entry(r.partition, r.offset, r.event.recorded_at,
                         customer_of(r.event) or event_type(r.event), r.event) for r in records]
        entries = [e for e in entries if key is None or e.key == key]
        return entries, (records[-1].offset + 1 if records else start)


Source = _KafkaSource | _EmbeddedSource


@asynccontextmanager
async def open_source(config: Any) -> AsyncIterator[Source]:
    """The configured ledger, opened for reading; raises `LedgerUnavailable` if it cannot be."""
    if config.kafka_bootstrap:
        from ledger.kafka.reader import KafkaLedgerReader

        reader = KafkaLedgerReader(config.kafka_bootstrap, config.ledger_topic)
        try:
            try:
                await reader.partitions()  # starts the consumer; a missing topic raises here
            except LookupError as exc:
                raise LedgerUnavailable(str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - unreachable broker: say which and stop
                raise LedgerUnavailable(f"Kafka at {config.kafka_bootstrap}: {exc!r}") from None
            yield _KafkaSource(reader, dt.timedelta(days=config.future_horizon_days))
        finally:
            await reader.close()
        return
    from ledger.embedded import EmbeddedLedger

    path = config.data_path / "ledger.sqlite"
    if not path.is_file():  # EmbeddedLedger would create an empty one
        raise LedgerUnavailable(f"no embedded ledger at {path} (set --data-dir / MRR_DATA_DIR, "
                                "or MRR_KAFKA_BOOTSTRAP for the Kafka ledger)")
    async with EmbeddedLedger(path) as ledger:
        yield _EmbeddedSource(ledger)


async def scan(source: Source, ranges: dict[int, tuple[int, int]], advance: Callable[[int], None],
               **filters: Any) -> list[Entry]:
    """Every record in the `[start, end)` offset range of each partition that passes `filters`,
    in offset order per partition; `advance(n)` after each chunk of n offsets read."""
    found: list[Entry] = []
    for partition, (start, end) in sorted(ranges.items()):
        position = start
        while position < end:
            entries, after = await source.fetch(partition, position, min(_CHUNK, end - position),
                                                **filters)
            found.extend(e for e in entries if e.offset < end)
            after = end if after <= position else min(after, end)  # nothing more before `end`
            advance(after - position)
            position = after
    return found


async def tail(source: Source, count: int) -> tuple[list[Entry], dict[int, int]]:
    """The last `count` records across partitions (each partition's last `count`, merged by
    recorded_at), and the end offsets they were read up to."""
    ends = await source.ends()
    ranges = {p: (max(0, end - count), end) for p, end in ends.items() if count}
    entries = sorted(await scan(source, ranges, lambda _n: None), key=Entry.order)
    return (entries[-count:] if count else []), ends


async def follow(source: Source, positions: dict[int, int],
                 emit: Callable[[list[Entry]], None]) -> None:
    """Poll for records after `positions` and `emit` each new lot in recorded_at order; forever."""
    while True:
        await asyncio.sleep(_FOLLOW_SECONDS)
        ends = await source.ends()
        ranges = {p: (positions.get(p, 0), end) for p, end in ends.items()}
        new = await scan(source, ranges, lambda _n: None)
        positions.update(ends)
        if new:
            emit(sorted(new, key=Entry.order))


async def find_event(source: Source, config: Any, event_id: str, *,
                     force_scan: bool) -> list[Entry]:
    """Every copy of `event_id`: by the projections' event index on Kafka with a database
    configured (unless `force_scan`), else by reading every partition."""
    if isinstance(source, _KafkaSource) and config.database_url and not force_scan:
        positions = await _indexed_positions(config, event_id)
        _note("looked up in the event index of the projections: the applied copy and any "
              "conflicting ones (identical re-sends are not indexed: --scan finds them)")
        found = []
        for partition, offset in positions:
            entries, _ = await source.fetch(partition, offset, 1)
            found += ([e for e in entries if e.offset == offset]
                      or _missing(event_id, partition, offset))
        return found
    ends = await source.ends()
    plain = event_id.isascii() and event_id.isprintable() and not set(event_id) & set('"\\/')
    if isinstance(source, _KafkaSource):
        _note(f"no event index{' used' if config.database_url else ' (MRR_DATABASE_URL unset)'}: "
              f"scanning every partition of {source.where}, {sum(ends.values())} records")
    with _progress(sum(ends.values())) as advance:
        entries = await scan(source, {p: (0, end) for p, end in ends.items()}, advance,
                             needle=event_id.encode() if plain else None)
    return [e for e in entries if (e.event.event_id == event_id if e.event is not None
                                   else e.value is not None and event_id.encode() in e.value)]


async def customer_events(source: Source, customer_id: str) -> tuple[list[Entry], int]:
    """The records keyed `customer_id`, in ledger order, read from its one partition."""
    ends = await source.ends()
    partition = source.partition_of(customer_id, sorted(ends))
    if isinstance(source, _KafkaSource):
        _note(f"reading partition {partition} of {len(ends)} of {source.where} (murmur2 of the "
              f"key, as aiokafka and the Java client partition), {ends[partition]} records")
    with _progress(ends[partition]) as advance:
        found = await scan(source, {partition: (0, ends[partition])}, advance, key=customer_id)
    return found, partition


async def _indexed_positions(config: Any, event_id: str) -> list[tuple[int, int]]:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from projections import schema
    from projections.migrate import SchemaRevisionError
    from streams.bootstrap import open_store

    def query(conn: Any) -> list[tuple[int, int]]:
        rows = []
        for table in (schema.events, schema.event_conflicts):
            where = table.c.event_id == event_id
            rows += conn.execute(select(table.c.partition, table.c["offset"]).where(where)).all()
        return sorted({(p, o) for p, o in rows})

    try:
        store = await open_store(config)
        try:
            return await store.read(query)
        finally:
            await store.close()
    except (SQLAlchemyError, SchemaRevisionError, OSError) as exc:
        raise LedgerUnavailable(f"the event index in MRR_DATABASE_URL cannot be read: {exc}; "
                                "--scan reads the topic instead") from None


def _missing(event_id: str, partition: int, offset: int) -> list[Entry]:
    _note(f"the event index places {event_id} at partition {partition} offset {offset}, "
          "but the topic has no such record (was it recreated?)")
    return []


def _note(text: str) -> None:
    click.echo(f"mrr ledger: {text}", err=True)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (cleared when done) over `total` records."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress("reading", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("reading", total=total)
        yield lambda n: bar.advance(task, n)


# --- output -------------------------------------------------------------------------------------


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
            click.echo(json.dumps(entry.to_json()))
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
    bodies = [entry.to_json() for entry in entries]
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


# --- commands -----------------------------------------------------------------------------------


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


def _run(flags: dict[str, Any], work: Callable[[Source, Any], Any]) -> None:
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
        _note(str(exc))
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        status = 0
    except Exception as exc:
        from aiokafka.errors import KafkaError

        if not (config.kafka_bootstrap and isinstance(exc, (KafkaError, OSError, TimeoutError))):
            raise
        _note(f"reading Kafka at {config.kafka_bootstrap} failed: {exc!r}")
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
        found = sorted(await find_event(source, config, event_id, force_scan=force_scan),
                       key=Entry.order)
        if not found:
            _note(f"event {event_id!r} not found in the {source.where}")
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
        entries, partition = await customer_events(source, customer_id)
        if not entries:
            _note(f"no record keyed {customer_id!r} in partition {partition} of the {source.where}")
            return 1
        print_entries(entries, as_json=as_json)
        return 0

    _run(flags, work)
