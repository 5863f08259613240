"""`python -m bench [suite|engine|projector|worker|ingest|replay] [options]`: run the benchmark
suite (the default) or one benchmark.

`python -m bench` alone, or `python -m bench suite …` (what `make bench` runs), runs the whole
suite (`bench.suite`: every path at several ledger sizes, results in `bench/results/`);
`python -m bench engine` the engine one alone (`bench.engine`),
`python -m bench projector --events N` the projector one
(`bench.projector`), `python -m bench worker …` the worker one (`bench.worker`),
`python -m bench ingest …` the HTTP ingest API one (`bench.ingest`), `python -m bench replay …`
the replay one against its read ceiling (`bench.replay`).
"""

import sys

BENCHMARKS = ("suite", "engine", "projector", "worker", "ingest", "replay")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    name = args.pop(0) if args and args[0] in BENCHMARKS else "suite"
    if name == "engine":
        from bench.engine import main as run
    elif name == "projector":
        from bench.projector import main as run
    elif name == "worker":
        from bench.worker import main as run
    elif name == "ingest":
        from bench.ingest import main as run
    elif name == "replay":
        from bench.replay import main as run
    else:
        from bench.suite import main as run
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
