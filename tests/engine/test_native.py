"""The compiled engine (mypyc, `projections.engine.native`): it computes exactly what the plain
Python engine computes, it is refused when its sources changed after the build, and `make test`
in CI runs it."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import projections.engine
from projections.engine.native import COMPILED, MANIFEST, StaleNativeEngine, check, source_digests

ENGINE = Path(projections.engine.__file__).parent

DIGEST_SCRIPT = """
import hashlib, json, sys
import msgspec
import projections.engine as engine
from bench.engine import group
from ledger.demo import generate_business
by_customer, fx = group(generate_business(seed=11, customers=2000, months=24))
digest = hashlib.sha256()
for cid in sorted(by_customer):
    digest.update(msgspec.json.encode(engine.compute_timeline(cid, by_customer[cid], engine.MrrSettings(), fx)))
print(json.dumps({"native": engine.NATIVE, "digest": digest.hexdigest(), "file": engine.timeline.__file__}))
"""


def run_digest(cwd: Path, path: list[Path]) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    done = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_compiled_and_the_plain_engine_compute_the_same_timelines(tmp_path):
    root = ENGINE.parents[1]
    pure = tmp_path / "projections"  # the package with only the engine's sources, nothing compiled
    (pure / "engine").mkdir(parents=True)
    shutil.copy(root / "projections" / "__init__.py", pure / "__init__.py")
    for source in ENGINE.glob("*.py"):
        shutil.copy(source, pure / "engine" / source.name)
    plain = run_digest(tmp_path, [tmp_path, root])
    here = run_digest(root, [root])
    assert plain["native"] is False and plain["file"].startswith(str(tmp_path))
    assert here["native"] is projections.engine.NATIVE
    assert plain["digest"] == here["digest"]


@pytest.mark.skipif(not os.environ.get("CI"), reason="outside CI the engine may be left plain Python")
def test_ci_runs_the_compiled_engine():
    assert projections.engine.NATIVE, "make test compiles the engine (make native); see its output"


def fake_build(directory: Path) -> None:
    for name in COMPILED:
        shutil.copy(ENGINE / f"{name}.py", directory / f"{name}.py")
    (directory / f"{COMPILED[0]}{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    (directory / MANIFEST).write_text(json.dumps({"sources": source_digests(directory)}))


def test_compiled_modules_built_from_other_sources_are_refused(tmp_path):
    for name in COMPILED:
        shutil.copy(ENGINE / f"{name}.py", tmp_path / f"{name}.py")
    assert check(tmp_path) is False  # nothing compiled: plain Python
    fake_build(tmp_path)
    assert check(tmp_path) is True
    with (tmp_path / "timeline.py").open("a") as f:
        f.write("\n# edited after the build\n")
    with pytest.raises(StaleNativeEngine, match=r"current timeline\.py: run `make native`"):
        check(tmp_path)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(StaleNativeEngine, match="fx.py, incremental.py, pricing.py, timeline.py"):
        check(tmp_path)
    assert hashlib.sha256((tmp_path / "fx.py").read_bytes()).hexdigest() == source_digests(tmp_path)["fx"]
