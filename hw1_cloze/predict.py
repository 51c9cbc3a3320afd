"""Answer the cloze questions: ``python -m hw1_cloze.predict <testing_data.csv> <output.csv>``.

Each of a question's five filled-in sentences is scored by every member of the ensemble (forward
and backward LSTMs and the Kneser-Ney n-gram by whole-sentence log-probability, the skip-gram by
how well the candidate predicts the rest of the sentence); the weighted sum picks the answer.
With no member flags the newest ``runs/hw1_cloze/ensemble.yaml`` (``python -m hw1_cloze.tune``)
gives the members and weights; without one, every newest member found is used at weight 1. A
word outside the vocabulary is scored as <unk>, its probability shared evenly among all the rare
word types <unk> stands for.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from common.cli import non_negative_int, positive_int
from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say
from common.runs import runs_root
from common.setup import start_inference
from common.text import tokenize
from hw1_cloze import HOMEWORK, ensemble
from hw1_cloze.data import CHOICES, read_questions
from hw1_cloze.ensemble import Member
from hw1_cloze.scoring import SentenceScorer, candidate_sentences, choose

MEMBER_FLAGS = ", ".join(f"--{ensemble.FLAGS[kind]}" for kind in ensemble.KINDS)


def explicit_members(args: argparse.Namespace) -> list[Member]:
    """The members named by flags (empty when none is: then the tuned ensemble decides)."""
    if args.ngram_only:
        if not args.ngram:
            raise UserError("--ngram-only needs --ngram PATH")
        return [Member("ngram", Path(args.ngram))]
    named = [(kind, getattr(args, ensemble.FLAGS[kind])) for kind in ensemble.KINDS]
    return [Member(kind, Path(path)) for kind, path in named if path]


def default_members(path: str | None = None) -> tuple[list[Member], str]:
    """``path``'s or the newest ensemble.yaml's members, else every newest member found, at weight 1;
    and a line saying which (printed once the members have loaded, so an error stays one line)."""
    path = path or ensemble.newest_ensemble()
    if path is not None:
        members, dev = ensemble.read_ensemble(path)
        record = f" (dev accuracy {dev['accuracy']} ± {dev.get('stderr')})" if "accuracy" in dev else ""
        return [m for m in members if m.weight > 0], f"using {path}{record}"
    found = ensemble.find_members()
    missing = [k for k in ensemble.KINDS if k not in found]
    if not found:
        raise UserError(
            f"nothing to predict with under {runs_root() / HOMEWORK}/: train a member first "
            f"(python -m {HOMEWORK}.train, .ngram, .semantic or .cooc) or pass --checkpoint"
        )
    note = (
        f"no {ensemble.ENSEMBLE_FILE} (python -m {HOMEWORK}.tune writes one); "
        f"{'missing: ' + ', '.join(missing) + '; ' if missing else ''}every member found at weight 1"
    )
    return [Member(k, found[k]) for k in ensemble.KINDS if k in found], note


def build_scorers(args: argparse.Namespace, device: torch.device) -> tuple[list[SentenceScorer], list[float]]:
    members, note = explicit_members(args), ""
    if members and args.ensemble:
        raise UserError(f"--ensemble gives the members itself: drop {MEMBER_FLAGS}")
    if members:
        weights = parse_weights(args.weights, len(members))
    else:
        if args.weights:
            raise UserError(f"--weights needs the members it weighs ({MEMBER_FLAGS})")
        members, note = default_members(args.ensemble)
        weights = [m.weight for m in members]
    scorers = [ensemble.load_scorer(m, device, args.batch_size) for m in members]
    if note:  # said once all have loaded, so a bad file is one error line
        say(note)
    for m, w in zip(members, weights):
        say(f"using {m.name} {m.path} (weight {w:g})")
    return scorers, weights


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
    device = start_inference(args.device, args.threads)
    check_outputs(
        [args.output, args.scores],
        [args.questions, args.checkpoint, args.backward, args.ngram, args.semantic, args.cooc, args.ensemble],
    )
    questions = read_questions(args.questions)  # validate input before any slow loading
    scorers, weights = build_scorers(args, device)
    start = time.time()
    sentences = candidate_sentences(questions)
    vocab = scorers[0].vocab
    oov = sum(any(t not in vocab for t in tokenize(option)) for q in questions for option in q.options)
    say(
        f"{oov} of {5 * len(questions)} candidate words are outside the vocabulary: scored as <unk>, "
        f"its probability shared over the {scorers[0].unk_types:,} word types it stands for"
    )
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
    p.add_argument(
        "--ensemble",
        help=f"members and weights from this {ensemble.ENSEMBLE_FILE} "
        f"(default, when no member is named: the newest under runs/{HOMEWORK}/)",
    )
    p.add_argument("--checkpoint", help="a forward LSTM checkpoint (best.pt)")
    p.add_argument("--backward", help="a backward-direction checkpoint to add")
    p.add_argument("--ngram", help="a Kneser-Ney model from `python -m hw1_cloze.ngram` to add")
    p.add_argument("--semantic", help="a skip-gram model from `python -m hw1_cloze.semantic` to add")
    p.add_argument("--cooc", help="a co-occurrence index from `python -m hw1_cloze.cooc` to add")
    p.add_argument("--ngram-only", action="store_true", help="score with the n-gram model alone")
    p.add_argument("--weights", help="comma-separated weight per model given, in the order above (default: all 1)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="sentences per LSTM batch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads (0: the cores that are free)")
    p.add_argument("--scores", help="also save every model's sentence log-probabilities (.npy)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
