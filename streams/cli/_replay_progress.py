"""How `mrr replay` shows its progress: rich bars on stderr, or JSON lines on stdout (`--json`)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

BARS = {"reading": "reading {task.fields[where]}", "computing": "computing {task.fields[where]}"}
"""Phases with a bar (events/s and time left), and what their bar says."""


class ReplayProgress:
    """A `streams.replay.Reporter`: a bar for reading and computing, a line for other phases;
    with `as_json`, every phase and, at most twice a second, its progress as JSON lines."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.phase_name = ""
        self.total = 0
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._bar: Any = None
        self._task: Any = None

    def phase(self, name: str, **info: Any) -> None:
        self._close_bar()
        self.phase_name, self.total, self.done = name, int(info.get("total") or 0), 0
        self.started, self._last = time.monotonic(), 0.0
        if self.as_json:
            self.emit({"phase": name, **info})
            return
        if name in BARS:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            where = (f"{info['partitions']} partitions" if "partitions" in info
                     else f"{info.get('jobs', 1)} job(s), {info.get('buckets', 1)} bucket(s)")
            self._bar = Progress(TextColumn(BARS[name]), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]} events/s"), TimeRemainingColumn(),
                                 console=_console())
            self._task = self._bar.add_task(name, total=self.total or None, where=where, rate="-")
            self._bar.start()
        elif name != "done":
            details = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in info.items())
            _console().print(f"{name}{' (' + details + ')' if details else ''} …")

    def read(self, messages: int) -> None:
        self._advance(self.done + messages)

    def computed(self, done: int, total: int) -> None:
        self.total = total
        self._advance(done)

    def _advance(self, done: int) -> None:
        self.done = done
        rate = done / max(time.monotonic() - self.started, 1e-6)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total or None, rate=f"{rate:,.0f}")
        elif self.as_json and time.monotonic() - self._last >= 0.5:
            self._last = time.monotonic()
            left = max(self.total - done, 0)
            self.emit({"phase": self.phase_name, "done": done, "total": self.total,
                       "events_per_second": round(rate),
                       "eta_seconds": round(left / rate, 1) if rate else None})

    def finish(self) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    @staticmethod
    def emit(payload: dict[str, Any]) -> None:
        """One JSON line on stdout."""
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        sys.stdout.flush()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
