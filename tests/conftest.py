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


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> Path:
    """One cache for the whole test run (``$MLDS_TEST_CACHE`` if set, else a fresh tmp folder).

    Shared within the run so the real-data tests unpack each course archive once; fresh per run
    so no test depends on, or leaves, what an earlier run or a training command put in ``.cache``.
    """
    value = os.environ.get("MLDS_TEST_CACHE")
    return Path(value) if value else tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch, _session_cache):
    """Runs of one test never leak into the repo or into another test; caches stay out of the repo."""
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path / "runs"))
    if real_data() is not None:
        monkeypatch.setenv("MLDS_DATA", str(real_data()))
    monkeypatch.setenv("MLDS_CACHE", str(_session_cache))
