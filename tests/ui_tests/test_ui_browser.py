"""The web app in a real browser: Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("STREAMING_ENGINEER_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 90_000


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1400}, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        context.close()
        browser.close()


def _send(page, text: str) -> None:
    box = page.locator("#se-input textarea")
    box.fill(text)
    box.press("Enter")


def test_browser_runs_a_command_answers_downloads_and_rates(page, ui_server, tmp_path, capsys):
    page.goto(ui_server.url)
    page.locator("#se-chat").get_by_text("*kb-mode").first.wait_for()  # the greeting and the command list
    page.locator("#se-status").get_by_text("commands").wait_for()

    # A clickable menu: choosing entry 2 of the command list enters kb-mode.
    page.locator("#se-menu label").filter(has_text="kb-mode").first.click()
    page.locator("#se-status").get_by_text("kb-mode").wait_for()

    # A task command, its first question answered with the default button, the rest with #yolo.
    _send(page, "*kafka-connector")
    page.locator("#se-chat").get_by_text("Waiting for your answer").last.wait_for()
    page.locator("#se-task").get_by_text("0 of").wait_for()
    page.locator("#se-default").click()
    page.locator("#se-task").get_by_text("1 of").wait_for()
    _send(page, "#yolo")
    page.locator("#se-task").get_by_text("No task running").wait_for()
    page.locator("#se-chat").get_by_text("kafka-connector.md").first.wait_for()

    # Preview the document and download it.
    page.locator("#se-files input").click()
    page.get_by_role("option", name="docs/streaming/kafka-connector.md").click()
    page.locator("#se-preview-md").get_by_text("Kafka").first.wait_for()
    with page.expect_download() as info:
        page.locator("#se-download").click()
    saved = tmp_path / "kafka-connector.md"
    info.value.save_as(saved)
    assert "Kafka" in saved.read_text(encoding="utf-8")

    # Thumbs up on the last answer is saved with its turn.
    feedback = ui_server.home / "feedback" / "feedback.jsonl"
    before = len(feedback.read_text(encoding="utf-8").splitlines()) if feedback.exists() else 0
    page.locator("#se-chat button[aria-label='Like']").last.click()
    for _ in range(50):
        if feedback.exists() and len(feedback.read_text(encoding="utf-8").splitlines()) > before:
            break
        page.wait_for_timeout(200)
    record = json.loads(feedback.read_text(encoding="utf-8").splitlines()[-1])
    assert record["rating"] == "up" and record["input"] == "#yolo" and "kafka-connector.md" in record["output"]

    shot = tmp_path / "streaming-engineer-ui.png"
    page.screenshot(path=str(shot))
    with capsys.disabled():
        print(f"\nscreenshot of the app: {shot}")
    assert shot.stat().st_size > 10_000
