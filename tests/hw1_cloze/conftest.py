"""hw1 tests: the command line of a tiny training run on the generated sample corpus."""

from __future__ import annotations

from pathlib import Path

TINY = Path(__file__).resolve().parents[2] / "hw1_cloze" / "configs" / "tiny.yaml"


def tiny_train_args(run_dir: Path, sample: Path, *extra: str) -> list[str]:
    """``train`` arguments for ``configs/tiny.yaml`` on ``sample``'s novels; ``extra`` follows ``--set``."""
    corpus = f"data.corpus={sample / 'Holmes_Training_Data'}"
    return ["--config", str(TINY), "--run-dir", str(run_dir), "--quiet", "--set", corpus, *extra]
