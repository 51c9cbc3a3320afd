"""Answer the cloze questions: ``python -m hw1_cloze.predict <testing_data.csv> <output.csv>``.

Each of a question's five filled-in sentences is scored by its whole-sentence log-probability
under the forward LSTM, plus the backward LSTM and the Kneser-Ney n-gram when given; the weighted
sum picks the answer. A word outside the vocabulary is scored as <unk>, its probability shared
evenly among all the rare word types <unk> stands for.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from common.checkpoint import load_checkpoint
from common.cli import add_checkpoint_arg, positive_int
from common.device import select_device
from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say
from common.runs import latest_checkpoint
from common.setup import start_inference
from common.text import tokenize
from hw1_cloze.data import CHOICES, read_questions
from hw1_cloze.scoring import LSTMScorer, NgramScorer, SentenceScorer, candidate_sentences, choose

HOMEWORK = "hw1_cloze"


def build_scorers(args: argparse.Namespace) -> list[SentenceScorer]:
    device = select_device(args.device)
    scorers: list[SentenceScorer] = []
    if not args.ngram_only:
        path = args.checkpoint or latest_checkpoint(HOMEWORK)
        scorers.append(LSTMScorer(load_checkpoint(path, HOMEWORK), device, args.batch_size))
        say(f"using checkpoint {path}")
    if args.backward:
        scorers.append(LSTMScorer(load_checkpoint(args.backward, HOMEWORK), device, args.batch_size))
        say(f"using backward checkpoint {args.backward}")
    if args.ngram:
        scorers.append(NgramScorer(args.ngram))
        say(f"using n-gram model {args.ngram}")
    if not scorers:
        raise UserError("--ngram-only needs --ngram PATH")
    return scorers


def parse_weights(text: str | None, n: int) -> list[float]:
    if text is None:
        return [1.0] * n
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise UserError(f"--weights '{text}': expected comma-separated numbers") from None
    if len(weights) != n:
        raise UserError(f"--weights has {len(weights)} numbers for {n} models")
    return weights


def _main(args: argparse.Namespace) -> int:
    start_inference(args.device, args.threads)
    check_outputs([args.output, args.scores], [args.questions, args.checkpoint, args.backward, args.ngram])
    questions = read_questions(args.questions)  # validate input before any slow loading
    scorers = build_scorers(args)
    weights = parse_weights(args.weights, len(scorers))
    start = time.time()
    sentences = candidate_sentences(questions)
    vocab = scorers[0].vocab
    oov = sum(any(t not in vocab for t in tokenize(option)) for q in questions for option in q.options)
    say(f"{oov} of {5 * len(questions)} candidate words are outside the vocabulary: scored as <unk>, "
        f"its probability shared over the {scorers[0].unk_types:,} word types it stands for")
    scores = [s.score(sentences) for s in scorers]
    picks = choose(scores, weights)
    with atomic_write(args.output, newline="") as f:
        f.write("id,answer\n")
        for q, k in zip(questions, picks):
            f.write(f"{q.id},{CHOICES[k]}\n")
    names = " + ".join(f"{w:g}*{s.name}" for w, s in zip(weights, scorers))
    say(f"{len(questions)} questions scored with {names} in {time.time() - start:.1f} s: {args.output}")
    if args.scores:
        with atomic_write(args.scores, "wb") as f:
            np.save(f, np.stack(scores))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw1_cloze.predict", description=__doc__.splitlines()[0])
    p.add_argument("questions", help="testing_data.csv (id,question,a),b),c),d),e))")
    p.add_argument("output", help="where to write the id,answer CSV")
    add_checkpoint_arg(p, HOMEWORK)
    p.add_argument("--backward", help="a backward-direction checkpoint to add")
    p.add_argument("--ngram", help="a Kneser-Ney model from `python -m hw1_cloze.ngram` to add")
    p.add_argument("--ngram-only", action="store_true", help="score with the n-gram model alone")
    p.add_argument("--weights", help="comma-separated weight per model, in the order above (default: all 1)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="sentences per LSTM batch")
    p.add_argument("--scores", help="also save every model's sentence log-probabilities (.npy)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
