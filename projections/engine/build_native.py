"""Compile the engine's hot modules with mypyc, in place (`make native`; `make` runs it).

    .venv/bin/python projections/engine/build_native.py

Run as a script, not imported through the package: importing `projections.engine` would load
(and check) the very modules being rebuilt. The extension modules land next to their sources,
with the shared runtime library as `projections/_engine_native__mypyc` (outside
`projections.engine`, whose import would otherwise be circular), and `_native.json` records the
digests of the sources compiled (`projections.engine.native`). Exits non-zero if compiling fails;
the engine then stays plain Python.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from native import COMPILED, HERE, MANIFEST, extensions, source_digests  # noqa: E402  (the sibling module, not the package)


def main() -> int:
    from mypyc.build import mypycify
    from setuptools import setup

    os.chdir(ROOT)
    for stale in [*extensions(HERE), *ROOT.joinpath("projections").glob("_engine_native__mypyc*")]:
        stale.unlink()
    (HERE / MANIFEST).unlink(missing_ok=True)
    digests = source_digests(HERE)  # before compiling: an edit during the build is caught later
    modules = [f"projections/engine/{name}.py" for name in COMPILED]
    try:
        setup(name="mrr-engine-native", py_modules=[], packages=[],
              ext_modules=mypycify(["--ignore-missing-imports", *modules],
                                   separate=[(modules, "projections._engine_native")]),
              script_args=["--quiet", "build_ext", "--inplace", "--build-temp", "build/native"])
    except BaseException:
        for partial in extensions(HERE):  # no half-built engine: plain Python instead
            partial.unlink()
        raise
    (HERE / MANIFEST).write_text(json.dumps({"sources": digests}, indent=1) + "\n")
    print(f"compiled {', '.join(COMPILED)} with mypyc", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
