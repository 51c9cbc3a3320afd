"""hw4 commands never harm the user's files; RL runs resume bit-exact and stay RL runs."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from common.checkpoint import load_checkpoint
from hw4_chatbot import evaluate, predict, train
from tests.safety import assert_refused, assert_user_file_kept, user_folder

from .conftest import KILL_AFTER_STEP_3

REPO = Path(__file__).resolve().parents[2]
TINY, TINY_RL = str(REPO / "hw4_chatbot/configs/tiny.yaml"), str(REPO / "hw4_chatbot/configs/tiny_rl.yaml")


@pytest.fixture
def d(tmp_path):
    folder = user_folder(tmp_path / "d")
    (folder / "in.txt").write_text("hi\nwhat is your name ?\n")
    (folder / "bad.pt").write_bytes(b"junk")
    (folder / "bin.txt").write_bytes(b"\x00\x01\x02")
    return folder


PREDICT_CASES = {
    "output is the input": (["S2S", "in.txt", "in.txt"], "in.txt: is also an input"),
    "output is a folder": (["S2S", "in.txt", "."], "is a folder, expected an output file"),
    "output is the checkpoint": (["S2S", "in.txt", "CKPT"], "best.pt: is also an input"),
    "beam 0": (["S2S", "in.txt", "out.txt", "--set", "strategy=beam", "beam=0"], "config key 'beam' must be > 0"),
    "corrupt checkpoint": (["S2S", "in.txt", "out.txt", "--checkpoint", "bad.pt"], "bad.pt: not a readable checkpoint"),
    "binary input": (["S2S", "bin.txt", "out.txt"], "bin.txt: looks like a binary file"),
    "unknown preset": (["NOPE", "in.txt", "out.txt"], "unknown model 'NOPE'"),
}


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_refuses_cleanly(case, d, tiny_run, capsys):
    argv, needle = PREDICT_CASES[case]
    ckpt = str(tiny_run / "best.pt")
    argv = [ckpt if a == "CKPT" else str(d / a) if a.endswith((".txt", ".pt")) or a == "." else a for a in argv]
    if "--checkpoint" not in argv:
        argv += ["--checkpoint", ckpt]
    assert_refused(predict.main, argv, needle, capsys, [d, tiny_run])


def test_predict_reads_utf16_and_keeps_the_user_folder(d, tiny_run):
    src = d / "ps.txt"
    src.write_bytes("What is your name?\r\nCafé ?\r\n".encode("utf-16"))
    assert predict.main(["S2S", str(src), str(d / "out.txt"), "--checkpoint", str(tiny_run / "best.pt")]) == 0
    assert len((d / "out.txt").read_text().splitlines()) == 2
    assert_user_file_kept(d)


def test_evaluate_refuses_bad_outputs_and_names_its_own_flags(d, tiny_run, capsys):
    ckpt = tiny_run / "best.pt"
    base = ["--models", "S2S", "--s2s", ckpt, "--limit", "3", "--latency-n", "1"]
    assert_refused(evaluate.main, [*base, "--out", d], "is a folder, expected an output file", capsys, [d, tiny_run])
    assert_refused(evaluate.main, [*base, "--out", ckpt], "best.pt: is also an input", capsys, [d, tiny_run])
    line = assert_refused(evaluate.main, ["--models", "S2S", "--out", d / "t.md"], "train first", capsys, [d])
    assert "pass --s2s" in line and "--checkpoint" not in line


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.batch_size=0", "config key 'train.batch_size' must be > 0, got 0"),
        ("train.lr=-1", "config key 'train.lr' must be > 0, got -1"),
        ("train.epochs=-1", "config key 'train.epochs' must be > 0, got -1"),
        ("data.max_query_len=0", "config key 'data.max_query_len' must be > 0, got 0"),
        ("decode.beam=0", "config key 'decode.beam' must be > 0, got 0"),
    ],
)
def test_train_refuses_bad_values_before_writing(override, needle, sample, tmp_path, capsys):
    run = user_folder(tmp_path / "run")
    argv = ["--config", TINY, "--run-dir", run, "--quiet", "--set", f"data.path={sample / 'cornell_pairs'}", override]
    assert_refused(train.main, argv, needle, capsys, [tmp_path])


def test_finished_run_is_refused(tiny_run, sample, capsys):
    argv = ["--config", TINY, "--run-dir", tiny_run, "--quiet", "--set", f"data.path={sample / 'cornell_pairs'}"]
    assert_refused(train.main, argv, "already holds a run (config.yaml); add --resume", capsys, [tiny_run])


def _rl_args(run_dir, init, *extra):
    return [
        "--config",
        TINY_RL,
        "--run-dir",
        str(run_dir),
        "--quiet",
        "--set",
        f"rl.init_checkpoint={init}",
        "train.eval_every=3",
        *extra,
    ]


def test_rl_sigkill_then_resume_is_bit_exact_and_stays_rl(tiny_run, tmp_path):
    init = tiny_run / "best.pt"
    assert train.main(_rl_args(tmp_path / "straight", init, "train.max_steps=6")) == 0
    killed = user_folder(tmp_path / "killed")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_STEP_3, *_rl_args(killed, init, "train.max_steps=6")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert load_checkpoint(killed / "last.pt")["step"] == 3
    # the README's command: no --config; mode, model and data come from the run itself
    assert train.main(["--run-dir", str(killed), "--resume", "--quiet"]) == 0
    assert yaml.safe_load((killed / "config.yaml").read_text())["mode"] == "rl"
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(killed / "last.pt")
    assert a["step"] == b["step"] == 6 and b["extra"]["kind"] == "rl"
    for k, v in a["models"]["model"].items():
        assert torch.equal(v, b["models"]["model"][k]), k
    assert a["extra"]["recent_replies"] == b["extra"]["recent_replies"]
    assert a["extra"]["episode_rng"] == b["extra"]["episode_rng"]
    assert_user_file_kept(killed)
    copy = tmp_path / "copy"
    shutil.copytree(killed, copy)
    assert train.main(["--run-dir", str(copy), "--resume", "--quiet", "--set", "train.max_steps=7"]) == 0
    assert load_checkpoint(copy / "last.pt")["extra"]["kind"] == "rl"


def test_train_data_error_is_one_line_without_quiet_and_leaves_no_folder(tmp_path, capsys):
    argv = ["--config", TINY, "--run-dir", tmp_path / "run", "--set", f"data.path={tmp_path / 'none'}"]
    assert_refused(train.main, argv, f"{tmp_path / 'none'}: data file not found", capsys, [tmp_path])
    assert not (tmp_path / "run").exists()
