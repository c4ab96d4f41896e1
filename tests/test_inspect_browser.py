"""The inspect page in a real browser: headless Chromium driven by selenium, the page opened from file://.

It picks a unit, runs a pattern search, hovers a character, selects a stretch of text and clicks a saturation
dot, and checks the DOM against the values decoded in Python from the same page (tests/test_inspect.py checks
those against the model's forward pass). Skipped only when Chromium or ChromeDriver is not installed.
"""
import os
import re
import shutil

import numpy as np
import pytest

from inspect_runs import QUOTE_PATTERN, quote_text, train_run
from lstmlab.apps.inspect import decode, most_active, pattern_signal, rank_units, read_page, top_contexts
from lstmlab.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=(
    f"needs headless Chromium and ChromeDriver; missing: {', '.join(MISSING)} "
    "(apt-get install chromium chromium-driver; .ci/run installs them)"))

# The network is closed: nothing may phone home, and no profile is reused.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A 2 x LSTM(12) trained 300 steps on quoted text, its page on held-out text, and the decoded values."""
    root = tmp_path_factory.mktemp("browser")
    text = quote_text(20000)
    (root / "corpus.txt").write_text(text)
    train_run(root / "run", text, layers=2, units=12, steps=300, corpus=root / "corpus.txt")
    held = quote_text(1500, seed=3)
    (root / "held.txt").write_text(held)
    out = root / "page.html"
    assert main(["inspect", str(root / "run"), "--text", str(root / "held.txt"), "--out", str(out)]) == 0
    meta, blobs = read_page(out.read_text(encoding="utf-8"))
    return out, held, meta, decode(meta, blobs)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('profile')}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield d
    d.quit()


def _fmt(x: float) -> str:  # the page's number format: 3 decimals, a real minus sign
    return ("\u2212" if x < 0 else "") + f"{abs(x):.3f}"


def _show(token: str) -> str:  # how the tooltip shows a token
    return {"\n": "\u21b5", "\t": "\u21e5", " ": "\u2423"}.get(token, token).strip()


def _colour(v: float, max_abs: float):
    """The background the page gives a cell value (diverging scale, scaled by the unit's largest |c|)."""
    k = max(0, min(255, round((v / max_abs + 1) * 127.5 + 1e-9)))
    d = 2 * k / 255 - 1
    return (214, 47, 39) if d >= 0 else (33, 102, 172), round(0.85 * abs(d), 3)


def _rgba(css: str):
    nums = [float(x) for x in re.findall(r"[\d.]+", css)]
    return tuple(int(x) for x in nums[:3]), (nums[3] if len(nums) > 3 else 1.0)


def _check_colours(driver, values, steps):
    """The spans at ``steps`` have the colours of ``values`` (one unit's c over the text); Chromium keeps an
    alpha in 8 bits and prints it with 2 or 3 decimals, hence the tolerance."""
    css = driver.execute_script("const s = document.querySelectorAll('#text span');"
                                "return arguments[0].map(k => s[k].style.backgroundColor);", list(steps))
    max_abs = max(np.abs(values).max(), 1e-12)
    for k, c in zip(steps, css):
        rgb, alpha = _rgba(c)
        want_rgb, want_alpha = _colour(values[k], max_abs)
        assert abs(alpha - want_alpha) < 6e-3 and (rgb == want_rgb or want_alpha == 0), (k, c, values[k])


def test_page_in_chromium(page, driver, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    path, text, meta, vals = page
    T = len(text)
    driver.get(path.as_uri())
    assert driver.execute_script("return !!window.lstmlabInspect")
    spans = driver.find_elements(By.CSS_SELECTOR, "#text span")
    assert len(spans) == T
    assert driver.execute_script("return document.querySelectorAll('#text span[style*=background]').length") == T
    probe = list(range(0, T, 37))
    _check_colours(driver, vals["layers"][0]["c"][:, 0], probe)  # opens on layer 1, unit 0, cell c

    # pick a unit by typing it
    unit_box = driver.find_element(By.ID, "unit")
    unit_box.clear()
    unit_box.send_keys("5\n")
    assert driver.execute_script("return window.lstmlabInspect.state.units[0]") == 5
    _check_colours(driver, vals["layers"][0]["c"][:, 5], probe)
    high, low = top_contexts(vals["layers"][0]["c"][:, 5], k=5, spacing=20)
    shown = [int(li.get_attribute("data-step")) for li in driver.find_elements(By.CSS_SELECTOR, "#ctx-high li")]
    assert shown == high
    shown = [int(li.get_attribute("data-step")) for li in driver.find_elements(By.CSS_SELECTOR, "#ctx-low li")]
    assert shown == low

    # pattern search: the ranked units are Python's ranking of the page's own values
    box = driver.find_element(By.ID, "pattern")
    box.clear()
    box.send_keys(QUOTE_PATTERN)
    driver.find_element(By.ID, "run-search").click()
    items = driver.find_elements(By.CSS_SELECTOR, "#ranked li")
    assert len(items) == 12  # every unit of the layer, best first
    want = rank_units(pattern_signal(text, QUOTE_PATTERN), vals["layers"][0]["c"], k=12)
    got = [(int(li.get_attribute("data-unit")), float(li.get_attribute("data-score"))) for li in items]
    assert [u for u, _ in got] == [u for u, _ in want]
    assert np.allclose([r for _, r in got], [r for _, r in want], atol=1e-9)
    assert "inside a match" in driver.find_element(By.ID, "search-note").text
    items[0].click()  # the top unit becomes the current one
    top = want[0][0]
    assert driver.execute_script("return window.lstmlabInspect.state.units[0]") == top
    assert "current" in items[0].get_attribute("class")
    _check_colours(driver, vals["layers"][0]["c"][:, top], probe)

    # position in line (a preset): Python's ranking again
    driver.find_element(By.CSS_SELECTOR, '.presets button[data-signal="line-position"]').click()
    want_line = rank_units(pattern_signal(text, "", mode="line-position"), vals["layers"][0]["c"], k=12)
    got_line = [int(li.get_attribute("data-unit")) for li in driver.find_elements(By.CSS_SELECTOR, "#ranked li")]
    assert got_line == [u for u, _ in want_line]
    assert "position in line" in driver.find_element(By.ID, "search-note").text

    # colour by another quantity: the forget gate, on the sequential scale of [0, 1]
    Select(driver.find_element(By.ID, "quantity")).select_by_value("f")
    f = vals["layers"][0]["f"][:, top]
    css = driver.execute_script("const s = document.querySelectorAll('#text span');"
                                "return arguments[0].map(k => s[k].style.backgroundColor);", probe)
    for k_, c in zip(probe, css):
        rgb, alpha = _rgba(c)
        assert rgb == (33, 102, 172) and abs(alpha - round(0.85 * round(f[k_] * 255) / 255, 3)) < 6e-3, (k_, c)
    Select(driver.find_element(By.ID, "quantity")).select_by_value("c")

    # hover a character: the tooltip shows the seven values, the top-5 predictions and the surprisal
    k = text.index('"', 50) + 2  # inside a quote
    ActionChains(driver).move_to_element(spans[k]).perform()
    tip = driver.find_element(By.ID, "tooltip")
    assert tip.is_displayed()
    for q in ("i", "f", "g", "c", "tc", "o", "h"):
        cell = tip.find_element(By.CSS_SELECTOR, f'td[data-q="{q}"]')
        assert cell.text == _fmt(vals["layers"][0][q][k, top]), q
    preds = tip.find_elements(By.CSS_SELECTOR, "table.preds tr")
    assert len(preds) == 5
    for j, row in enumerate(preds):
        ch, prob = row.find_elements(By.TAG_NAME, "td")
        assert ch.text == _show(meta["vocab"][vals["top_ids"][k, j]])
        assert prob.text == f"{vals['top_probs'][k, j]:.3f}"
    assert f"{vals['surprisal'][k]:.2f} bits" in tip.find_element(By.CLASS_NAME, "surprisal").text
    eq_c = driver.find_element(By.ID, "eq-c").text
    assert eq_c.endswith(_fmt(vals["layers"][0]["c"][k, top])) and _fmt(vals["layers"][0]["f"][k, top]) in eq_c

    # select a stretch with the mouse: units most active here
    a, b = k - 3, k + 4
    ActionChains(driver).click_and_hold(spans[a]).move_to_element(spans[b]).release().perform()
    sel = driver.execute_script("const s = window.getSelection(); return [s.anchorNode.parentNode.k, "
                                "s.focusNode.parentNode.k]")
    lo, hi = min(sel), max(sel) + 1
    active = [int(li.get_attribute("data-unit")) for li in driver.find_elements(By.CSS_SELECTOR, "#active-list li")]
    assert active == [u for u, _ in most_active(vals["layers"][0]["c"], lo, hi, k=12)]

    # a saturation dot of the second layer picks that layer and unit
    dots = driver.find_elements(By.CSS_SELECTOR, "#scatters circle")
    assert len(dots) == 2 * 3 * 12
    dot = driver.find_element(By.CSS_SELECTOR, 'circle[data-layer="1"][data-unit="7"][data-gate="f"]')
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", dot)
    assert driver.execute_script("const s = window.lstmlabInspect.state; return [s.layer, s.units[1]]") == [1, 7]
    _check_colours(driver, vals["layers"][1]["c"][:, 7], probe)

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    shot = tmp_path / "inspect.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_classify_page_in_chromium(driver, tmp_path):
    """A word-token classifier's page: one word per cell, and hovering a word shows the class probabilities of
    the text cut there (most likely first) in place of next-character predictions, and which text it is in."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from test_cli_classify import reviews, write_csv
    from test_inspect import classify_run

    data = write_csv(tmp_path / "reviews.csv", reviews(90))
    run = classify_run(tmp_path / "run", data, "--tokens", "word", "--epochs", 2)
    assert main(["inspect", str(run), "--length", "4"]) == 0
    meta, blobs = read_page((run / "inspect.html").read_text(encoding="utf-8"))
    vals = decode(meta, blobs)
    driver.get((run / "inspect.html").as_uri())
    spans = driver.find_elements(By.CSS_SELECTOR, "#text span")
    assert [s.get_attribute("textContent") for s in spans] == meta["tokens"]  # words, a text per line
    k = meta["starts"][1] + 2  # the third word of the second text
    ActionChains(driver).move_to_element(spans[k]).perform()
    tip = driver.find_element(By.ID, "tooltip")
    assert tip.is_displayed() and not tip.find_elements(By.CSS_SELECTOR, "table.preds")
    assert "class scores after this word" in tip.text
    rows = [r.find_elements(By.TAG_NAME, "td") for r in tip.find_elements(By.CSS_SELECTOR, "table.classes tr")]
    order = np.argsort(-vals["class_probs"][k], kind="stable")
    assert [(a.text, b.text) for a, b in rows] == [(meta["classes"]["names"][c], f"{vals['class_probs'][k, c]:.3f}")
                                                  for c in order]
    assert f"text 2 of 4, labelled {meta['targets'][1]}, word 3 of" in tip.text
    assert driver.find_element(By.ID, "eq-c").text.startswith(f"= {_fmt(vals['layers'][0]['f'][k, 0])} \u00d7 "
                                                                f"{_fmt(vals['layers'][0]['c'][k - 1, 0])}")
    first = meta["starts"][1]  # a text's first word: equation (4) starts from c = 0
    ActionChains(driver).move_to_element(spans[first]).perform()
    assert f"\u00d7 {_fmt(0)} +" in driver.find_element(By.ID, "eq-c").text
    assert "4 held-out test examples" in driver.find_element(By.ID, "info").text
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
