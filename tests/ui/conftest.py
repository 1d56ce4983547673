"""A real ``loopline server`` over the demo's store, and headless Chromium driving the UI.

- ``ui_home`` (package): a store filled by ``python -m loopline.demo`` (real
  scikit-learn models on the bundled breast cancer data), ``_fill.py`` and
  ``_fill_ops.py`` (pipeline runs, a deployment served for real, a monitor's runs).
- ``ui_url`` (package): the base URL of a server subprocess over that store.
- ``browser_context`` (package): Debian's Chromium (``/usr/bin/chromium``; Playwright's
  own download does not work here) with a fresh profile, driven by Playwright.
- ``page`` (function): a new tab that fails the test on any console error or
  uncaught exception; ``shoot(page, name)`` writes a screenshot to ``out/ui-screenshots``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e.conftest import ServerProcess
from loopline.server.ui import STATIC_DIR
from ui.chromium import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import BrowserContext, Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "ui-screenshots"
_CLIENT_VARS = ("LOOPLINE_TRACKING_URI", "LOOPLINE_ARTIFACTS_URI", "LOOPLINE_TRACKING_TOKEN")


def _fill(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_VARS}
    env["LOOPLINE_HOME"] = str(home)
    here = Path(__file__).parent
    for args in (["-m", "loopline.demo"], [str(here / "_fill.py")], [str(here / "_fill_ops.py")]):
        done = subprocess.run(
            [sys.executable, *args], env=env, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="package")
def ui_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail("the web UI is not built: run `make ui` (needs node and npm)")
    home = tmp_path_factory.mktemp("ui-home")
    _fill(home)
    return home


@pytest.fixture(scope="package")
def ui_url(ui_home: Path) -> Iterator[str]:
    server = ServerProcess(ui_home)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is missing: `make ui` installs it (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


class ConsoleErrors(list[str]):
    """What the page reported as errors; a test may forget the ones it caused on purpose."""


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    tab = browser_context.new_page()
    errors = ConsoleErrors()
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    tab.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield tab
        assert list(errors) == [], f"the page logged errors: {list(errors)}"
    finally:
        tab.close()


def shoot(page: Page, name: str, **options: Any) -> Path:
    """A screenshot of the page as it is, for people to look at (out/ui-screenshots)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path
