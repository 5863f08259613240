"""Validation of incoming events: raw JSON (bytes, str or an already-parsed dict) to an `Event`.

Order of checks: body size, JSON syntax, object shape, `schema_version` (upcasting old versions),
`type`, the Struct schema (types, required fields, ranges), then the rules a type cannot express
(`check_rules`: currencies, discounts, FX, the future horizon). msgspec's messages are translated
into the ledger's own (`_translate`), stable wording that producers see. Every failure
is an `EventValidationError` naming the field path and the reason, e.g.
``terms.items[0].unit_amount: must be >= 0``. A producer's `recorded_at` is dropped: the ledger
stamps it on append.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

from ledger.events import (
    EVENT_TYPES,
    SUBSCRIPTION_TERMS_EVENTS,
    AcquisitionCostRecorded,
    Event,
    EventBase,
    FxRatePublished,
    InvoicePaid,
    InvoicePaymentFailed,
    RefundIssued,
    Terms,
)
from ledger.money import is_known_currency
from ledger.upcast import UPCASTERS, UnsupportedSchemaVersion, UpcasterRegistry, UpcastError

MAX_BODY_BYTES = 65536
DEFAULT_HORIZON = dt.timedelta(days=366)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""The Unix epoch: Kafka record timestamps cannot go earlier, and no subscription business did."""

_json = msgspec.json.Decoder(float_hook=Decimal)  # JSON numbers with a fraction stay exact
_encoder = msgspec.json.Encoder(decimal_format="string")


class EventValidationError(ValueError):
    """An event was rejected: `path` names the field (or `body`, `type`), `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def decode_event(
    raw: bytes | str | dict[str, Any],
    *,
    now: dt.datetime,
    horizon: dt.timedelta = DEFAULT_HORIZON,
    max_bytes: int = MAX_BODY_BYTES,
    upcasters: UpcasterRegistry = UPCASTERS,
) -> EventBase:
    """Validate one event and return it as its Struct (`recorded_at` always None).

    `now` (timezone-aware) and `horizon` bound `occurred_at` from above. Raises
    EventValidationError; never mutates a dict it is given.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    obj = _parse(raw, max_bytes)
    obj = _upcast(obj, upcasters)
    obj.pop("recorded_at", None)  # the ledger's to set, never the producer's
    _check_type(obj.get("type", _MISSING))
    try:
        event = msgspec.convert(obj, Event)
    except msgspec.ValidationError as exc:
        raise EventValidationError(*_translate(str(exc), obj)) from None
    check_rules(event, now=now, horizon=horizon)
    return event


class BatchResult(NamedTuple):
    """Valid events with their 0-based input index, and the rejections by index."""

    events: list[tuple[int, EventBase]]
    errors: list[tuple[int, EventValidationError]]


def validate_batch(
    raws: Iterable[bytes | str | dict[str, Any]],
    *,
    now: dt.datetime,
    horizon: dt.timedelta = DEFAULT_HORIZON,
    max_bytes: int = MAX_BODY_BYTES,
) -> BatchResult:
    """Validate each item independently: one bad event never rejects the others."""
    result = BatchResult([], [])
    for index, raw in enumerate(raws):
        try:
            result.events.append(
                (index, decode_event(raw, now=now, horizon=horizon, max_bytes=max_bytes))
            )
        except EventValidationError as exc:
            result.errors.append((index, exc))
    return result


def check_rules(event: EventBase, *, now: dt.datetime, horizon: dt.timedelta) -> None:
    """The rules the Structs cannot express; raises EventValidationError on the first failure."""
    limit = now + horizon
    if event.occurred_at < EARLIEST:
        raise EventValidationError("occurred_at", f"must not be before {EARLIEST.isoformat()}")
    if event.occurred_at > limit:
        raise EventValidationError(
            "occurred_at",
            f"{event.occurred_at.isoformat()} is more than {_describe(horizon)} in the future "
            f"(latest accepted: {limit.isoformat()})",
        )
    if isinstance(event, SUBSCRIPTION_TERMS_EVENTS):
        _check_terms(event.terms)
    elif isinstance(
        event, (InvoicePaid, InvoicePaymentFailed, RefundIssued, AcquisitionCostRecorded)
    ):
        _check_currency("currency", event.currency)
    elif isinstance(event, FxRatePublished):
        _check_fx(event)


def _check_terms(terms: Terms) -> None:
    _check_currency("terms.currency", terms.currency)
    start, end = terms.current_period_start, terms.current_period_end
    if start is not None and end is not None and end <= start:
        raise EventValidationError("terms.current_period_end", "must be after current_period_start")
    discount = terms.discount
    if discount is None:
        return
    value = discount.value
    if not value.is_finite():
        raise EventValidationError("terms.discount.value", "must be a finite number")
    if discount.kind == "percent" and not 0 < value <= 100:
        raise EventValidationError(
            "terms.discount.value", f"must be in (0, 100] for a percent discount, got {value}"
        )
    if discount.kind == "amount" and (value <= 0 or value != value.to_integral_value()):
        raise EventValidationError(
            "terms.discount.value",
            f"must be a positive integer of minor units for an amount discount, got {value}",
        )
    if discount.duration == "repeating" and discount.duration_in_intervals is None:
        raise EventValidationError(
            "terms.discount.duration_in_intervals", "is required when duration is 'repeating'"
        )
    if discount.duration != "repeating" and discount.duration_in_intervals is not None:
        raise EventValidationError(
            "terms.discount.duration_in_intervals", "is only allowed when duration is 'repeating'"
        )


def _check_fx(event: FxRatePublished) -> None:
    _check_currency("base", event.base)
    _check_currency("quote", event.quote)
    if event.base == event.quote:
        raise EventValidationError("quote", f"must differ from base ({event.base})")
    if not event.rate.is_finite() or event.rate <= 0:
        raise EventValidationError("rate", f"must be a finite number > 0, got {event.rate}")


def _check_currency(path: str, code: str) -> None:
    if not is_known_currency(code):
        if code.upper() != code and is_known_currency(code.upper()):
            raise EventValidationError(
                path, f"currency codes are upper-case: {code.upper()!r}, not {code!r}"
            )
        raise EventValidationError(path, f"unknown currency {code!r}")


_MISSING = object()


def _parse(raw: bytes | str | dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Size check, JSON syntax and object shape; dicts are copied (we pop from them)."""
    if isinstance(raw, dict):
        size = len(_encoder.encode(raw))
    elif isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
        size = len(raw)
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        size = len(raw)
    else:
        raise TypeError(f"cannot validate a {type(raw).__name__}")
    if size > max_bytes:
        raise EventValidationError("body", f"{size} bytes exceeds the {max_bytes}-byte limit")
    if isinstance(raw, dict):
        return dict(raw)
    if not bytes(raw).strip():
        raise EventValidationError("body", "is empty")
    try:
        obj = _json.decode(raw)
    except msgspec.DecodeError as exc:
        detail = str(exc).removeprefix("JSON is malformed: ")
        raise EventValidationError("body", f"malformed JSON: {_lower(detail)}") from None
    except UnicodeDecodeError:
        raise EventValidationError("body", "malformed JSON: invalid UTF-8") from None
    if not isinstance(obj, dict):
        raise EventValidationError("body", f"expected a JSON object, got {_json_kind(obj)}")
    return obj


def _upcast(obj: dict[str, Any], upcasters: UpcasterRegistry) -> dict[str, Any]:
    version = obj.get("schema_version", 1)
    if type(version) is not int:
        raise EventValidationError("schema_version", f"expected integer, got {_json_kind(version)}")
    try:
        return upcasters.upcast(obj)
    except UnsupportedSchemaVersion as exc:
        raise EventValidationError("schema_version", str(exc)) from None
    except UpcastError as exc:
        raise EventValidationError("body", str(exc)) from None


def _check_type(tag: object) -> None:
    if tag is _MISSING:
        raise EventValidationError("type", "is required")
    if not isinstance(tag, str):
        raise EventValidationError("type", f"expected string, got {_json_kind(tag)}")
    if tag not in EVENT_TYPES:
        raise EventValidationError("type", f"unknown event type {tag!r}")


def _describe(horizon: dt.timedelta) -> str:
    if horizon % dt.timedelta(days=1) == dt.timedelta(0):
        days = horizon.days
        return f"{days} day{'s' if days != 1 else ''}"
    return str(horizon)


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- msgspec's messages, translated ---------------------------------------------------------------

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_EXPECTED = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "decimal": "decimal number",
    "datetime": "RFC 3339 timestamp",
    "date": "date",
    "bool": "boolean",
    "object": "object",
    "array": "array",
    "null": "null",
}
_COUNTED = {
    "str": ("character", "characters"),
    "array": ("item", "items"),
    "object": ("entry", "entries"),
}


def _translate(message: str, obj: dict[str, Any]) -> tuple[str, str]:
    """msgspec's ``Expected `int` >= 0 - at `$.a[0].b` `` to ``("a[0].b", "must be >= 0")``."""
    match = _AT.match(message)
    assert match is not None  # the pattern matches any string
    msg, path = match["msg"], (match["path"] or "").lstrip(".")
    if m := re.fullmatch(r"Object missing required field `(.+)`", msg):
        return _join(path, m[1]), "is required"
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", msg):
        return _join(path, m[1]), "unknown field"
    path = path or "body"
    if msg == "Expected `datetime` with a timezone component":
        return path, "must include a UTC offset"
    if m := re.fullmatch(r"Expected `(\w+)`, got `(\w+)`", msg):
        return path, f"expected {_EXPECTED.get(m[1], m[1])}, got {_got(obj, path, m[2])}"
    if m := re.fullmatch(r"Expected `(\w+)` of length (>=|<=) (\d+)", msg):
        bound = "at least" if m[2] == ">=" else "at most"
        singular, plural = _COUNTED.get(m[1], ("element", "elements"))
        return path, f"must have {bound} {m[3]} {singular if m[3] == '1' else plural}"
    if m := re.fullmatch(r"Expected `\w+` (>=|<=|>|<) (\S+)", msg):
        return path, f"must be {m[1]} {m[2]}"
    if m := re.fullmatch(r"Expected `str` matching regex '(.*)'", msg, re.S):
        if path == "period":
            return path, "must be a month such as 2024-03 (YYYY-MM)"
        return path, f"must match the pattern {m[1]}"
    if msg == "Invalid RFC3339 encoded datetime":
        return path, "must be an RFC 3339 timestamp such as 2024-03-01T00:00:00Z"
    if msg == "Invalid RFC3339 encoded date":
        return path, "must be a date such as 2024-03-01"
    if msg == "Invalid decimal string":
        return path, 'must be a decimal number (a JSON number or a string such as "12.5")'
    if m := re.fullmatch(r"Invalid enum value (.*)", msg, re.S):
        allowed = _allowed_values(obj, path)
        if allowed:
            return path, f"must be one of {', '.join(map(repr, allowed))}, got {m[1]}"
        return path, f"invalid value {m[1]}"
    return path, msg[:1].lower() + msg[1:]


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _segments(path: str) -> list[str | int | None]:
    """ "terms.items[0].price_id" -> ["terms", "items", 0, "price_id"]; None for a dict value."""
    out: list[str | int | None] = []
    for m in _SEGMENT.finditer("." + path):
        out.append(m[1] if m[1] is not None else (int(m[2]) if m[2] is not None else None))
    return out


def _got(obj: dict[str, Any], path: str, msgspec_kind: str) -> str:
    """What the producer sent at `path`: the value itself when it is short, else its kind."""
    value: Any = obj
    for seg in _segments(path):
        try:
            value = value[seg]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return _EXPECTED.get(msgspec_kind, msgspec_kind)
    if value is None or isinstance(value, (dict, list)):
        return _json_kind(value)
    text = str(value) if isinstance(value, Decimal) else _encoder.encode(value).decode()
    return f"{_json_kind(value)} {text}" if len(text) <= 40 else _json_kind(value)


def _json_kind(value: object) -> str:
    """The JSON kind of a decoded value: object, array, string, integer, number, boolean, null."""
    if isinstance(value, bool):
        return "boolean"
    for kind, types in (
        ("object", dict),
        ("array", list),
        ("string", str),
        ("integer", int),
        ("number", (float, Decimal)),
    ):
        if isinstance(value, types):
            return kind
    return "null" if value is None else type(value).__name__


def _allowed_values(obj: dict[str, Any], path: str) -> tuple[Any, ...]:
    """The literal values the schema allows at `path` (for enum errors), or () if unknown."""
    info: Any = mi.type_info(EVENT_TYPES[obj["type"]])
    for seg in _segments(path):
        info = _unwrap(info)
        if isinstance(seg, str) and isinstance(info, mi.StructType):
            info = next((f.type for f in info.fields if f.encode_name == seg), None)
        elif isinstance(seg, int) and isinstance(info, mi.ListType):
            info = info.item_type
        elif seg is None and isinstance(info, mi.DictType):
            info = info.value_type
        else:
            return ()
    info = _unwrap(info)
    return info.values if isinstance(info, mi.LiteralType) else ()


def _unwrap(info: Any) -> Any:
    if isinstance(info, mi.UnionType):
        real = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return real[0] if len(real) == 1 else info
    return info
