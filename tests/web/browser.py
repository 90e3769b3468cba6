"""A real headless Chromium for the page tests: Debian's `chromium` and `chromium-driver`
driven by Selenium, which is pointed at them and never downloads anything.

`missing_browser()` says why the tests cannot run here (None when they can); `chromium()`
starts a browser with the flags a closed network needs and a fresh profile.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable, Optional

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,760",
)
WAIT = 15.0  # seconds any one page condition may take


def missing_browser() -> Optional[str]:
    """Why the browser tests cannot run (None when they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (a dev dependency: poetry install)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return (
                f"{path} is missing: apt-get install chromium chromium-driver "
                f"(the Debian package {package}; .ci/run installs it)"
            )
    return None


def chromium(profile_dir: Optional[str] = None) -> Any:
    """A headless Chromium (a `selenium.webdriver.Chrome`); `quit()` it when done."""
    # Selenium Manager must not look for (or download) a browser or a driver
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir or tempfile.mkdtemp(prefix='chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    """Waits (at most `timeout` s) until `condition(driver)` is true; fails naming `what`
    and the page's console otherwise."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"the page never showed {what} within {timeout} s{console(driver)}"
        ) from None


def console(driver: Any) -> str:
    """The page's console messages, for failure reports."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # not every driver keeps them
        return ""
    lines = [f"  {e.get('level')}: {e.get('message')}" for e in entries]
    return ("\nbrowser console:\n" + "\n".join(lines)) if lines else ""


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)
