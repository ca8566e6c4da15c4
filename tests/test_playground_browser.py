"""The playground end to end in a real headless Chromium, driven by Playwright for Python.

Uses the system's Chromium (Debian's ``chromium`` package) through ``executable_path``; no
browser is downloaded. Skips with the reason when Playwright or Chromium is missing, except
with ``EMBER_REQUIRE_BROWSER=1`` (CI), where a missing piece fails. ``EMBER_CHROMIUM`` may name
the browser binary. A screenshot is written under ``$EMBER_TEST_ARTIFACTS/playground`` (default:
``<temporary directory>/ember-test-artifacts/playground``), and the test prints where.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ember.playground import PlaygroundConfig, serve

pytestmark = pytest.mark.browser

# Spirals that a small net learns within a second of play (see tests/test_playground.py); the
# page opens on XOR with these settings, and the test then picks the spirals.
SETTINGS = {
    "dataset": "xor", "samples": 400, "noise": 0.05, "seed": 0, "batch_size": 16,
    "features": ["x1", "x2", "x1_sq", "x2_sq", "sin_x1", "sin_x2"], "hidden_layers": [12, 12],
}
TIMEOUT_MS = 20_000


def _unavailable(reason: str):
    if os.environ.get("EMBER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; EMBER_REQUIRE_BROWSER=1 forbids skipping the browser tests")
    pytest.skip(reason)


def _chromium() -> str | None:
    for candidate in (os.environ.get("EMBER_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium binary found (apt-get install chromium, or set EMBER_CHROMIUM)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server():
    running = serve(port=0)
    yield running
    running.stop()


@pytest.fixture
def open_page(browser, server):
    """open_page(query) -> a new tab on the playground, its console errors collected."""
    pages = []

    def opener(query: str = ""):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.goto(server.url + query)
        page.wait_for_function("document.body.dataset.step !== undefined")
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()


def query(**changes) -> str:
    return "?" + PlaygroundConfig.from_dict({**SETTINGS, **changes}).to_query()


def number(page, selector: str) -> float:
    return float(page.text_content(selector))


def wait_for_steps(page, condition: str) -> None:
    page.wait_for_function(f"(() => {{ const step = Number(document.body.dataset.step); "
                           f"return {condition}; }})()")


def remember_canvas(page) -> None:
    page.evaluate("""() => {
        const c = document.getElementById('boundary');
        window.__before = c.getContext('2d').getImageData(0, 0, c.width, c.height).data.slice();
    }""")


def changed_pixels(page) -> float:
    """The share of the boundary canvas's pixels that differ from the remembered ones."""
    return page.evaluate("""() => {
        const c = document.getElementById('boundary');
        const now = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let changed = 0;
        for (let i = 0; i < now.length; i += 4) {
            const d = Math.abs(now[i] - __before[i]) + Math.abs(now[i + 1] - __before[i + 1])
                + Math.abs(now[i + 2] - __before[i + 2]);
            if (d > 24) changed++;
        }
        return changed / (now.length / 4);
    }""")


def select_spirals(page) -> None:
    page.select_option("#dataset", "spirals")
    page.wait_for_function("document.body.dataset.query.startsWith('dataset=spirals')")
    wait_for_steps(page, "step === 0")


def test_play_trains_the_spirals_and_the_boundary_changes(open_page, capsys):
    page = open_page(query())
    select_spirals(page)
    assert parse_qs(urlparse(page.url).query)["dataset"] == ["spirals"]
    start_loss = number(page, "#test-loss")
    remember_canvas(page)
    page.click("#play")
    page.wait_for_selector("#play[data-playing='true']")
    wait_for_steps(page, "step > 150")
    page.click("#play")  # pause
    page.wait_for_selector("#play[data-playing='false']")
    paused_at = int(page.text_content("#steps"))
    loss = number(page, "#test-loss")
    assert 0 < loss < start_loss * 0.75, (start_loss, loss)
    assert changed_pixels(page) > 0.1
    assert float(page.text_content("#epoch")) > 150 / 13
    lines = page.eval_on_selector_all("#links line", "lines => lines.length")
    assert lines == 6 * 12 + 12 * 12 + 12  # one link per weight
    assert "epochs=" in page.text_content("#code")
    # Paused means paused: a step moves the counter by exactly one.
    page.click("#step-batch")
    wait_for_steps(page, f"step === {paused_at + 1}")
    default = Path(tempfile.gettempdir()) / "ember-test-artifacts"
    artifacts = Path(os.environ.get("EMBER_TEST_ARTIFACTS", default)) / "playground"
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "playground_spirals.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    with capsys.disabled():
        print(f"\nplayground screenshot: {shot}")
    assert page.problems == []


def test_step_batch_step_epoch_and_reset(open_page):
    page = open_page(query(dataset="spirals"))
    start_loss = page.text_content("#test-loss")
    remember_canvas(page)
    page.click("#step-batch")
    wait_for_steps(page, "step === 1")
    page.click("#step-epoch")  # finishes the epoch: 13 batches of 16 for 200 points
    wait_for_steps(page, "step === 13")
    assert page.text_content("#epoch") == "1.00"
    assert page.get_attribute("#play", "data-playing") == "false"
    for _ in range(5):
        page.click("#step-epoch")
    wait_for_steps(page, "step === 78")
    assert number(page, "#test-loss") < float(start_loss)
    assert changed_pixels(page) > 0.05
    page.click("#reset")
    wait_for_steps(page, "step === 0")
    assert page.text_content("#test-loss") == start_loss  # same seed, same start
    assert changed_pixels(page) == 0
    assert page.problems == []


def test_the_url_restores_the_configuration(open_page):
    page = open_page(query(dataset="circles"))
    page.fill("#hidden-layers", "5,3")
    page.select_option("#activation", "relu")
    page.fill("#learning-rate", "0.01")
    page.click("#feature-x1_x2")  # on
    page.click("#feature-x1_sq")  # off
    page.wait_for_function("document.body.dataset.query.includes('hidden_layers=5,3')"
                           " && document.body.dataset.query.includes('x1_x2')"
                           " && !document.body.dataset.query.includes('x1_sq')"
                           " && document.body.dataset.query.includes('learning_rate=0.01')")
    link = page.url
    config = PlaygroundConfig.from_query(urlparse(link).query)
    assert config.hidden_layers == (5, 3) and config.activation == "relu"
    assert config.learning_rate == 0.01
    assert config.features == ("x1", "x2", "x2_sq", "x1_x2", "sin_x1", "sin_x2")
    assert config.dataset == "circles" and config.noise == 0.05
    # A new tab opened on the link shows the same settings and trains on its own.
    other = open_page("?" + urlparse(link).query)
    wait_for_steps(other, "step === 0")
    assert other.url == link
    assert other.input_value("#hidden-layers") == "5,3"
    assert other.input_value("#activation") == "relu"
    assert other.input_value("#learning-rate") == "0.01"
    assert other.input_value("#dataset") == "circles"
    assert other.is_checked("#feature-x1_x2") and not other.is_checked("#feature-x1_sq")
    assert other.get_attribute("#links line", "stroke") is not None
    other.click("#step-epoch")
    wait_for_steps(other, "step > 0")
    assert page.text_content("#steps") == "0"  # the first tab did not move
    assert page.problems == [] and other.problems == []


def test_bad_input_shows_an_error_and_the_page_keeps_working(open_page):
    page = open_page(query(dataset="spirals"))
    assert page.is_hidden("#error")
    page.fill("#hidden-layers", "8,1000000")
    page.wait_for_selector("#error:visible")
    assert re.search(r"hidden_layers\[1\] must be an integer from 1 to 32 \(MAX_NEURONS\), "
                     r"got 1000000", page.text_content("#error"))
    page.fill("#hidden-layers", "8")
    page.fill("#learning-rate", "-1")
    page.wait_for_function("document.getElementById('error').textContent"
                           ".includes('learning_rate must be a finite number > 0')")
    page.evaluate("window.emberPlayground.sendRaw('{not json')")
    page.wait_for_function("document.getElementById('error').textContent"
                           ".includes('malformed JSON')")
    # A good setting clears the error and the page trains again.
    page.fill("#learning-rate", "0.03")
    page.wait_for_selector("#error", state="hidden")
    page.wait_for_function("document.body.dataset.query.includes('hidden_layers=8&')")
    page.click("#step-batch")
    wait_for_steps(page, "step === 1")
    # A link with an unknown name says so, and the page falls back to the defaults.
    broken = open_page("?dataset=spirals&activation=rleu")
    broken.wait_for_selector("#error:visible")
    assert "unknown activation 'rleu'. Did you mean 'relu'?" in broken.text_content("#error")
    assert page.problems == [] and broken.problems == []


def current_node(page) -> str:
    return page.get_attribute("#bp-frame .eg-node.current", "data-node")


def test_backprop_step_through_panel(open_page, capsys):
    page = open_page(query(hidden_layers=[3], features=["x1", "x2"]))
    wait_for_steps(page, "step === 0")
    assert page.is_hidden("#bp-frame")
    page.click("#backprop summary")  # opening the panel asks for the frames
    page.wait_for_function("document.getElementById('bp-counter').textContent"
                           ".startsWith('node 1 of ')")
    nodes = int(page.get_attribute("#backprop", "data-nodes"))
    assert nodes == 11  # see tests/test_playground.py: x; two Dense layers; the loss's 3 ops
    assert page.text_content("#bp-counter") == f"node 1 of {nodes}"
    assert current_node(page) == f"n{nodes - 1}"  # the loss first
    assert page.text_content("#bp-caption div").startswith(f"Step 1 of {nodes}: n{nodes - 1} ")
    assert "with the weights after step 0." in page.text_content("#bp-status")
    page.click("#bp-next")
    assert page.text_content("#bp-counter") == f"node 2 of {nodes}"
    second = current_node(page)
    assert second != f"n{nodes - 1}"
    assert page.text_content("#bp-caption div").startswith(f"Step 2 of {nodes}: {second} ")
    page.keyboard.press("ArrowRight")  # the focus is on Next, in the panel
    assert page.text_content("#bp-counter") == f"node 3 of {nodes}"
    assert current_node(page) not in (second, f"n{nodes - 1}")
    page.keyboard.press("ArrowLeft")
    assert current_node(page) == second
    page.click("#bp-last")
    assert page.text_content("#bp-counter") == f"node {nodes} of {nodes}"
    page.keyboard.press("Home")
    assert page.text_content("#bp-counter") == f"node 1 of {nodes}"
    page.click("#bp-next")
    default = Path(tempfile.gettempdir()) / "ember-test-artifacts"
    artifacts = Path(os.environ.get("EMBER_TEST_ARTIFACTS", default)) / "playground"
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "playground_backprop.png"
    page.locator("section.backprop").screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    with capsys.disabled():
        print(f"\nbackprop step-through screenshot: {shot}")
    # Training moves the weights on: the panel says so, and draws them again on request
    # (the button waits for the server's one-request-a-second turn).
    page.click("#step-batch")
    wait_for_steps(page, "step === 1")
    page.wait_for_selector("#bp-status.stale")
    page.click("#bp-refresh")
    page.wait_for_function("document.getElementById('bp-status').textContent"
                           ".includes('with the weights after step 1.')")
    assert page.text_content("#bp-counter") == f"node 1 of {nodes}"
    assert page.get_attribute("#bp-status", "class") == "bp-status"
    assert page.problems == []
