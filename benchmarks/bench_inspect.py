"""How fast the inspect page is written, opened and redrawn: 20,000 characters of a 2 x LSTM(256) model.

    python benchmarks/bench_inspect.py --run /tmp/demo      # a run of 'lstmlab train' (2 x 256 by default)
    python benchmarks/bench_inspect.py                      # an untrained 2 x 256 model on the built-in corpus

Targets (issue 19): the page is written in under 10 s, opens in headless Chromium in under 2 s, and switching
units redraws in under 100 ms. Prints a markdown table of medians (and the worst case) over the repeats:

* write: ``lstmlab inspect`` in this process, from the run directory to the HTML file (load, held-out text,
  reference forward, quantization, page), and its parts;
* open: a fresh navigation to the file:// URL; ``ready`` is ``performance.now()`` when the page's script has
  decoded what it shows and coloured the text (time since the navigation started), ``load`` the load event;
* switch unit: ``selectUnit`` measured in the page with ``performance.now()``, and up to the next frame
  (two requestAnimationFrame callbacks: style, layout and paint included);
* pattern search: the quote regex ranked against c over all 256 units of a layer.

Needs Chromium and ChromeDriver (Debian: chromium, chromium-driver) and selenium.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "src"))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]


def untrained_run(path: str) -> str:
    """A 2 x LSTM(256) checkpoint on the built-in corpus, not trained (the timings do not depend on training)."""
    from lstmlab import backend
    from lstmlab.apps.textgen import ModelConfig, TrainConfig, Vocabulary, builtin_corpus
    from lstmlab.apps.textgen.model import build_model, compile_model
    from lstmlab.apps.textgen.trainer import Progress, save_checkpoint, text_digest

    text = builtin_corpus()
    vocab = Vocabulary.from_text(text)
    mcfg, tcfg = ModelConfig(vocab_size=len(vocab), layers=2, units=256, dropout=0.0), TrainConfig()
    with backend.seeded(0):
        model = build_model(mcfg, tcfg.batch_size)
    compile_model(model, tcfg)
    os.makedirs(path, exist_ok=True)
    save_checkpoint(model, os.path.join(path, "checkpoint.safetensors"), vocab, mcfg, tcfg, Progress(),
                    text_digest(text))
    return path


def write_page(run: str, out: str, length: int) -> dict:
    from lstmlab.apps.inspect.data import collect
    from lstmlab.apps.inspect.page import render, write
    from lstmlab.apps.inspect.source import held_out, load_run

    t = [time.perf_counter()]
    r = load_run(run)
    t.append(time.perf_counter())
    text, source = held_out(r, length)
    t.append(time.perf_counter())
    trace = collect(r.model, r.vocab.encode(text), list(text), list(r.vocab.chars))
    t.append(time.perf_counter())
    page = render(trace, title="bench", source=source, model=r.description)
    t.append(time.perf_counter())
    write(out, page)
    t.append(time.perf_counter())
    parts = ("load run", "held-out text", "forward (reference, float32)", "encode + render", "write file")
    times = {name: t[k + 1] - t[k] for k, name in enumerate(parts)}
    times["total"] = t[-1] - t[0]
    times["MB"] = len(page) / 1e6
    return times


def browser(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


SWITCH = """
const done = arguments[arguments.length - 1], I = window.lstmlabInspect, units = arguments[0], out = [];
function next(k) {
  if (k === units.length) { done(out); return; }
  const t0 = performance.now();
  I.selectUnit(units[k][0], units[k][1]);
  const js = performance.now() - t0;
  requestAnimationFrame(() => requestAnimationFrame(() => { out.push([js, performance.now() - t0]); next(k + 1); }));
}
next(0);
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", help="a 2 x 256 run directory (default: an untrained one in a temporary folder)")
    ap.add_argument("--length", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-inspect-")
    run = args.run or untrained_run(os.path.join(tmp, "run"))
    out = os.path.join(tmp, "page.html")
    writes = [write_page(run, out, args.length) for _ in range(args.repeats)]
    d = browser(os.path.join(tmp, "profile"))
    try:
        d.set_script_timeout(120)
        opens = []
        for _ in range(args.repeats):
            d.get("about:blank")
            t0 = time.perf_counter()
            d.get("file://" + out)
            wall = time.perf_counter() - t0
            ready, load = d.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                                           "return [window.lstmlabInspect.ready, n.loadEventEnd];")
            opens.append((ready / 1e3, load / 1e3, wall))
        H = d.execute_script("return window.lstmlabInspect && document.querySelectorAll('#scatters svg').length")
        units = [[k % 2, (37 * k + 11) % 256] for k in range(40)]
        switches = d.execute_async_script(SWITCH, units)
        searches = []
        for _ in range(args.repeats):
            searches.append(d.execute_script(
                "const t0 = performance.now(); window.lstmlabInspect.search(arguments[0], 'match', 'c');"
                "return performance.now() - t0;", r'("[^"\n]*)"'))
    finally:
        d.quit()
    med = statistics.median
    print(f"inspect page: {args.length:,} characters, {H} LSTM layers of 256 units, {writes[0]['MB']:.1f} MB; "
          f"median of {args.repeats} (worst in brackets)\n")
    print("| what | time | target |\n|---|---|---|")
    for name in writes[0]:
        if name != "MB":
            vals = [w[name] for w in writes]
            print(f"| write: {name} | {med(vals):.2f} s ({max(vals):.2f}) | {'< 10 s' if name == 'total' else ''} |")
    print(f"| open: page ready (decoded, coloured) | {med(o[0] for o in opens):.2f} s "
          f"({max(o[0] for o in opens):.2f}) | < 2 s |")
    print(f"| open: load event | {med(o[1] for o in opens):.2f} s ({max(o[1] for o in opens):.2f}) | |")
    print(f"| open: selenium get() wall time | {med(o[2] for o in opens):.2f} s ({max(o[2] for o in opens):.2f}) | |")
    js = [s[0] for s in switches]
    frame = [s[1] for s in switches]
    print(f"| switch unit: selectUnit (JS), {len(units)} switches | {med(js):.1f} ms ({max(js):.1f}) | < 100 ms |")
    print(f"| switch unit: to the next painted frame | {med(frame):.1f} ms ({max(frame):.1f}) | < 100 ms |")
    print(f"| pattern search, 256 units x {args.length:,} steps | {med(searches):.1f} ms ({max(searches):.1f}) | |")


if __name__ == "__main__":
    main()
