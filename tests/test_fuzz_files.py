"""Two seeded fuzzers over a valid saved model: every case loads and predicts finite values, or is
refused with one ModelFileError naming the file. No other exception, no hang, no allocation beyond a
bound (see tests/fuzz_worker.py, which runs the cases in a memory- and time-limited process).

The default run does a few hundred cases per fuzzer; ``-m slow`` runs thousands. The counts per
category are printed (``-s`` shows them) and, when ``LSTMLAB_FUZZ_TABLE`` names a file, appended to
it as a markdown table: the source of the README's "What we tried to break".
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys

import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_worker.py")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")


def fuzz(kind: str, seed: int, cases: int, folder) -> tuple[dict, list]:
    """Run the worker; returns ``{category: [tried, clean, loaded]}`` and the failures."""
    proc = subprocess.run([sys.executable, WORKER, kind, str(seed), str(cases), str(folder)], capture_output=True,
                          text=True, timeout=60 + cases)
    counts, failures, open_case = collections.defaultdict(lambda: [0, 0, 0]), [], None
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        if row.get("started"):
            open_case = row
        elif "outcome" in row:
            open_case = None
            counts[row["category"]][0] += 1
            counts[row["category"]][2] += row["outcome"] == "loads"
            if row["outcome"] in ("loads", "refused"):
                counts[row["category"]][1] += 1
            else:
                failures.append(row)
    if proc.returncode != 0:
        what = ("killed by its time limit (hang)" if proc.returncode == -signal.SIGALRM
                else f"exit status {proc.returncode}: {proc.stderr[-2000:]}")
        failures.append({"case": open_case, "detail": f"the worker died: {what}"})
        if open_case is not None:
            counts[open_case["category"]][0] += 1
    return dict(counts), failures


def report(kind: str, seed: int, counts: dict) -> None:
    lines = [f"{kind} fuzzer, seed {seed}:"] + [f"  {c}: tried {t}, clean {k} (loaded {n}, the rest refused)"
                                                 for c, (t, k, n) in sorted(counts.items())]
    print("\n".join(lines))
    table = os.environ.get("LSTMLAB_FUZZ_TABLE")
    if table:
        with open(table, "a") as f:
            for category, (tried, clean, loaded) in sorted(counts.items()):
                f.write(f"| {category} (seed {seed}) | {tried} | {clean} | {loaded} |\n")


@pytest.mark.parametrize("kind,cases", [("bytes", 300), ("json", 300)])
def test_fuzz(tmp_path, kind, cases):
    counts, failures = fuzz(kind, seed=13, cases=cases, folder=tmp_path)
    report(kind, 13, counts)
    assert not failures, json.dumps(failures[:10], indent=1)
    assert sum(c[0] for c in counts.values()) == cases


@pytest.mark.slow
@pytest.mark.parametrize("kind,seed", [("bytes", 1), ("json", 1), ("bytes", 2), ("json", 2)])
def test_fuzz_thousands(tmp_path, kind, seed):
    counts, failures = fuzz(kind, seed=seed, cases=2500, folder=tmp_path)
    report(kind, seed, counts)
    assert not failures, json.dumps(failures[:10], indent=1)
    assert sum(c[0] for c in counts.values()) == 2500
