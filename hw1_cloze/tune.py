"""Choose the ensemble's weights on dev questions: ``python -m hw1_cloze.tune``.

Dev questions are made from the held-out end of the corpus with decoys drawn as the MSR decoys
were (the words the 4-gram finds likeliest with the left and the right context of the blank, and
of those the ones used most like the true word, as MSR's judges kept only grammatical decoys), so
they are as hard locally as the real ones. Two ways to weigh the members' log-probabilities are
tried: a conditional logistic regression (the softmax over a question's five options of the
weighted scores, weights kept >= 0) and a grid over every weight mix in steps of 0.05, any weight
0. Five-fold cross-validation on dev picks the method, so the accuracy it reports was not tuned
on the folds it was measured on; the test questions are never read.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.device import select_device, set_threads
from common.errors import UserError, run_cli
from common.metrics import say
from common.runs import runs_root
from hw1_cloze import HOMEWORK
from hw1_cloze.ensemble import ENSEMBLE_FILE, FLAGS, KINDS, Member, find_members, load_scorer, write_ensemble
from hw1_cloze.prepare import default_source, prepare_corpus
from hw1_cloze.scoring import DECOYS, DEV_BAND, dev_questions, syntax_vectors


@dataclass
class Tuned:
    weights: np.ndarray  # (M,) >= 0, one per member, in raw log-probability units
    method: str
    dev_accuracy: float  # on the questions the weights were fitted to
    cv_accuracy: float  # out-of-fold: each fold scored with weights fitted on the others
    questions: int

    def stderr(self, accuracy: float) -> float:
        return float(np.sqrt(accuracy * (1 - accuracy) / self.questions))


def _standardise(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, 5, M) scores centred per question and scaled per member; and those scales."""
    centred = scores - scores.mean(axis=1, keepdims=True)
    scale = centred.reshape(-1, scores.shape[2]).std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return centred / scale, scale


def accuracy(scores: np.ndarray, answers: np.ndarray, weights: np.ndarray) -> float:
    return float(((scores @ weights).argmax(axis=1) == answers).mean())


def fit_logit(scores: np.ndarray, answers: np.ndarray, l2: float = 1e-3, steps: int = 500) -> np.ndarray:
    """Weights >= 0 maximising the dev log-likelihood of the right option (projected gradient)."""
    x, scale = _standardise(scores)
    q, m = len(answers), x.shape[2]
    w = np.full(m, 1.0 / m)
    lr = 1.0 / (m + l2)  # the loss's curvature is at most the features' summed variance (1 each)
    for _ in range(steps):
        logits = x @ w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(q), answers] -= 1
        grad = np.einsum("qk,qkm->m", p, x) / q + l2 * w
        w = np.maximum(w - lr * grad, 0.0)
    return w / scale


def grid_weights(m: int, step: float = 0.05) -> np.ndarray:
    """Every mix of ``m`` weights >= 0 summing to 1 in steps of ``step`` (any of them may be 0)."""
    n = round(1 / step)
    rows = [c for c in itertools.product(range(n + 1), repeat=m - 1) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in rows], dtype=np.float64) / n


def fit_grid(scores: np.ndarray, answers: np.ndarray, step: float = 0.05) -> np.ndarray:
    """The grid point with the best dev accuracy (ties: the first, which favours fewer members)."""
    x, scale = _standardise(scores)
    grid = grid_weights(x.shape[2], step)
    picks = np.einsum("qkm,gm->gqk", x, grid).argmax(axis=2)
    best = grid[(picks == answers).mean(axis=1).argmax()]
    return best / scale


METHODS = {"logit": fit_logit, "grid": fit_grid}


def cross_validate(scores: np.ndarray, answers: np.ndarray, fit, folds: int = 5, seed: int = 0) -> float:
    order = np.random.default_rng(seed).permutation(len(answers))
    right = 0
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        w = fit(scores[train], answers[train])
        right += int(((scores[part] @ w).argmax(axis=1) == answers[part]).sum())
    return right / len(answers)


def tune_weights(scores: Sequence[np.ndarray], answers: np.ndarray) -> Tuned:
    """``scores``: per member, the (5 Q,) log-probabilities of the dev sentences, question-major."""
    x = np.stack([np.asarray(s, dtype=np.float64).reshape(-1, 5) for s in scores], axis=2)  # (Q, 5, M)
    if x.shape[2] == 1:
        return Tuned(
            np.ones(1), "single", accuracy(x, answers, np.ones(1)), accuracy(x, answers, np.ones(1)), len(answers)
        )
    cv = {name: cross_validate(x, answers, fit) for name, fit in METHODS.items()}
    method = max(cv, key=lambda k: (cv[k], k == "logit"))
    w = METHODS[method](x, answers)
    w = w / w.max()  # the strongest member at 1: easier to read
    return Tuned(w, method, accuracy(x, answers, w), cv[method], len(answers))


def dev_record(tuned: Tuned, seed: int) -> dict:
    return {
        "questions": tuned.questions,
        "seed": seed,
        "method": tuned.method,
        "accuracy": round(tuned.dev_accuracy, 4),
        "stderr": round(tuned.stderr(tuned.dev_accuracy), 4),
        "cv_accuracy": round(tuned.cv_accuracy, 4),
        "cv_stderr": round(tuned.stderr(tuned.cv_accuracy), 4),
    }


def make_dev(
    corpus_source: str | None,
    n: int,
    seed: int,
    valid_tokens: int,
    ngram=None,
    decoys="grammatical",
    band: tuple[int, int] = DEV_BAND,
    spread: float = 0.0,
    balance: bool = False,
):
    """(sentences, answers) of ``n`` dev questions from the prepared corpus's held-out end."""
    source = corpus_source or default_source()
    if source is None:
        raise UserError("no corpus given and MLDS_DATA is not set")
    corpus = prepare_corpus(source, quiet=True)
    train, valid = corpus.split(valid_tokens)
    syntax = syntax_vectors(train, len(corpus.vocab)) if decoys == "grammatical" and ngram is not None else None
    return dev_questions(
        np.asarray(valid),
        corpus.vocab,
        n=n,
        seed=seed,
        band=band,
        ngram=ngram,
        decoys=decoys,
        syntax=syntax,
        spread=spread,
        balance=balance,
    )


def _members(args: argparse.Namespace) -> list[Member]:
    given = {k: getattr(args, FLAGS[k]) for k in KINDS if getattr(args, FLAGS[k])}
    found = given or find_members()
    missing = [k for k in KINDS if k not in found]
    if missing:
        say(f"tuning without {', '.join(missing)} (none {'given' if given else 'found under ' + str(runs_root())})")
    if not found:
        raise UserError(f"no members to tune: train some first (none under {runs_root() / HOMEWORK}/)")
    return [Member(k, Path(found[k])) for k in KINDS if k in found]


def _main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    members = _members(args)
    scorers = [load_scorer(m, select_device(args.device)) for m in members]
    ngram = next((s.model for m, s in zip(members, scorers) if m.name == "ngram"), None)
    if ngram is None:
        say("no n-gram member: dev decoys drawn at random among frequency neighbours (easier than the test)")
    sentences, answers = make_dev(
        args.corpus,
        args.questions,
        args.seed,
        args.valid_tokens,
        ngram,
        args.decoys,
        tuple(args.dev_band),
        args.dev_spread,
        args.dev_balance,
    )
    if len(answers) < args.questions:
        say(f"only {len(answers)} dev questions could be made from the held-out tokens")
    scores = [s.score(sentences) for s in scorers]
    tuned = tune_weights(scores, answers)
    for m, w in zip(members, tuned.weights):
        m.weight = float(w)
    out = args.out or runs_root() / HOMEWORK / ENSEMBLE_FILE
    write_ensemble(out, members, dev_record(tuned, args.seed))
    names = " + ".join(f"{m.weight:.3g}*{m.name}" for m in members)
    say(
        f"{names}: dev accuracy {tuned.dev_accuracy:.3f} ± {tuned.stderr(tuned.dev_accuracy):.3f} on "
        f"{tuned.questions} questions ({tuned.method}; 5-fold cross-validated {tuned.cv_accuracy:.3f}): {out}"
    )
    return 0


def add_decoys_arg(p: argparse.ArgumentParser) -> None:
    """``--decoys``: how dev questions draw their decoys (see :func:`hw1_cloze.scoring.dev_questions`)."""
    p.add_argument(
        "--decoys",
        choices=DECOYS,
        default="grammatical",
        help="dev decoys: the 4-gram's best fits on both sides of the blank that are used like the true word "
        "(as MSR's judges kept grammatical ones), the best fits in any form, only those below the true word, "
        "or the best after the left context only",
    )
    p.add_argument(
        "--dev-band",
        nargs=2,
        type=int,
        default=list(DEV_BAND),
        metavar=("LO", "HI"),
        help="dev blanks are words of these vocabulary frequency ranks",
    )
    p.add_argument(
        "--dev-spread",
        type=float,
        default=0.0,
        metavar="X",
        help="draw dev decoys within X times the true word's frequency rank either way (0: of similar frequency)",
    )
    p.add_argument(
        "--dev-balance",
        action="store_true",
        help="make the true word as often the commonest of its five options as the second, ..., the rarest",
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw1_cloze.tune", description=__doc__.splitlines()[0])
    for kind in KINDS:
        p.add_argument(f"--{FLAGS[kind]}", help=f"the {kind} member (default: the newest under runs/{HOMEWORK}/)")
    p.add_argument("--out", help=f"where to write the weights (default: runs/{HOMEWORK}/{ENSEMBLE_FILE})")
    p.add_argument("--questions", type=int, default=2000, help="dev questions to make")
    p.add_argument("--seed", type=int, default=0, help="seed of the dev questions")
    add_decoys_arg(p)
    p.add_argument("--corpus", help="folder of .TXT novels or the .tar.xz (default: $MLDS_DATA/hw1/...)")
    p.add_argument("--valid-tokens", type=int, default=200000, help="held-out tokens at the corpus's end")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: the free cores)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
