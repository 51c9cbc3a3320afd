import textwrap
from pathlib import Path

import pytest

from hw4_chatbot import train
from hw4_chatbot.sample_data import write_sample

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "hw4_chatbot" / "configs" / "tiny.yaml"

# a training process that dies (SIGKILL) right after saving its step-3 checkpoint
KILL_AFTER_STEP_3 = textwrap.dedent("""
    import os, signal, sys
    from common.checkpoint import CheckpointManager
    save = CheckpointManager.save
    def save_then_die(self, state, is_best=False):
        out = save(self, state, is_best)
        if state["step"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    CheckpointManager.save = save_then_die
    from hw4_chatbot import train
    sys.exit(train.main(sys.argv[1:]))
""")


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
