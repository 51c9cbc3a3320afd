"""Fixtures shared by the hw2 tests: one synthetic course folder and one model trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw2_video_caption import train
from hw2_video_caption.sample_data import write_sample_data

TINY = str(Path(__file__).resolve().parents[2] / "hw2_video_caption" / "configs" / "tiny.yaml")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """60 training, 20 test and 4 peer-review synthetic videos in the course layout."""
    return write_sample_data(tmp_path_factory.mktemp("hw2") / "data", n_train=60, n_test=20, n_peer=4, seed=0)


@pytest.fixture(scope="session")
def trained(sample_dir, tmp_path_factory) -> Path:
    """The run folder of a tiny model trained on the sample data (trained once per session)."""
    run_dir = tmp_path_factory.mktemp("hw2run") / "run"
    rc = train.main(["--config", TINY, "--set", f"data.data_dir={sample_dir}", "--run-dir", str(run_dir), "--quiet"])
    assert rc == 0
    return run_dir
