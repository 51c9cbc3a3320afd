"""hw3 tests: a private decode cache per test, and small helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "hw3_gan" / "configs"


@pytest.fixture(autouse=True)
def _own_cache(_isolated_runs, tmp_path, monkeypatch):
    # Sample data sets live in tmp folders; their decoded arrays must not pile up in the repo's .cache.
    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))


@contextmanager
def own_cache(root: Path) -> Iterator[None]:
    """For module fixtures (the per-test cache above is not theirs): decode into ``root``'s own cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MLDS_CACHE", str(root / "cache"))
    try:
        yield
    finally:
        mp.undo()


def tiny_train_args(run_dir: Path, data: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(CONFIGS / "tiny.yaml"),
        "--run-dir",
        str(run_dir),
        "--quiet",
        "--device",
        "cpu",
        "--set",
        f"data.path={data}",
        "data.holdout_percent=0",
        *extra,
    ]
