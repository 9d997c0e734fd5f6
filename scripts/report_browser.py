"""Open a report page in headless Chromium: check that every figure renders
(no broken image) and the console has no error, and save a screenshot of the
first screen.

    python scripts/report_browser.py reports/default/report.html --screenshot docs/report.png

Needs Debian's ``chromium`` and ``chromium-driver`` (apt-get install -y
chromium chromium-driver) and the ``selenium`` package. Exits 1 with one line
per problem when a figure is broken or the console reports an error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def check_page(html: str | Path, screenshot: str | Path | None = None, *, width: int = 1280,
               height: int = 900) -> dict:
    """Load ``html`` in headless Chromium; count images, broken images and console errors.

    Returns:
        ``{"images": int, "broken": [alt, ...], "errors": [message, ...], "title": str}``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(a)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        opts.binary_location = binary
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver")
    drv = webdriver.Chrome(options=opts, service=Service(driver_path) if driver_path else None)
    try:
        drv.set_page_load_timeout(60)
        drv.get(Path(html).resolve().as_uri())
        imgs = drv.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
        broken = [alt for alt, done, w, h in imgs if not done or w == 0 or h == 0]
        errors = [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        if screenshot:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            drv.save_screenshot(str(screenshot))
        return {"images": len(imgs), "broken": broken, "errors": errors, "title": drv.title}
    finally:
        drv.quit()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html")
    ap.add_argument("--screenshot", default=None)
    a = ap.parse_args(argv)
    r = check_page(a.html, a.screenshot)
    print(f"{r['images']} images, {len(r['broken'])} broken, {len(r['errors'])} console errors ({r['title']})")
    for b in r["broken"]:
        print(f"broken image: {b}")
    for e in r["errors"]:
        print(f"console error: {e}")
    return 1 if r["broken"] or r["errors"] or not r["images"] else 0


if __name__ == "__main__":
    sys.exit(main())
