"""hw1 commands never harm the user's files: bad inputs are one line, exit 2, and change nothing."""

import shutil

import pytest
import torch
import yaml

from hw1_cloze import evaluate, predict, train
from hw1_cloze.sample_data import make_sample
from tests.safety import assert_refused, assert_user_file_kept, user_folder

from .conftest import tiny_train_args


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp("hw1safe"), novels=2, sentences=400, questions=8)


def _train_args(sample, run_dir, *extra):
    return tiny_train_args(run_dir, sample, "train.max_steps=20", "train.eval_every=10", *extra)


@pytest.fixture(scope="module")
def run(sample, tmp_path_factory):
    run_dir = user_folder(tmp_path_factory.mktemp("hw1run") / "run")  # trained into a folder of the user's
    assert train.main(_train_args(sample, run_dir)) == 0
    assert_user_file_kept(run_dir)
    return run_dir


@pytest.fixture
def d(sample, tmp_path):
    folder = user_folder(tmp_path / "d")
    shutil.copy(sample / "testing_data.csv", folder / "q.csv")
    (folder / "bad.pt").write_bytes(b"not a checkpoint")
    (folder / "trunc.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    (folder / "bin.csv").write_bytes(b"\x00\x01\x02binary")
    (folder / "noblank.csv").write_text("id,question,a),b),c),d),e)\r\n1,No blank here.,a,b,c,d,e\r\n")
    (folder / "nohead.csv").write_text("1,a\n2,b\n")
    (folder / "dup.csv").write_text("id,answer\n1,a\n1,b\n")
    (folder / "key.csv").write_text("id,answer\n1,a\n2,b\n")
    return folder


PREDICT_CASES = {
    "output is the input": (["q.csv", "q.csv"], "q.csv: is also an input"),
    "output is a folder": (["q.csv", "."], "is a folder, expected an output file"),
    "output is the checkpoint": (["q.csv", "CKPT"], "best.pt: is also an input"),
    "scores is the output": (["q.csv", "out.csv", "--scores", "out.csv"], "given as two outputs"),
    "batch size 0": (["q.csv", "out.csv", "--batch-size", "0"], "argument --batch-size: must be at least 1"),
    "truncated n-gram": (
        ["q.csv", "out.csv", "--ngram", "trunc.npz", "--ngram-only"],
        "trunc.npz: not a readable n-gram model",
    ),
    "corrupt checkpoint": (["q.csv", "out.csv", "--checkpoint", "bad.pt"], "bad.pt: not a readable checkpoint"),
    "binary questions": (["bin.csv", "out.csv"], "bin.csv: looks like a binary file"),
    "missing questions": (["none.csv", "out.csv"], "none.csv: file not found"),
    "question without blank": (["noblank.csv", "out.csv"], "noblank.csv:2: question must have exactly one blank"),
}


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_refuses_cleanly(case, d, run, capsys):
    argv, needle = PREDICT_CASES[case]
    ckpt = str(run / "best.pt")
    argv = [ckpt if a == "CKPT" else str(d / a) if a.endswith((".csv", ".pt", ".npz")) or a == "." else a for a in argv]
    if "--checkpoint" not in argv:
        argv += ["--checkpoint", ckpt]
    assert_refused(predict.main, argv, needle, capsys, [d, run])


@pytest.mark.parametrize(
    "name, needle",
    [("nohead.csv", "nohead.csv:1: expected a header 'id,answer'"), ("dup.csv", "dup.csv:3: duplicate id 1")],
)
def test_evaluate_refuses_submissions_it_would_misread(name, needle, d, capsys):
    assert_refused(evaluate.main, [d / name, d / "key.csv"], needle, capsys, [d])


def test_predict_writes_into_a_user_folder_and_reads_utf16(d, run):
    q = d / "q16.csv"
    q.write_bytes((d / "q.csv").read_text().replace("\n", "\r\n").encode("utf-16"))  # as PowerShell saves it
    assert predict.main([str(q), str(d / "out.csv"), "--checkpoint", str(run / "best.pt")]) == 0
    assert (d / "out.csv").read_text().splitlines()[0] == "id,answer"
    assert_user_file_kept(d)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.batch_size=0", "config key 'train.batch_size' must be > 0, got 0"),
        ("train.bptt=0", "config key 'train.bptt' must be > 0, got 0"),
        ("train.lr=-1", "config key 'train.lr' must be > 0, got -1"),
        ("train.epochs=-1", "config key 'train.epochs' must be > 0, got -1"),
        ("model.dropout=1.5", "config key 'model.dropout' must be < 1, got 1.5"),
        ("train.init_vectors=no_such_skipgram.npz", "no_such_skipgram.npz: not a readable skip-gram model"),
    ],
)
def test_train_refuses_bad_values_before_writing(override, needle, sample, tmp_path, capsys):
    folder = user_folder(tmp_path / "r")
    assert_refused(train.main, _train_args(sample, folder, override), needle, capsys, [tmp_path])


def test_train_into_a_finished_run_is_refused_and_resume_uses_the_runs_config(sample, run, tmp_path, capsys):
    assert_refused(
        train.main, _train_args(sample, run), "already holds a run (config.yaml); add --resume", capsys, [run]
    )
    (tmp_path / "f").write_text("x")
    assert_refused(
        train.main, _train_args(sample, tmp_path / "f"), "is a file, expected a run folder", capsys, [tmp_path]
    )
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    # default.yaml's model is much larger: resuming must not take it (nor the refused change below)
    assert_refused(
        train.main,
        ["--run-dir", copy, "--resume", "--quiet", "--set", "model.hidden=32"],
        "config key 'model.hidden' cannot change on --resume",
        capsys,
        [copy],
    )
    assert train.main(["--run-dir", str(copy), "--resume", "--quiet", "--set", "train.max_steps=30"]) == 0
    assert torch.load(copy / "last.pt", weights_only=True)["step"] == 30
    saved = yaml.safe_load((copy / "config.yaml").read_text())
    assert saved["model"]["hidden"] == 64 and saved["train"]["max_steps"] == 30
    assert_user_file_kept(copy)
