from pathlib import Path

import pytest

from hw4_chatbot import train
from hw4_chatbot.sample_data import write_sample

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "hw4_chatbot" / "configs" / "tiny.yaml"


def tiny_train_args(run_dir: Path, sample: Path, *extra: str) -> list[str]:
    """``train`` arguments for ``configs/tiny.yaml`` on ``sample``'s pairs; ``extra`` follows ``--set``."""
    pairs = f"data.path={sample / 'cornell_pairs'}"
    return ["--config", str(TINY), "--run-dir", str(run_dir), "--quiet", "--set", pairs, *extra]


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("hw4data"))


@pytest.fixture(scope="session")
def tiny_run(sample, tmp_path_factory) -> Path:
    """A tiny S2S model trained on the sample data once for the whole session (a few seconds)."""
    run = tmp_path_factory.mktemp("hw4runs") / "s2s"
    code = train.main(tiny_train_args(run, sample, "train.epochs=6"))
    assert code == 0
    return run
