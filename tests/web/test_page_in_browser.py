"""The live view's page in a real browser (Chromium driven by Playwright): it loads, each source's video updates,
its numbers change, and the browser's console shows no errors."""
from __future__ import annotations

import os
import shutil
import time

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python (test extra)")
CHROMIUM = os.environ.get("POSE_STREAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install -y chromium)")


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _texts(page, selector: str) -> list[str]:
    return [el.inner_text() for el in page.query_selector_all(selector)]


def test_page_shows_every_source_live_without_errors(served, browser):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(served.url)
    page.wait_for_selector(".card img")
    page.wait_for_function("document.querySelectorAll('.card').length === 2 && "
                           "[...document.querySelectorAll('.card img')].every(i => i.naturalWidth === 320)")
    assert _texts(page, ".card .name") == ["cam0", "cam1"]
    assert _texts(page, ".card .state") == ["streaming", "streaming"]
    frames_before = _texts(page, ".card .frames")
    shots_before = [img.screenshot() for img in page.query_selector_all(".card img")]
    time.sleep(1.5)
    frames_after = _texts(page, ".card .frames")
    shots_after = [img.screenshot() for img in page.query_selector_all(".card img")]
    assert all(int(a) > int(b) for a, b in zip(frames_after, frames_before))  # the numbers change
    assert all(a != b for a, b in zip(shots_after, shots_before))             # the videos move
    assert all(float(fps) > 0 for fps in _texts(page, ".card .fps"))
    assert _texts(page, ".card .people") == ["3", "3"]
    assert "FPS in all" in page.inner_text("#overall")
    page.close()
    assert problems == []


def test_three_tabs_at_once_and_closing_them_ends_their_streams(served, browser):
    context = browser.new_context()
    pages = [context.new_page() for _ in range(3)]
    for page in pages:
        page.goto(served.url)
    for page in pages:
        page.wait_for_function("[...document.querySelectorAll('.card img')].length === 2 && "
                               "[...document.querySelectorAll('.card img')].every(i => i.naturalWidth === 320)")
    assert served.server.streams == 6
    context.close()
    end = time.monotonic() + 10
    while served.server.streams and time.monotonic() < end:
        time.sleep(0.05)
    assert served.server.streams == 0
