"""Whether and where the browser tests write their screenshots.

Only when asked: `TEST_SCREENSHOTS=DIR` writes them into DIR. A full-page PNG costs Chromium a few hundred
milliseconds of CPU, several hundred times a run, so `make test` takes none and leaves the working tree as
it found it. The pictures the docs show (`docs/screenshots/`, and `docs/screenshots/demo/` from the demo
shop's walk) are refreshed on purpose: `TEST_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests -k
browser`. A test reads `SHOOTING` to know whether to take them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SHOOTING = bool(os.environ.get("TEST_SCREENSHOTS"))
SCREENSHOTS = Path(os.environ.get("TEST_SCREENSHOTS") or Path(tempfile.gettempdir()) / "plusone-screenshots").resolve()
