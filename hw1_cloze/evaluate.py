"""Accuracy of a submission: ``python -m hw1_cloze.evaluate <output.csv> <answers.csv>``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.errors import UserError, run_cli
from hw1_cloze.data import read_answers


def accuracy(predicted: dict[int, str], answers: dict[int, str]) -> tuple[float, int]:
    """Share of correct answers over the ids present in both, and how many ids that is."""
    common = sorted(set(predicted) & set(answers))
    if not common:
        raise UserError("the submission and the answer key share no ids")
    return sum(predicted[i] == answers[i] for i in common) / len(common), len(common)


def _main(args: argparse.Namespace) -> int:
    acc, n = accuracy(read_answers(args.submission), read_answers(args.answers))
    print(f"accuracy {acc:.4f} on {n} questions")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw1_cloze.evaluate", description=__doc__)
    p.add_argument("submission", help="id,answer CSV written by hw1_cloze.predict")
    p.add_argument("answers", help="id,answer key, e.g. test_answer_public.csv (ids 1-520)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
