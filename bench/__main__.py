"""`python -m bench [engine|projector|worker|ingest|replay] [options]`: run one benchmark (default: engine).

`python -m bench` alone (what `make bench` runs) runs the engine benchmark with its defaults
(see `bench.engine`); `python -m bench projector --events N` the projector one
(`bench.projector`), `python -m bench worker …` the worker one (`bench.worker`),
`python -m bench ingest …` the HTTP ingest API one (`bench.ingest`), `python -m bench replay …`
the replay one against its read ceiling (`bench.replay`).
"""

import sys

BENCHMARKS = ("engine", "projector", "worker", "ingest", "replay")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    name = args.pop(0) if args and args[0] in BENCHMARKS else "engine"
    if name == "projector":
        from bench.projector import main as run
    elif name == "worker":
        from bench.worker import main as run
    elif name == "ingest":
        from bench.ingest import main as run
    elif name == "replay":
        from bench.replay import main as run
    else:
        from bench.engine import main as run
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
