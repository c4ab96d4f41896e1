"""lstmlab inspect: the page holds the model's forward pass, its search finds a quote unit, bad input is one line.

The browser half (the page's JavaScript driven in headless Chromium) is tests/test_inspect_browser.py.
"""
import re

import numpy as np
import pytest

from inspect_runs import QUOTE_PATTERN, quote_text, train_run
from lstmlab.apps.inspect import (QUANTITIES, collect, decode, most_active, pattern_signal, rank_units, read_page,
                                  saturation, top_contexts)
from lstmlab.apps.textgen import CharSampler, load_checkpoint
from lstmlab.cli import main
from lstmlab.functional.lstm import lstm_forward
from lstmlab.layers import LSTM


@pytest.fixture(scope="module")
def quote_run(tmp_path_factory):
    """A 1 x LSTM(16) trained for 300 steps on quoted text, and a held-out text of the same kind."""
    root = tmp_path_factory.mktemp("quote")
    corpus = root / "quotes.txt"
    corpus.write_text(quote_text(30000))
    train_run(root / "run", quote_text(30000), steps=300, corpus=corpus)
    held = root / "held.txt"
    held.write_text(quote_text(3000, seed=1))
    return root


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory):
    """A 2 x LSTM(8) run (trained a few steps, so its weights are not the initial ones)."""
    root = tmp_path_factory.mktemp("two")
    text = quote_text(8000, seed=2)
    (root / "corpus.txt").write_text(text)
    train_run(root / "run", text, layers=2, units=8, steps=5, corpus=root / "corpus.txt")
    return root


def _reference(model, ids):
    """The forward pass the page must show, computed here without the inspect code: the embedding's rows, then
    lstm_forward per layer in float64 (its cache), then the output layer's logits."""
    layers = list(model.layers)
    x = layers[0].get_weights()[0][ids][None].astype(np.float64)  # (1, T, E) the embedding is a table lookup
    caches = []
    for layer in layers[1:]:
        if isinstance(layer, LSTM):
            k, r, b = (np.asarray(w, np.float64) for w in layer.get_weights())
            x, _, cache = lstm_forward(x, k, r, b)
            caches.append(cache)
    kernel, bias = layers[-1].get_weights()
    logits = x[0] @ kernel + bias  # (T, V)
    return caches, logits


def test_page_values_are_the_forward_pass(two_layer_run, tmp_path, capsys):
    text = quote_text(700, seed=5)
    (tmp_path / "t.txt").write_text(text)
    out = tmp_path / "page.html"
    assert main(["inspect", str(two_layer_run / "run"), "--text", str(tmp_path / "t.txt"), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    meta, blobs = read_page(html)
    page = decode(meta, blobs)
    model, vocab, *_ = load_checkpoint(two_layer_run / "run" / "best.safetensors")
    ids = vocab.encode(text)
    caches, logits = _reference(model, ids)
    assert meta["tokens"] == list(text) and len(page["layers"]) == 2
    H = 8
    for layer, cache, steps in zip(page["layers"], caches, page["steps"]):
        g = cache["gates"][:, 0]  # (T, 4H) i, f, g, o
        ref = {"i": g[:, :H], "f": g[:, H:2 * H], "g": g[:, 2 * H:3 * H], "o": g[:, 3 * H:],
               "c": cache["cs"][:, 0], "tc": cache["tcs"][:, 0], "h": cache["hs"][:, 0]}
        for q in QUANTITIES:
            err = np.abs(layer[q] - ref[q])  # (T, H)
            half_step = steps[q] / 2 + 1e-5  # (H,) per unit; the page's forward ran in float32
            assert np.all(err <= half_step), f"{q}: max error {err.max():.3g} > half step {half_step.max():.3g}"
            fine = {"c": 0.1, "tc": 0.1}.get(q, 2 / 255 + 1e-12)  # the quantization is fine enough to read
            assert np.all(steps[q] <= fine)
    # predictions: top-5 of softmax(logits), and the surprisal of the next character
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    top = np.argsort(-p, axis=1, kind="stable")[:, :5]
    assert np.array_equal(page["top_ids"], top)
    assert np.allclose(page["top_probs"], np.take_along_axis(p, top, 1), atol=0.5 / 65535 + 1e-6)
    s = -np.log2(p[np.arange(len(ids) - 1), ids[1:]])
    step = meta["predictions"]["surprisal_hi"] / 65535
    assert np.all(np.abs(page["surprisal"] - s) <= step / 2 + 1e-5)
    # self-contained: nothing is fetched, and the policy forbids fetching
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|\bhref=|@import|url\(", html)
    assert "default-src 'none'" in html


def test_trace_matches_the_model_s_own_layers(two_layer_run):
    """The trace (reference math, float64) agrees with the model run one character at a time through its
    layers' public step API (the fast path, float32): the predictions and the final states."""
    model, vocab, *_ = load_checkpoint(two_layer_run / "run" / "best.safetensors")
    text = quote_text(300, seed=9)
    ids = vocab.encode(text)
    trace = collect(model, ids, list(text), list(vocab.chars))
    sampler = CharSampler(model, vocab)
    probs = []
    for i in ids:
        z = sampler.step(int(i)).astype(np.float64)  # (V,) logits of the next character
        p = np.exp(z - z.max())
        probs.append(p / p.sum())
    probs = np.array(probs)  # (T, V)
    assert np.allclose(np.take_along_axis(probs, trace.top_ids, 1), trace.top_probs, atol=1e-5)
    assert np.allclose(-np.log2(probs[np.arange(len(ids) - 1), ids[1:]]), trace.surprisal[:-1], atol=1e-4)
    states = [s for s in sampler.states if s is not None]  # [h, c] of each LSTM after the last character
    assert len(states) == len(trace.layers) == 2
    for lt, (h, c) in zip(trace.layers, states):
        assert np.allclose(lt.values["h"][-1], h[0], atol=1e-5) and np.allclose(lt.values["c"][-1], c[0], atol=1e-5)


def test_quote_unit_is_found(quote_run):
    """A model trained where the case of the next letter depends on being inside quotes has a unit that tracks
    it: the pattern search ranks it first, with |r| > 0.8, against both c and h, on text it never saw."""
    model, vocab, *_ = load_checkpoint(quote_run / "run" / "best.safetensors")
    held = (quote_run / "held.txt").read_text()
    trace = collect(model, vocab.encode(held), list(held), list(vocab.chars))
    signal = pattern_signal(held, QUOTE_PATTERN)
    assert 0.2 < signal.mean() < 0.8  # the pattern marks the quoted stretches, not everything
    for q in ("c", "h"):
        unit, r = rank_units(signal, trace.layers[0].values[q], k=1)[0]
        assert abs(r) > 0.8, f"top unit for the quotes against {q}: {unit} with r = {r:.3f}"


def test_search_helpers_on_known_arrays():
    text = 'ab "cd" e\nfgh (x)\n"ij'
    assert pattern_signal(text, QUOTE_PATTERN).tolist() == [0, 0, 0, 1, 1, 1] + [0] * 15  # the last quote never closes
    assert pattern_signal(text, "line-position", mode="line-position")[:13].tolist() == \
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]
    assert pattern_signal(text, r"\(x\)").tolist()[14:17] == [1, 1, 1]
    with pytest.raises(ValueError, match=r"pattern: '\(' is not a regular expression"):
        pattern_signal(text, "(")
    s = np.array([0, 0, 1, 1, 0, 1.0])
    v = np.stack([s * 2 - 1, -s, np.ones(6), np.arange(6.0)], axis=1)  # (T, 4)
    ranked = rank_units(s, v, k=4)
    assert [u for u, _ in ranked[:2]] == [0, 1] and ranked[0][1] == pytest.approx(1) and ranked[1][1] == \
        pytest.approx(-1)
    assert dict(ranked)[2] == 0  # a constant unit correlates with nothing
    high, low = top_contexts(np.array([0, 5, 4, 0, 0, 9, 1.0]), k=2, spacing=2)
    assert high == [5, 1] and low == [0, 3]
    left, right = saturation(np.array([[0.05, 0.5], [0.95, 0.5], [0.01, 0.95], [0.5, 0.99]]))
    assert left.tolist() == [0.5, 0] and right.tolist() == [0.25, 0.5]
    assert most_active(v, 2, 4, k=1)[0][0] == 0


def _one_line_error(capsys, argv, pattern):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmlab: error: "), err
    assert re.search(pattern, err), err


def test_cli_bad_inputs_are_one_line(quote_run, tmp_path, capsys):
    run = str(quote_run / "run")
    _one_line_error(capsys, ["inspect", str(tmp_path / "nowhere")], r"RUN_DIR: no run directory or checkpoint")
    (tmp_path / "empty_dir").mkdir()
    _one_line_error(capsys, ["inspect", str(tmp_path / "empty_dir")], r"RUN_DIR: .* holds no checkpoint")
    (tmp_path / "empty.txt").write_text("")
    _one_line_error(capsys, ["inspect", run, "--text", str(tmp_path / "empty.txt")], r"--text: .* is empty")
    (tmp_path / "other.txt").write_text("abc \u00e9")
    _one_line_error(capsys, ["inspect", run, "--text", str(tmp_path / "other.txt")],
                    r"--text: character '\u00e9' .* not in the model's vocabulary")
    _one_line_error(capsys, ["inspect", run, "--prime", ""], r"--prime: expected some text")
    _one_line_error(capsys, ["inspect", run, "--length", "0"], r"--length: expected a positive integer, got 0")
    _one_line_error(capsys, ["inspect", run, "--out", str(tmp_path / "no" / "p.html")], r"--out: the folder .* does "
                    "not exist")
    (tmp_path / "long.txt").write_text((quote_text(30_000) * 100)[:3_000_000])  # x 16 units: too much for a page
    _one_line_error(capsys, ["inspect", run, "--text", str(tmp_path / "long.txt")], r"--text: 3,000,000 characters "
                    r"of 16 LSTM units make a page of about 486 MB; expected at most 400 MB \(2,469,135 characters")
    _one_line_error(capsys, ["inspect", run, "--text", "x", "--prime", "a"], r"not allowed with argument")
    not_a_model = tmp_path / "junk.safetensors"
    not_a_model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    _one_line_error(capsys, ["inspect", str(not_a_model)], r"junk.safetensors")
    assert not (tmp_path / "inspect.html").exists()


def test_cli_refuses_held_out_text_of_a_changed_corpus(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(quote_text(3000))
    train_run(tmp_path / "run", corpus.read_text(), units=4, steps=1, corpus=corpus)
    corpus.write_text(quote_text(3000, seed=7))
    _one_line_error(capsys, ["inspect", str(tmp_path / "run")], r"RUN_DIR: the corpus .* changed since the run was "
                    r"trained.*give --text FILE")
    corpus.unlink()
    _one_line_error(capsys, ["inspect", str(tmp_path / "run")], r"RUN_DIR: cannot read the run's corpus .*no such "
                    r"file.*give --text FILE")


def test_cli_refuses_a_gru_run(tmp_path, capsys):
    text = quote_text(3000)
    (tmp_path / "c.txt").write_text(text)
    train_run(tmp_path / "gru", text, cell="gru", units=4, steps=1, corpus=tmp_path / "c.txt")
    _one_line_error(capsys, ["inspect", str(tmp_path / "gru")],
                    r"RUN_DIR: .*layer 'gru_1' is a GRU; inspect shows the gates of LSTM layers")
    assert not (tmp_path / "gru" / "inspect.html").exists()


def test_cli_default_text_and_prime(quote_run, capsys):
    run = quote_run / "run"
    assert main(["inspect", str(run), "--length", "400"]) == 0  # the held-out part of quotes.txt
    meta, _ = read_page((run / "inspect.html").read_text(encoding="utf-8"))
    corpus = (quote_run / "quotes.txt").read_text()
    held = "".join(meta["tokens"])
    start = corpus.find(held, int(len(corpus) * 0.9))  # inside the held-out tenth, never seen in training
    assert len(held) == 400 and start > 0 and corpus[start - 1] == "\n"  # from the start of a line
    assert "held-out text of quotes.txt" in meta["source"]
    out = quote_run / "primed.html"
    assert main(["inspect", str(run), "--prime", 'ab "C', "--length", "50", "--out", str(out)]) == 0
    meta, _ = read_page(out.read_text(encoding="utf-8"))
    assert "".join(meta["tokens"]).startswith('ab "C') and meta["T"] == 55
    capsys.readouterr()


def test_serve_answers_on_loopback_only():
    import threading
    import urllib.error
    import urllib.request

    from lstmlab.apps.inspect.command import make_server

    server = make_server("<!doctype html><p>page</p>", 0)
    host, port = server.server_address
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fetch = urllib.request.build_opener(urllib.request.ProxyHandler({})).open  # straight to the loopback
    try:
        assert host == "127.0.0.1"
        with fetch(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and r.read() == b"<!doctype html><p>page</p>"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            fetch(f"http://127.0.0.1:{port}/../../etc/passwd", timeout=10)
    finally:
        server.shutdown()
        server.server_close()


def test_a_classifier_shape_model_is_traced_and_rendered():
    """Any Sequential whose recurrent layers are LSTMs: a classifier (last LSTM without sequences, softmax over
    classes) gives every step's gates and its class scores as the final output; the page renders without
    next-token predictions. A GRU in the stack is refused, naming the layer."""
    from lstmlab import backend, layers as L
    from lstmlab.apps.inspect import UnsupportedModel, check_supported, render
    from lstmlab.models import Sequential

    with backend.seeded(3):
        model = Sequential([L.Embedding(6, 4), L.LSTM(5, return_sequences=True), L.LSTM(3), L.Dense(2,
                            activation="softmax")])
        ids = np.array([1, 2, 3, 4, 5, 1, 2])
        probs = model.predict(ids[None], verbose=0)[0]  # (2,) the model's own forward
    tokens = ["</script><b>", "<!--", "&amp;", "a", "\u2028", "\"", "e"]  # display strings that must stay text
    trace = collect(model, ids, tokens, list("_abcde"))
    assert [lt.units for lt in trace.layers] == [5, 3] and trace.layers[1].values["h"].shape == (7, 3)
    assert trace.top_ids is None and np.allclose(trace.final_output, probs, atol=1e-6)
    html = render(trace, title="classifier </title>")
    meta, blobs = read_page(html)
    assert meta["predictions"] is None and "p-ids" not in blobs and meta["tokens"] == tokens
    assert "</script><b>" not in html and "<!--" not in html.split("<body>")[1] and "classifier &lt;/title&gt;" in html
    assert np.allclose(decode(meta, blobs)["layers"][1]["h"], trace.layers[1].values["h"], atol=1 / 255)
    with pytest.raises(UnsupportedModel, match="layer 'gru' is a GRU"):
        check_supported(Sequential([L.Embedding(6, 4), L.GRU(3, name="gru"), L.Dense(2)]))
    with pytest.raises(UnsupportedModel, match="is a Bidirectional wrapper"):
        check_supported(Sequential([L.Embedding(6, 4), L.Bidirectional(L.LSTM(3)), L.Dense(2)]))


# -- classification runs (lstmlab classify) ---------------------------------------------------------------
def classify_run(out, data, *options):
    """Train a tiny classifier through the CLI (its SIGINT / SIGTERM handlers are put back for pytest)."""
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main(["classify", "--data", str(data), "--text", "review", "--label", "sentiment", "--units", "8",
                     "--embedding", "8", "--batch-size", "16", "--out", str(out), *map(str, options)]) == 0
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    return out


@pytest.fixture(scope="module")
def classify_runs(tmp_path_factory):
    """Two classifiers on 120 synthetic reviews: word tokens (3 epochs) and char tokens (1 epoch)."""
    from test_cli_classify import reviews, write_csv

    root = tmp_path_factory.mktemp("classify")
    data = write_csv(root / "reviews.csv", reviews(120))
    classify_run(root / "word", data, "--tokens", "word", "--epochs", 3)
    classify_run(root / "char", data, "--tokens", "char", "--epochs", 1, "--maxlen", 40)
    return root


def _classifier_reference(model, ids):
    """The classifier's forward pass for one text, without the inspect code: the embedding's rows, lstm_forward
    in float64, and the sigmoid output unit applied to the state after every step (the text cut there)."""
    emb, lstm, dense = model.layers
    x = emb.get_weights()[0][ids][None].astype(np.float64)  # (1, T, E)
    k, r, b = (np.asarray(w, np.float64) for w in lstm.get_weights())
    hs, _, cache = lstm_forward(x, k, r, b)  # (1, T, H)
    kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
    p = 1 / (1 + np.exp(-(hs[0] @ kernel + bias)[:, 0]))  # (T,) P(second class) after each step
    return cache, np.stack([1 - p, p], axis=1)  # (T, 2)


def test_classify_page_values_are_the_forward_pass(classify_runs, capsys):
    """The default page of a word-token classifier: held-out test examples of the run's own split, one word per
    cell, each text from a zero state, the gates of the forward pass, and after every word the class
    probabilities of the text cut there; the last word's are what the trained model predicts."""
    from lstmlab.apps.classify import data as D
    from lstmlab.apps.classify.split import prepare
    from lstmlab.apps.classify.tokens import split_tokens
    from lstmlab.apps.classify.trainer import load_checkpoint as load_classifier

    run = classify_runs / "word"
    assert main(["inspect", str(run)]) == 0
    assert re.search(r"\d+ words in 6 texts", capsys.readouterr().out)
    meta, blobs = read_page((run / "inspect.html").read_text(encoding="utf-8"))
    page = decode(meta, blobs)
    model, tok, labels, mcfg, tcfg, *_ = load_classifier(run / "best.safetensors")
    test = prepare(D.load(tcfg.data, tcfg.text, tcfg.label), tcfg, tokenizer=tok)
    starts = meta["starts"] + [meta["T"]]
    assert len(starts) == 7 and "6 held-out test examples of reviews.csv" in meta["source"]
    assert meta["classes"]["names"] == labels == ["neg", "pos"] and meta["token_kind"] == "word"
    assert meta["targets"] == ["neg", "pos"] * 3  # the classes take turns
    for k in range(6):
        shown = [t.strip() for t in meta["tokens"][starts[k]:starts[k + 1]]]
        j = next(j for j, text in enumerate(test.texts["test"]) if split_tokens(text, "word")[:tok.maxlen] == shown)
        assert labels[test.y["test"][j]] == meta["targets"][k]  # a held-out text, with its true label
        text = test.texts["test"][j]
        assert meta["tokens"][starts[k + 1] - 1].endswith("\n" if k < 5 else " ")  # one text per line
        cache, probs = _classifier_reference(model, tok.ids(text)[:tok.maxlen])
        part = slice(starts[k], starts[k + 1])
        g, H = cache["gates"][:, 0], 8  # (T, 4H) i, f, g, o
        ref = {"i": g[:, :H], "f": g[:, H:2 * H], "g": g[:, 2 * H:3 * H], "o": g[:, 3 * H:],
               "c": cache["cs"][:, 0], "tc": cache["tcs"][:, 0], "h": cache["hs"][:, 0]}
        for q in QUANTITIES:
            err = np.abs(page["layers"][0][q][part] - ref[q])  # (T_k, H)
            assert np.all(err <= page["steps"][0][q] / 2 + 1e-5), (k, q, err.max())
        assert np.allclose(page["class_probs"][part], probs, atol=0.5 / 65535 + 1e-6)
        predicted = model.predict(tok.encode([text]), verbose=0)[0, 0]  # the model itself: padded and masked
        assert probs[-1, 1] == pytest.approx(predicted, abs=1e-5)


def test_classify_page_of_char_tokens_from_a_file(classify_runs, tmp_path, capsys):
    """--text FILE: one example per line (blank lines skipped, --length of them), one character per cell, cut
    at the run's maxlen as the model reads them."""
    from lstmlab.apps.classify.trainer import load_checkpoint as load_classifier

    lines = ["a great film , superb cast", "", "the plot was dull and the actors were awful, really awful", "bad"]
    (tmp_path / "mine.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "mine.html"
    assert main(["inspect", str(classify_runs / "char"), "--text", str(tmp_path / "mine.txt"), "--length", "2",
                 "--out", str(out)]) == 0
    meta, blobs = read_page(out.read_text(encoding="utf-8"))
    page = decode(meta, blobs)
    model, tok, *_ = load_classifier(classify_runs / "char" / "best.safetensors")
    assert tok.maxlen == 40 and meta["token_kind"] == "character" and meta["targets"] is None
    assert meta["tokens"] == list(lines[0][:-1]) + [lines[0][-1] + "\n"] + list(lines[2][:40])  # a line each
    assert meta["starts"] == [0, len(lines[0])] and meta["T"] == len(lines[0]) + 40
    for k, text in enumerate((lines[0], lines[2])):
        part = slice(meta["starts"][k], meta["starts"][k] + min(len(text), 40))
        cache, probs = _classifier_reference(model, tok.ids(text)[:40])
        assert np.allclose(page["class_probs"][part], probs, atol=0.5 / 65535 + 1e-6)
        assert np.all(np.abs(page["layers"][0]["c"][part] - cache["cs"][:, 0]) <= page["steps"][0]["c"] / 2 + 1e-5)
    capsys.readouterr()


def test_classify_runs_refused_in_one_line(classify_runs, tmp_path, capsys):
    from test_cli_classify import reviews, write_csv

    _one_line_error(capsys, ["inspect", str(classify_runs / "word"), "--prime", "the"],
                    r"--prime: a classification run does not write text; give --text FILE with one example per line")
    (tmp_path / "blank.txt").write_text("\n  \n")
    _one_line_error(capsys, ["inspect", str(classify_runs / "word"), "--text", str(tmp_path / "blank.txt")],
                    r"--text: .* holds only whitespace")
    data = write_csv(tmp_path / "r.csv", reviews(60, seed=4))
    classify_run(tmp_path / "bi", data, "--epochs", 1, "--units", 4, "--bidirectional", "--maxlen", 12)
    capsys.readouterr()
    _one_line_error(capsys, ["inspect", str(tmp_path / "bi")], r"RUN_DIR: .*layer 'bidirectional_1' is a "
                    r"Bidirectional wrapper; inspect shows plain LSTM layers only")
    classify_run(tmp_path / "run", data, "--epochs", 1, "--units", 4, "--maxlen", 12)
    capsys.readouterr()
    write_csv(tmp_path / "r.csv", reviews(60, seed=5))
    _one_line_error(capsys, ["inspect", str(tmp_path / "run")], r"RUN_DIR: the data .*r.csv' changed since the run "
                    r"was trained.*give --text FILE with one example per line")
    (tmp_path / "r.csv").unlink()
    _one_line_error(capsys, ["inspect", str(tmp_path / "run")], r"RUN_DIR: cannot read the run's data for its "
                    r"held-out examples \(--data: no such file .*\); give --text FILE")
