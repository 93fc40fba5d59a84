"""A real headless Chromium for the tests that check pages in a browser (restore report's
page, restore serve's app): Debian's ``chromium`` driven through ``chromium-driver`` by
Selenium, with its network and console logs on.

Selenium + chromedriver rather than raw DevTools: one pip package, the W3C WebDriver API
for clicks and drags (real pointer events), and the DevTools network log still at hand
through the ``performance`` log. Nothing is downloaded: both programs must be installed
(``apt-get install chromium chromium-driver``, as .ci/run does); where they are not, the
tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def _installed(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def skip_reason() -> str | None:
    """Why no browser test can run here, or None when one can."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[dev]')"
    if _installed(BROWSERS) is None:
        return "no Chromium installed (apt-get install chromium chromium-driver; .ci/run does it)"
    if _installed(DRIVERS) is None:
        return "no chromedriver installed (apt-get install chromium-driver)"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver with the performance (DevTools network) and browser
    (console) logs on; quit on exit. Skips the test where none can be started."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager: no usage statistics sent
    options = webdriver.ChromeOptions()
    options.binary_location = _installed(BROWSERS)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--allow-file-access-from-files", "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=_installed(DRIVERS)))
    except WebDriverException as error:
        pytest.skip(f"Chromium did not start: {error.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked for since the last call, from the DevTools network log
    (``Network.requestWillBeSent``) and the page's own resource timing entries."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    urls += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return urls


def outside_requests(driver: Any) -> list[str]:
    """The requested URLs that leave the machine's file system (anything but file:, data:...)."""
    return [url for url in requested_urls(driver) if not url.startswith(LOCAL_SCHEMES)]


def script_errors(driver: Any) -> list[str]:
    """Console messages of level SEVERE (script errors, refused loads) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
