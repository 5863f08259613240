"""What machine a benchmark ran on: CPU model, cores, Python."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> str:
    """One line: CPU model, usable cores, Python implementation and version, OS, and whether
    the engine runs compiled (mypyc) or as plain Python."""
    from projections.engine import NATIVE

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"CPU {cpu_model()}, {cores} cores available (1 used), "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, "
            f"engine {'compiled with mypyc' if NATIVE else 'plain Python'}")
