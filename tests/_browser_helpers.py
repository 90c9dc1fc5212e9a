"""Helpers of the browser tests: Debian's headless chromium driven by selenium.

``CHROMIUM`` and ``DRIVER`` are None where they are not installed (the tests then skip,
saying why); ``ARTIFACTS`` is where screenshots go; :func:`chromium` starts a headless
browser that logs its console and its network (DevTools performance log).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[1] / "var" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"


def chromium() -> Any:
    """A headless chromium (selenium WebDriver) with console and network logging; quit it after use."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1600", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(executable_path=str(DRIVER)))


def requested_urls(driver: Any) -> list[str]:
    """Every URL the browser asked for since the last call (drains the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """Console entries at level SEVERE or ERROR since the last call (drains the browser log)."""
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
