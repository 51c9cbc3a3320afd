"""hw1 tests: the command line of a tiny training run on the generated sample corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw1_cloze.data import CHOICES, read_answers, read_questions
from hw1_cloze.sample_data import make_sample
from hw1_cloze.scoring import candidate_sentences

TINY = Path(__file__).resolve().parents[2] / "hw1_cloze" / "configs" / "tiny.yaml"


def tiny_train_args(run_dir: Path, sample: Path, *extra: str) -> list[str]:
    """``train`` arguments for ``configs/tiny.yaml`` on ``sample``'s novels; ``extra`` follows ``--set``."""
    corpus = f"data.corpus={sample / 'Holmes_Training_Data'}"
    return ["--config", str(TINY), "--run-dir", str(run_dir), "--quiet", "--set", corpus, *extra]


def public_accuracy(scorer, sample: Path) -> float:
    """``scorer``'s accuracy on ``sample``'s questions, choosing by its scores alone."""
    questions, key = read_questions(sample / "testing_data.csv"), read_answers(sample / "test_answer.csv")
    picks = scorer.score(candidate_sentences(questions)).reshape(-1, 5).argmax(1)
    return float(np.mean([CHOICES[k] == key[q.id] for q, k in zip(questions, picks)]))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A generated corpus and 60 questions (modules that need another size define their own)."""
    return make_sample(tmp_path_factory.mktemp("hw1sample"), novels=2, sentences=1500, questions=60)
