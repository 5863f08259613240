"""Schema evolution: old event versions are upcast on read, never rewritten.

An upcaster turns the raw JSON object of version N into version N + 1. The registry chains them,
so an event of any supported old version reaches `SCHEMA_VERSION` before it is decoded into a
Struct. The ledger keeps the bytes it was given; readers (`decode_stored`) and the validator
(`ledger.validation.decode_event`) both go through `upcast`. Version 1 is the first version, so
none ship yet: register them here when v2 arrives, e.g.::

    @UPCASTERS.register(1)
    def _v1_to_v2(raw: dict) -> dict:
        raw["new_field"] = raw.pop("old_field")
        return raw
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from ledger.events import SCHEMA_VERSION, Event, EventBase

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnsupportedSchemaVersion(ValueError):
    """`schema_version` names a version no chain of upcasters leads from."""

    def __init__(self, version: object, supported: range) -> None:
        first, last = supported.start, supported.stop - 1
        versions = str(last) if first == last else f"{first} to {last}"
        super().__init__(f"unsupported version {version!r} (supported: {versions})")
        self.version = version


class UpcastError(ValueError):
    """An upcaster failed on a malformed old event."""


class UpcasterRegistry:
    """Upcasters by the version they read; `upcast` applies the chain up to `current`."""

    def __init__(self, current: int = SCHEMA_VERSION) -> None:
        self.current = current
        self._by_version: dict[int, Upcaster] = {}

    def register(self, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: the function turns a `from_version` object into `from_version + 1`."""
        if from_version >= self.current:
            raise ValueError(f"cannot upcast from v{from_version}: current is v{self.current}")

        def decorate(fn: Upcaster) -> Upcaster:
            self._by_version[from_version] = fn
            return fn

        return decorate

    def unregister(self, from_version: int) -> None:
        """Remove an upcaster (tests)."""
        self._by_version.pop(from_version, None)

    def supported(self) -> range:
        """The versions `upcast` accepts: `current` and every older one with an unbroken chain."""
        oldest = self.current
        while oldest - 1 in self._by_version:
            oldest -= 1
        return range(oldest, self.current + 1)

    def upcast(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The object at version `current`; the input is never mutated (old versions are copied).

        A missing `schema_version` means 1. Raises UnsupportedSchemaVersion or UpcastError.
        """
        version = raw.get("schema_version", 1)
        if type(version) is not int or version not in self.supported():
            raise UnsupportedSchemaVersion(version, self.supported())
        if version == self.current:
            return raw
        raw = copy.deepcopy(raw)
        while version < self.current:
            try:
                raw = self._by_version[version](raw)
            except Exception as exc:  # an upcaster meets whatever old producers sent
                raise UpcastError(f"cannot upcast from version {version}: {exc!r}") from exc
            version += 1
            raw["schema_version"] = version
        return raw


UPCASTERS = UpcasterRegistry()
"""The project's upcasters (none yet: v1 is the first schema)."""

_typed_decoder = msgspec.json.Decoder(Event)
_raw_decoder = msgspec.json.Decoder(float_hook=Decimal)


def decode_stored(body: bytes, registry: UpcasterRegistry = UPCASTERS) -> EventBase:
    """Decode an event the ledger stored, upcasting it if it was written in an older version.

    Current-version bodies take the fast typed path; others go through the raw object and the
    upcasters. Stored events were validated on append, so errors here mean a corrupt ledger and
    raise msgspec's errors unchanged.
    """
    try:
        event = _typed_decoder.decode(body)
        if event.schema_version == registry.current:
            return event
    except msgspec.ValidationError:
        pass  # an older shape: the upcasters will fix it
    raw = _raw_decoder.decode(body)
    return msgspec.convert(registry.upcast(raw), Event)
