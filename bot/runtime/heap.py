"""The garbage collector's policy for the long-running processes (`plusone serve` and `plusone worker`).

Python's full collection (generation 2) walks every tracked object, and after startup that is mostly what
never dies: imported modules, SQLAlchemy's mappers and compiled statements, Jinja2's templates. Measured in
`bench.bench_live` (4,000 shoppers, web and worker processes), each process ran three or four full passes
of 30 – 150 ms during the burst: a stall of every request and batch in that process, and most of the p99.

So, once a process has started, its heap is collected one last time and frozen (`gc.freeze`, as
Instagram's and gunicorn's users do before forking): later collections skip it. Objects made afterwards are
collected as usual, so nothing leaks that would not leak anyway.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then move every surviving object out of the collector's sight; how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
