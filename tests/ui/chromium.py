"""How the browser tests and the UI benchmark start Chromium (standard library only).

Debian's Chromium: Playwright's own browser download does not work here. Without
the network switches Chromium keeps calling hosts this machine cannot reach.
"""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("LOOPLINE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
