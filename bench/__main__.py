"""`python -m bench`: run the engine benchmark with its defaults (see `bench.engine`)."""

from bench.engine import main

if __name__ == "__main__":
    raise SystemExit(main())
