"""Render a Prefect UI page in headless Chromium (driven by Selenium) and save a screenshot.

Used to show — and, in tests, to check — that a finished flow run and its report artifact are visible:

    python infra/ui_screenshot.py --url http://127.0.0.1:4200/runs/flow-run/<id>?tab=Artifacts \
        --expect Completed --expect retrain-pool-report --out runs/ui.png

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-tool``) and ``selenium`` (test extra).
The flags keep Chromium off the network (this machine's closed network otherwise refuses its background
connections many times a second) and let it run as root in a container.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1400,1000"]


def screenshot(url: str, out: str, expect: list[str], timeout_s: float = 60.0) -> str:
    """Load ``url``, wait until the page text holds every string in ``expect`` (the UI renders client-side),
    save a PNG to ``out`` and return the page text. Raises TimeoutError naming what never appeared."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="winnow-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    try:
        driver.get(url)
        deadline, text = time.time() + timeout_s, ""
        while time.time() < deadline:
            text = driver.find_element(By.TAG_NAME, "body").text
            if all(e in text for e in expect):
                break
            time.sleep(0.5)
        else:
            missing = [e for e in expect if e not in text]
            driver.save_screenshot(out)
            raise TimeoutError(f"{url}: {missing} not shown after {timeout_s:.0f} s (screenshot: {out})")
        time.sleep(1.0)  # let charts and fonts settle before the picture
        driver.save_screenshot(out)
        return text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--expect", action="append", default=[], help="text the page must show (repeatable)")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    try:
        screenshot(args.url, args.out, args.expect, args.timeout)
    except TimeoutError as e:
        sys.exit(f"error: {e}")
    print(args.out)


if __name__ == "__main__":
    main()
