from pathlib import Path

import pytest

from hw4_chatbot import train
from hw4_chatbot.sample_data import write_sample

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("hw4data"))


@pytest.fixture(scope="session")
def tiny_run(sample, tmp_path_factory) -> Path:
    """A tiny S2S model trained on the sample data once for the whole session (a few seconds)."""
    run = tmp_path_factory.mktemp("hw4runs") / "s2s"
    code = train.main(
        [
            "--config",
            str(REPO / "hw4_chatbot/configs/tiny.yaml"),
            "--run-dir",
            str(run),
            "--quiet",
            "--set",
            f"data.path={sample / 'cornell_pairs'}",
            "train.epochs=6",
        ]
    )
    assert code == 0
    return run
