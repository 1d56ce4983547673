"""The web UI against ``loopline server`` with authentication on.

A store with one administrator (``loopline users create``) and a tracked run; a
fresh Chromium profile signs in on the login page, sees the runs, creates an
experiment (a POST the server only accepts with the session's CSRF header), and
logs out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from e2e.conftest import ServerProcess
from ui.conftest import shoot

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.timeout(120)

PASSWORD = "a long password for the browser"
_FILL = """
import loopline
loopline.set_experiment("guarded")
with loopline.start_run(run_name="behind-the-login"):
    loopline.log_metric("auc", 0.9)
"""


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture(scope="module")
def auth_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("ui-auth-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env["LOOPLINE_HOME"] = str(home)
    for argv, stdin in (
        (["-c", _FILL], None),
        (
            ["-m", "loopline.cli.main", "users", "create", "ana", "--admin", "--password-stdin"],
            PASSWORD,
        ),
    ):
        done = subprocess.run(
            [sys.executable, *argv],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOPLINE_AUTH", "1")  # read by the server process at start
        server = ServerProcess(home)
    try:
        assert httpx.get(f"{server.url}/api/v1/experiments").status_code == 401
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def fresh_page(browser_context: BrowserContext) -> Iterator[Page]:
    """A tab with no cookies before or after: a session must not leak into other tests."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    tab.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield tab
        assert errors == [], f"the page logged errors: {errors}"
    finally:
        tab.close()
        browser_context.clear_cookies()


def test_login_runs_csrf_protected_change_and_logout(fresh_page: Page, auth_url: str) -> None:
    page = fresh_page
    page.goto(f"{auth_url}/experiments")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fexperiments"))
    # Asking who is signed in answers 401 before the login: the browser logs that itself.
    page.console_errors.clear()  # type: ignore[attr-defined]

    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.console_errors.clear()  # type: ignore[attr-defined]

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    expect(page).to_have_url(re.compile(r"/experiments$"))
    expect(page.locator(".who")).to_contain_text("ana")
    table = page.get_by_test_id("experiments")
    expect(table).to_contain_text("guarded")
    table.get_by_role("link", name="guarded").click()
    expect(page.get_by_test_id("run-count")).to_have_text(re.compile(r"^1 run"))
    expect(page.get_by_test_id("runs-grid")).to_contain_text("behind-the-login")
    shoot(page, "login-runs")

    # The session cookie alone does not make a change: the CSRF header must come with it.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    refused = httpx.post(f"{auth_url}/api/v1/experiments", json={"name": "forged"}, cookies=cookies)
    assert refused.status_code == 403, refused.text
    page.goto(f"{auth_url}/experiments")
    page.get_by_label("New experiment name").fill("made-behind-the-login")
    page.get_by_role("button", name="Create").click()
    expect(table).to_contain_text("made-behind-the-login")
    assert "forged" not in table.inner_text()

    page.get_by_role("button", name="log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    assert httpx.get(f"{auth_url}/api/v1/experiments", cookies=cookies).status_code == 401
    page.goto(f"{auth_url}/runs")
    expect(page).to_have_url(re.compile(r"/login"))
    page.console_errors.clear()  # type: ignore[attr-defined]
