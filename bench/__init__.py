"""Benchmarks. `python -m bench` (what `make bench` runs) runs the engine benchmark."""
