"""Where the browser tests write their screenshots.

A test run leaves the working tree as it found it: by default they go to a folder under the system's
temporary directory (printed nowhere; look there after a failure). The pictures the docs show
(`docs/screenshots/`, and `docs/screenshots/demo/` from the demo shop's walk) are refreshed on purpose:
`TEST_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/ -k browser`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SCREENSHOTS = Path(os.environ.get("TEST_SCREENSHOTS") or Path(tempfile.gettempdir()) / "plusone-screenshots").resolve()
