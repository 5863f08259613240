"""What a replay is asked to do, what it did, and whom it tells (`streams.replay`)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from projections.engine import MrrSettings
from projections.verify import VerifyResult


class ReplayError(RuntimeError):
    """The replay cannot start or go on; the message says why and what to do."""


class ReplayVerificationError(ReplayError):
    """The rebuilt projections differ from the from-scratch computation (exit status 1)."""


@dataclass
class ReplayRequest:
    """What the user asked for."""

    resume: bool = False
    abort: bool = False
    until_recorded: dt.datetime | None = None
    settings: MrrSettings | None = None
    """Other MRR settings (a side rebuild); None: the configured ones."""
    into: str | None = None
    """Schema of a side rebuild (default `mrr_side`)."""
    jobs: int = 1
    """Processes computing buckets of the rebuild (`streams.replay_shards`)."""


@dataclass
class ReplayOutcome:
    """What the replay did."""

    schema: str
    stage: str
    ends: dict[int, int] = field(default_factory=dict)
    events: int = 0
    dead_letters: int = 0
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    verify: VerifyResult | None = None
    swapped_into: str | None = None
    peak_rss_mib: dict[str, int] = field(default_factory=dict)
    """Peak resident memory per process: `reading` (this process, once the ledger is spilled)
    and `job N` (each computing process)."""


class Reporter:
    """Progress callbacks (`streams.cli.replay` renders them as a bar or JSON lines)."""

    def phase(self, name: str, **info: Any) -> None:
        """A stage starts (`reading`, `computing`, `loading`, `verifying`, `swapping`, `done`)."""

    def read(self, messages: int) -> None:
        """`messages` more ledger messages were read."""

    def computed(self, done: int, total: int) -> None:
        """`done` of `total` records were computed (all buckets together)."""


class timed:
    """Adds the seconds a block took to `outcome.seconds[name]`."""

    def __init__(self, outcome: ReplayOutcome, name: str) -> None:
        self.outcome, self.name = outcome, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.outcome.seconds[self.name] = self.outcome.seconds.get(self.name, 0.0) + time.monotonic() - self.started
