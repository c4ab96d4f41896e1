"""What the page runs the model over, and the run it comes from.

* a run directory (or a checkpoint file) -> the model, its vocabulary and a description;
* the text: a stretch of the run's held-out text (default), a file (``--text``), or a prime plus a
  continuation the model generates (``--prime``).

Text-generation runs (kind ``lstmlab.textgen``) are read here; classification runs (``lstmlab.classify``) in
:mod:`.source_classify`, which :func:`load_run` hands them to.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ...io.errors import ModelFileError
from ...io.safetensors import load_file
from ..runs import run_checkpoint
from .data import check_supported

MAX_PAGE_MB = 400  # a larger page takes seconds to open and hundreds of MB of browser memory
# Bytes of page per character (encoding.py, base64 = 4/3): six 8-bit arrays per unit, and the predictions (five
# 16-bit ids and probabilities, one 16-bit surprisal) plus the character in the JSON, about 34 bytes.
BYTES_PER_UNIT, BYTES_PER_CHAR = 6 * 4 / 3, 34
MAX_FILE_BYTES = 64 << 20  # a --text file is read whole, then cut to --length


@dataclass
class Run:
    model: object
    vocab: object  # textgen.Vocabulary: chars, encode(text, argument=...)
    path: str  # the checkpoint file
    description: str
    corpus: str | None  # where the training text came from (None: unknown)
    val_fraction: float | None
    corpus_sha256: str | None = None  # of the training text, to notice a corpus file changed since


def _kind(path) -> str | None:
    try:
        _, meta = load_file(path)
        return json.loads(meta["extra"]).get("kind")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ModelFileError):
        return None  # the loader below says what is wrong with the file


def load_run(run_dir: str):
    """Load a text-generation :class:`Run` or a classification :class:`~.source_classify.ClassifyRun`; refuse
    other kinds, and models with other cells, in one line."""
    from ..textgen import load_checkpoint
    from .source_classify import KIND as CLASSIFY, load_classify_run

    path = run_checkpoint(run_dir)
    kind = _kind(path)
    if kind == CLASSIFY:
        return load_classify_run(run_dir, path)
    if kind is not None and kind != "lstmlab.textgen":
        raise ValueError(f"RUN_DIR: {run_dir!r} is a {kind.rsplit('.', 1)[-1]} run; inspect reads text-generation "
                         "runs (lstmlab train) and classification runs (lstmlab classify)")
    model, vocab, mcfg, tcfg, progress, digest = load_checkpoint(path)
    try:
        check_supported(model)
    except ValueError as exc:
        raise ValueError(f"RUN_DIR: {run_dir!r}: {str(exc).removeprefix('model: ')}") from None
    best = f", best validation loss {progress.best_val:.4f} nats" if progress.best_val is not None else ""
    desc = (f"{mcfg.layers} x {mcfg.cell.upper()}({mcfg.units}), step {progress.global_step}{best}")
    return Run(model, vocab, path, desc, tcfg.corpus, tcfg.val_fraction, digest)


def held_out(run: Run, length: int) -> tuple[str, str]:
    """``length`` characters of the run's held-out text, from the start of a line; and where they come from."""
    from ..textgen import builtin_corpus, read_corpus
    from ..textgen.config import BUILTIN
    from ..textgen.corpus import split_ids

    if run.corpus is None:
        raise ValueError("RUN_DIR: the run does not say which text it was trained on; give --text FILE")
    try:
        text = builtin_corpus() if run.corpus == BUILTIN else read_corpus(run.corpus)
    except ValueError as exc:
        raise ValueError(f"RUN_DIR: cannot read the run's corpus for its held-out text ({exc}); give --text FILE") \
            from None
    from ..textgen.trainer import text_digest

    if run.corpus_sha256 is not None and text_digest(text) != run.corpus_sha256:
        raise ValueError(f"RUN_DIR: the corpus {run.corpus!r} changed since the run was trained, so its held-out "
                         "part is not what the run held out; give --text FILE")
    ids = run.vocab.encode(text, argument="corpus")
    _, val = split_ids(ids, run.val_fraction)
    held = run.vocab.decode(val)
    nl = held.find("\n")
    start = nl + 1 if 0 <= nl < len(held) // 2 else 0  # a line start, so line positions mean something
    name = "the built-in corpus" if run.corpus == BUILTIN else os.path.basename(run.corpus)
    return held[start:start + length], f"held-out text of {name}"


def from_file(path: str, length: int | None) -> tuple[str, str]:
    from ..textgen import read_corpus

    if not path.strip():
        raise ValueError(f"--text: expected a path, got {path!r}")
    try:
        text = read_corpus(path, max_bytes=MAX_FILE_BYTES)
    except ValueError as exc:
        raise ValueError(str(exc).replace("corpus:", "--text:", 1)) from None
    return (text if length is None else text[:length]), os.path.basename(path)


def generated(run: Run, prime: str, length: int, temperature: float, seed: int) -> tuple[str, str]:
    """``prime`` followed by ``length`` characters the model samples after it."""
    from ..textgen import CharSampler, SampleConfig

    if not prime:
        raise ValueError("--prime: expected some text to start from, got ''")
    run.vocab.encode(prime, argument="--prime")  # unknown characters: one line, before sampling
    cfg = SampleConfig(length=length, temperature=temperature, prime=prime, seed=seed)
    more = CharSampler(run.model, run.vocab).generate(cfg)
    return prime + more, f"--prime {prime[:30]!r} and {length} generated characters (temperature {temperature:g})"


def check_text(text, what: str, units: int, unit: str = "characters"):
    """Refuse an empty text (a string, or a list of tokens), and one whose page (``units`` LSTM units in all)
    would exceed :data:`MAX_PAGE_MB`."""
    if not text:
        raise ValueError(f"{what}: expected some text, got none")
    per_char = units * BYTES_PER_UNIT + BYTES_PER_CHAR
    mb = len(text) * per_char / 1e6
    if mb > MAX_PAGE_MB:
        longest = int(MAX_PAGE_MB * 1e6 / per_char)
        raise ValueError(f"{what}: {len(text):,} {unit} of {units} LSTM units make a page of about {mb:,.0f} MB; "
                         f"expected at most {MAX_PAGE_MB} MB ({longest:,} {unit}; use --length)")
    return text
