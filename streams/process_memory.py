"""Peak resident memory of a process (`mrr replay` reports its own; the benchmarks read it for
the processes they start)."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib(pid: int | str = "self") -> int | None:
    """`VmHWM` of process `pid` in MiB (Linux), None if it cannot be read. Not `ru_maxrss`: Linux
    carries that over `execve`, so a command started by a large process would report that
    process's size. For this process off Linux, `ru_maxrss` is the fallback."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 if pid == "self" else None
