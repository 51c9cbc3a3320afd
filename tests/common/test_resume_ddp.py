"""A SIGKILLed run resumed from last.pt ends identical to an uninterrupted one; DDP ranks agree."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from common.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]


def _toy(run_dir, *extra, **kw):
    cmd = [sys.executable, "-m", "tests.common.toy_train", "--run-dir", str(run_dir), "--quiet", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, cwd=REPO, env=env, **kw)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    straight = _toy(tmp_path / "straight", "--set", "steps=30")
    assert straight.wait(120) == 0

    victim = _toy(tmp_path / "killed", "--set", "steps=30", "sleep=0.1")
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and len(read_metrics(metrics)) >= 10:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "params_rank0.pt").exists()  # really stopped halfway

    resumed = _toy(tmp_path / "killed", "--resume", "--set", "steps=30")
    assert resumed.wait(120) == 0
    a = torch.load(tmp_path / "straight" / "params_rank0.pt")
    b = torch.load(tmp_path / "killed" / "params_rank0.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_two_process_ddp_ranks_hold_identical_parameters(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "tests.common.toy_train",
        "--run-dir",
        str(tmp_path),
        "--quiet",
        "--set",
        "steps=5",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    p0 = torch.load(tmp_path / "params_rank0.pt")
    p1 = torch.load(tmp_path / "params_rank1.pt")
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    # each rank saw different data; identical weights mean gradients really were averaged
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.common.toy_train",
            "--run-dir",
            str(tmp_path / "one"),
            "--quiet",
            "--set",
            "steps=5",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert single.returncode == 0
    alone = torch.load(tmp_path / "one" / "params_rank0.pt")
    assert any(not torch.equal(alone[k], p0[k]) for k in p0)
