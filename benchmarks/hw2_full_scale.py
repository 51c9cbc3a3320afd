"""HW2 at the course's full size: one epoch of ``configs/default.yaml`` on a generated data set.

The set has the course layout and size (1,450 training, 100 test and 100 peer-review videos of
``(80, 4096)`` float64 features, 3.8 GB for training, captions from the real training_label.json);
its features are random, so this measures memory and speed, not caption quality. It is written to
the git-ignored cache and deleted afterwards. Training and prediction run as child processes with
one thread; each one's peak resident memory comes from the operating system (``wait4``).

    MLDS_DATA=../shared/data python benchmarks/hw2_caption.py --full-scale --out benchmarks/out/hw2_full
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common.errors import UserError
from common.metrics import read_metrics
from common.runs import REPO_ROOT, cache_dir
from hw2_video_caption.data import course_data_dir, load_labels
from hw2_video_caption.sample_data import write_full_size_data

CONFIG = REPO_ROOT / "hw2_video_caption" / "configs" / "default.yaml"


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak resident memory in GB) of a child process; a failure is an error."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise UserError(f"exit status {proc.returncode}: {' '.join(cmd)}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def full_scale(
    out: str | os.PathLike,
    seed: int = 0,
    labels: Path | None = None,
    n_train: int = 1450,
    n_test: int = 100,
    n_peer: int = 100,
    keep: bool = False,
    config_sets: Sequence[str] = (),
) -> int:
    """Generate, train one epoch, caption test and peer-review videos; print the figures.

    ``config_sets`` are extra training overrides (the test runs this path with a few videos).
    """
    if labels is None:
        real = course_data_dir()
        if real is None:
            raise UserError("set MLDS_DATA: the generated set takes its captions from the real training_label.json")
        labels = real / "training_label.json"
    out, root = Path(out), cache_dir("hw2_video_caption", "full_scale")
    out.mkdir(parents=True, exist_ok=True)
    data, run_dir = root / "MLDS_hw2_data", root / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLDS_CACHE": str(root / "cache")}
    try:
        start = time.perf_counter()
        write_full_size_data(data, list(load_labels(labels).values()), n_train, n_test, n_peer, seed)
        print(f"generated {n_train} + {n_test} + {n_peer} videos in {time.perf_counter() - start:.0f}s: {data}")
        py = [sys.executable, "-m"]
        train_s, train_gb = run_measured(
            py
            + [
                "hw2_video_caption.train",
                "--config",
                str(CONFIG),
                "--set",
                f"data.data_dir={data}",
                "train.epochs=1",
                "device=cpu",
                "threads=1",
                *config_sets,
                "--run-dir",
                str(run_dir),
                "--quiet",
            ],
            env,
        )
        rate = read_metrics(run_dir / "metrics.jsonl")[-1]["videos_per_s"]
        print(
            f"train 1 epoch: {train_s:.0f}s wall (incl. start-up, feature cache and validation), "
            f"{rate:.1f} videos/s, peak RSS {train_gb:.2f} GB"
        )
        pred_s, pred_gb = run_measured(
            py
            + [
                "hw2_video_caption.predict",
                str(data),
                str(out / "test_output.txt"),
                str(out / "peer_review_output.txt"),
                "--checkpoint",
                str(run_dir / "best.pt"),
                "--device",
                "cpu",
            ],
            env,
        )
        print(
            f"predict {n_test} test + {n_peer} peer-review captions: {pred_s:.1f}s wall (incl. start-up), "
            f"peak RSS {pred_gb:.2f} GB"
        )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0
