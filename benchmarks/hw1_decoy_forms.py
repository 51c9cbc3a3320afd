"""How alike in form a cloze question's five options are, on the test and on dev, and what it does
to each member: why dev decoys are ``grammatical``.

    python benchmarks/hw1_decoy_forms.py --members benchmarks/out/hw1

MSR's judges kept only decoys that are grammatical in the sentence, so the test's options often
share the true word's form. The form here is the ending: -ing, -ed, -ly, -s or none of these. The
script prints the share of questions whose five options all end alike among the test's options
(read from ``testing_data.csv`` alone) and among 2,000 dev questions for each decoy rule
(``sentence`` and ``grammatical`` with a range of pool sizes), then each member's accuracy on dev
and on the public half split by that property (this split reads the public answers: it explains,
it chooses nothing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common_bench import machine_line  # noqa: E402
from benchmarks.hw1_cloze import member_paths  # noqa: E402
from common.runs import data_root  # noqa: E402
from hw1_cloze import scoring  # noqa: E402
from hw1_cloze.data import CHOICES, read_answers, read_questions  # noqa: E402
from hw1_cloze.ensemble import Member, load_scorer  # noqa: E402
from hw1_cloze.prepare import prepare_corpus  # noqa: E402

ENDINGS = ("ing", "ed", "ly", "s")


def ending(word: str) -> str:
    word = word.lower()
    return next((e for e in ENDINGS if word.endswith(e) and len(word) > len(e) + 2), "")


def alike(options: list[list[str]]) -> np.ndarray:
    """Per question: do its five options all end alike?"""
    return np.array([len({ending(w) for w in opts}) == 1 for opts in options])


def dev_options(sentences: list[list[str]]) -> list[list[str]]:
    """The five words at the blank of each dev question (the one position where its sentences differ)."""
    out = []
    for q in range(0, len(sentences), 5):
        group = sentences[q : q + 5]
        pos = next(i for i in range(len(group[0])) if len({s[i] for s in group}) > 1)
        out.append([s[pos] for s in group])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=Path, required=True, help="folder holding the four trained members")
    p.add_argument("--data", type=Path, default=None, help="course data folder (default: $MLDS_DATA/hw1)")
    p.add_argument("--pools", type=int, nargs="+", default=[4, 6, 8, 10], help="grammatical pool sizes to try")
    p.add_argument("--questions", type=int, default=2000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = args.data or (data_root() / "hw1" if data_root() else None)
    if data is None:
        p.error("no --data and MLDS_DATA is not set")
    print(machine_line(), flush=True)
    test_q = read_questions(data / "testing_data.csv")
    share = alike([q.options for q in test_q]).mean()
    print(f"test, options only ({len(test_q)} questions): all five end alike {share:.3f}")

    scorers = {k: load_scorer(Member(k, path), torch.device("cpu")) for k, path in member_paths(args.members).items()}
    corpus = prepare_corpus(str(data / "Holmes_Training_Data.tar.xz"), quiet=True)
    train, valid = corpus.split(200000)
    syntax = scoring.syntax_vectors(train, len(corpus.vocab))
    ngram, valid = scorers["ngram"].model, np.asarray(valid)
    dev = {}
    for pool in [0, *args.pools]:
        mode = "grammatical" if pool else "sentence"
        dev[pool] = scoring.dev_questions(
            valid, corpus.vocab, n=args.questions, ngram=ngram, decoys=mode, syntax=syntax, syntax_pool=pool
        )
        name = f"grammatical, pool {pool}" if pool else "sentence"
        print(f"dev, {name:19s}: all five end alike {alike(dev_options(dev[pool][0])).mean():.3f}", flush=True)

    key = read_answers(data / "test_answer_public.csv")
    public = [q for q in test_q if q.id in key]
    answers = np.array([CHOICES.index(key[q.id]) for q in public])
    sets = {"public": (scoring.candidate_sentences(public), answers, alike([q.options for q in public]))}
    for pool in (0, scoring.SYNTAX_POOL):
        sents, ans = dev[pool] if pool in dev else (None, None)
        if sents is not None:
            sets[f"dev {'sentence' if pool == 0 else f'grammatical {pool}'}"] = (sents, ans, alike(dev_options(sents)))
    print("\naccuracy: all questions (those whose options end alike / the others)")
    for name, scorer in scorers.items():
        cells = []
        for sents, ans, same in sets.values():
            right = scorer.score(sents).reshape(-1, 5).argmax(1) == ans
            cells.append(f"{right.mean():.3f} ({right[same].mean():.3f} / {right[~same].mean():.3f})")
        print(f"{name:9s} " + "  ".join(f"{s}: {c}" for s, c in zip(sets, cells)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
