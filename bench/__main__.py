"""`python -m bench` (or `make bench`): run every benchmark in turn, each printing its own figures."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "bench.bench_webhook",
    "bench.bench_parser",
    "bench.bench_live",
    "bench.bench_graph",
    "bench.bench_funnel",
    "bench.bench_segments",
    "bench.bench_dashboard",
]


def main() -> int:
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        module = importlib.import_module(name)
        sys.argv = [name]
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
