"""The HTML screen report in a real browser: headless Chromium shows the table and every figure.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium and chromium-driver).
Without them the test fails rather than skips: a skipped browser check would pass silently.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from emoloom.report import write_report

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unit_fixtures():
    """tests/unit/test_report.py, for its `make_screen` (tests/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "unit" / "test_report.py"
    spec = importlib.util.spec_from_file_location("report_screen_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def browser(tmp_path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    assert not missing, (
        f"the browser test needs {', '.join(missing)} (apt: chromium chromium-driver)"
    )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1200,900", f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def assert_real_picture(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width > 10 and image.height > 10
    assert any(low != high for low, high in image.getextrema())  # not one uniform colour


def test_report_shows_the_leaderboard_and_every_figure_in_headless_chromium(browser, tmp_path):
    fixtures = unit_fixtures()
    screen = fixtures.make_screen(tmp_path)
    paths = write_report(screen)
    browser.get(paths.html.as_uri())

    table = browser.find_element(By.ID, "leaderboard")
    assert table.is_displayed()
    body_rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(body_rows) == len(fixtures.DONE) + 1  # the incomplete candidate is listed too
    assert body_rows[-1].find_elements(By.TAG_NAME, "td")[1].text == fixtures.INCOMPLETE

    figures = browser.execute_script(
        "return Array.from(document.querySelectorAll('img.figure'),"
        " img => [img.dataset.candidate, img.dataset.kind, img.complete, img.naturalWidth]);"
    )
    assert len(figures) == len(fixtures.FIGURES) * len(fixtures.DONE)
    broken = [(name, kind) for name, kind, complete, width in figures if not complete or width <= 0]
    assert not broken, f"figures that did not decode: {broken}"
    # the page is self-contained: nothing was fetched over the network
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    assert not [url for url in fetched if url.startswith(("http:", "https:"))]

    assert_real_picture(table.screenshot_as_png)
    figure = browser.find_element(By.CSS_SELECTOR, 'img.figure[data-kind="confusion"]')
    browser.execute_script("arguments[0].scrollIntoView();", figure)
    assert figure.is_displayed()
    assert_real_picture(figure.screenshot_as_png)
