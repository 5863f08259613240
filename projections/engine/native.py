"""Whether the engine runs compiled (mypyc) and, if it is, that it was compiled from these sources.

`make` compiles the engine's hot modules (`COMPILED`) with mypyc into extension modules next to
their sources (`projections/engine/build_native.py`; about twice as fast, same code, same
results) and records the SHA-256 of each source it compiled in `_native.json`. Python imports an
extension module in preference to the `.py` beside it, so a module edited after the build would
silently run its old compiled code; `check` refuses that with an error naming the fix instead.
Without extension modules (no C compiler, `make clean-native`) the engine is plain Python.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

COMPILED = ("fx", "pricing", "timeline", "incremental")
"""The engine modules mypyc compiles (the others only define types and settings)."""
HERE = Path(__file__).parent
MANIFEST = "_native.json"


class StaleNativeEngine(ImportError):
    """The compiled engine was built from other sources than the ones in the tree."""


def source_digests(directory: Path = HERE) -> dict[str, str]:
    """SHA-256 of each compiled module's source in `directory`."""
    return {name: hashlib.sha256((directory / f"{name}.py").read_bytes()).hexdigest() for name in COMPILED}


def extensions(directory: Path = HERE) -> list[Path]:
    """The compiled modules present in `directory` (for this interpreter)."""
    return [directory / f"{name}{suffix}" for name in COMPILED
            for suffix in importlib.machinery.EXTENSION_SUFFIXES if (directory / f"{name}{suffix}").exists()]


def check(directory: Path = HERE) -> bool:
    """True when the engine in `directory` is compiled from its current sources, False when it is
    not compiled; raises `StaleNativeEngine` when compiled modules exist but are not those of the
    current sources."""
    if not extensions(directory):
        return False
    manifest = directory / MANIFEST
    built = json.loads(manifest.read_text()).get("sources", {}) if manifest.exists() else {}
    changed = sorted(name for name, digest in source_digests(directory).items() if built.get(name) != digest)
    if changed:
        raise StaleNativeEngine(
            f"projections/engine: the compiled engine (mypyc) is not built from the current "
            f"{', '.join(f'{name}.py' for name in changed)}: run `make native` to compile it again, "
            f"or `make clean-native` to run the engine as plain Python")
    return True
