"""Shared test set-up: real-data location, repo root, and one torch thread per test process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


def real_data() -> Path | None:
    """``$MLDS_DATA`` resolved against the repo root, or None when unset."""
    value = os.environ.get("MLDS_DATA")
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else (REPO / path).resolve()


needs_data = pytest.mark.skipif(real_data() is None, reason="MLDS_DATA not set")


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Runs and caches of one test never leak into the repo or into another test."""
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path / "runs"))
    if real_data() is not None:
        monkeypatch.setenv("MLDS_DATA", str(real_data()))
    monkeypatch.setenv("MLDS_CACHE", os.environ.get("MLDS_TEST_CACHE", str(REPO / ".cache")))
