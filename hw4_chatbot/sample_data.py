"""A small dialogue data set in the exact course formats, quirks included, for tests and the demo.

Writes ``cornell/`` (raw ``+++$+++`` files), ``cornell_pairs/pairs.enc|dec`` (Windows-1252 bytes,
a few empty lines like the real files), ``opensubtitles/chat.in`` (alternating lines) and
``sample_inputs/`` (one CRLF file, one with trailing spaces). The dialogues come from templates, so
a tiny model learns them in seconds.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from common.errors import run_cli
from common.files import atomic_write

NAMES = ["bob", "alice", "cameron", "bianca", "joey", "kat", "patrick", "walter"]
PLACES = ["paris", "london", "the park", "school", "the beach", "new york"]
THINGS = ["coffee", "music", "movies", "books", "pizza", "football"]
TEMPLATES = [
    ("what is your name ?", "my name is {name} ."),
    ("where are you going ?", "i am going to {place} ."),
    ("do you like {thing} ?", "yes , i love {thing} ."),
    ("have you been to {place} ?", "no , never been to {place} ."),
    ("who is {name} ?", "{name} is my friend ."),
    ("how are you ?", "i am fine , thanks ."),
    ("what do you want ?", "i want some {thing} ."),
    ("where is {name} ?", "{name} went to {place} ."),
]


def dialogue_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        q, r = rng.choice(TEMPLATES)
        slots = {"name": rng.choice(NAMES), "place": rng.choice(PLACES), "thing": rng.choice(THINGS)}
        pairs.append((q.format(**slots).capitalize(), r.format(**slots).capitalize()))
    return pairs


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_sample(root: str | Path, n_pairs: int = 600, seed: int = 0) -> Path:
    """Write every format under ``root`` and return it."""
    root = Path(root)
    pairs = dialogue_pairs(n_pairs, seed)
    # Cornell pairs: cp1252 bytes ("café", curly quotes) and a few blank lines, as in the real files
    enc = [q for q, _ in pairs] + ["Un caf\xe9, s\u2019il vous pla\xeet.", ""]
    dec = [r for _, r in pairs] + ["Caf\xe9 ? I don\u2019t know.", "Nothing."]
    _write_bytes(root / "cornell_pairs" / "pairs.enc", ("\n".join(enc) + "\n").encode("cp1252"))
    _write_bytes(root / "cornell_pairs" / "pairs.dec", ("\n".join(dec) + "\n").encode("cp1252"))
    # Cornell raw: conversations of 3 utterances (q, r, q2) so adjacent pairs overlap like the real ones
    lines, convs = [], []
    for c in range(len(pairs) // 3):
        ids = [f"L{1000 + 3 * c + k}" for k in range(3)]
        texts = [pairs[3 * c][0], pairs[3 * c][1], pairs[3 * c + 1][0]]
        for k, (lid, text) in enumerate(zip(ids, texts)):
            who = ("u0", "BIANCA") if k % 2 == 0 else ("u2", "CAMERON")
            lines.append(f"{lid} +++$+++ {who[0]} +++$+++ m0 +++$+++ {who[1]} +++$+++ {text}")
        convs.append(f"u0 +++$+++ u2 +++$+++ m0 +++$+++ {ids!r}")
    lines.append("L9999 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Tr\xe8s bien.")  # latin-1 byte, unused
    _write_bytes(root / "cornell" / "movie_lines.txt", ("\n".join(reversed(lines)) + "\n").encode("cp1252"))
    _write_bytes(root / "cornell" / "movie_conversations.txt", ("\n".join(convs) + "\n").encode("ascii"))
    # chat.in: query and reply on alternating lines (lower-cased, tokenised like OpenSubtitles)
    chat = [s.lower() for q, r in pairs[:200] for s in (q, r)]
    _write_bytes(root / "opensubtitles" / "chat.in", ("\n".join(chat) + "\n").encode("utf-8"))
    inputs = ["Hi", "What is your name?", "", "Do you like coffee?", "Where is Bob?"]
    _write_bytes(root / "sample_inputs" / "input_crlf.txt", ("\r\n".join(inputs) + "\r\n").encode("ascii"))
    padded = [s + " " * 20 for s in inputs]
    _write_bytes(root / "sample_inputs" / "input_trailing_spaces.txt", ("\n".join(padded) + "\n").encode("ascii"))
    return root


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw4_chatbot.sample_data", description=__doc__.split("\n")[0])
    p.add_argument("out", help="folder to write the sample data into")
    p.add_argument("--pairs", type=int, default=600, help="query-reply pairs to write")
    return run_cli(lambda a: print(write_sample(a.out, a.pairs)), p, argv)


if __name__ == "__main__":
    sys.exit(main())
