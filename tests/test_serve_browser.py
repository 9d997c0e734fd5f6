"""The page in a real browser: Debian's chromium, headless, driven by Selenium
through Debian's chromium-driver, against a real uvicorn process on 127.0.0.1.

Loads the page, types P_22, picks it from the autocomplete, checks that W_22's
versions are the marked rows (and drawn in the distance profile), clicks a
result to search from it, and uploads a generated file through the drop
zone's file input. ``COVERSEARCH_SCREENSHOT=docs/serve-page.png`` also saves
the results page there (the README's screenshot).
"""

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
selenium = pytest.importorskip("selenium")

from .conftest import write_generated_wav  # noqa: E402
from .test_serve import start_server, stop_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1180,1250", "--hide-scrollbars"]

pytestmark = pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)),
                                reason="Debian's chromium and chromium-driver are not installed "
                                       "(.ci/run installs them: apt-get install chromium chromium-driver)")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for f in FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        opts.add_argument(f)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _upload_file(tmp_path: Path, demo_index: Path) -> tuple[Path, str | None]:
    """A generated file to drop on the page: a new W_22 version as WAV when the
    audio stage is installed, else the h5 of P_461; and the perf id expected first (or None)."""
    try:
        import coversearch.audio  # noqa: F401
    except ImportError:
        from coversearch.index.bundle import load_bundle

        b = load_bundle(demo_index, load_index=False)
        out = tmp_path / "P_461_hpcp.h5"
        shutil.copyfile(Path(b.items.column("path")[b.row_of("P_461")].as_py()), out)
        return out, "P_461"
    return write_generated_wav(tmp_path / "new W_22 version.wav", "W_22", version=40, seconds=20), None


def test_page_search_autocomplete_results_upload(browser, demo_index, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    proc, url, log = start_server(demo_index)
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(url + "/")
        wait.until(EC.text_to_be_present_in_element((By.ID, "index-info"), "27 performances"))

        browser.find_element(By.ID, "q").send_keys("P_22")
        pick = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, '#suggest li[data-id="P_22"]')))
        pick.click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "query-title"), "P_22"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        assert len(rows) == 20  # the page asks for k=20 by default
        marked = [r for r in rows if "same" in r.get_attribute("class").split()]
        works = {r.get_attribute("data-id"): r.find_element(By.CSS_SELECTOR, "td.work").text for r in rows}
        assert len(marked) >= 6  # W_22 has 12 other versions among the 26
        assert all(r.find_element(By.CSS_SELECTOR, "td.work").text == "W_22" for r in marked)
        assert all(r.find_element(By.CSS_SELECTOR, "td.mark").text == "★" for r in marked)
        assert sum(w == "W_22" for w in works.values()) == len(marked)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#profile-svg line.version")) == 12
        assert "P_22" in browser.current_url  # the query is in the address (#P_22)
        shot = os.environ.get("COVERSEARCH_SCREENSHOT")
        browser.save_screenshot(str(tmp_path / "results.png"))
        if shot:
            browser.save_screenshot(shot)

        # a click on a result searches from it
        other = next(r for r in rows if r.get_attribute("data-id") != "P_22")
        oid = other.get_attribute("data-id")
        other.click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "query-title"), oid))

        # drop zone: the file input behind it (a real drag is not scriptable in headless chromium)
        f, expect_first = _upload_file(tmp_path, demo_index)
        browser.execute_script("document.getElementById('file').hidden = false;")
        browser.find_element(By.ID, "file").send_keys(str(f))
        wait.until(EC.text_to_be_present_in_element((By.ID, "progress-text"), "analysed in"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "query-title"), f.name))
        rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        assert len(rows) == 20
        if expect_first:
            assert rows[0].get_attribute("data-id") == expect_first
        else:  # a new version of W_22: its work's versions lead the list
            assert sum(r.find_element(By.CSS_SELECTOR, "td.work").text == "W_22" for r in rows[:5]) >= 3
        assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    finally:
        stop_server(proc)
