"""`bot.runtime.heap`: the startup heap is frozen out of later collections, and what is made afterwards is still
collected. Run in a child interpreter: freezing pytest's own heap would outlive this test."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import gc, weakref
    from bot.runtime.heap import freeze_startup_heap

    class Node:
        pass

    before = Node()
    before.self = before          # a cycle that exists at startup: frozen, never walked again
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() > 1000, frozen
    assert not any(o is before.__dict__ for o in gc.get_objects()), "startup objects are still walked"

    after = Node()
    after.self = after            # garbage made after startup: the collector still frees it
    gone = weakref.ref(after)
    del after
    gc.collect()
    assert gone() is None, "a cycle made after the freeze was not collected"
    print("ok")
    """
)


def test_freezing_hides_the_startup_heap_and_still_collects_later_garbage() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
