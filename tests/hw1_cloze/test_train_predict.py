"""End to end on the generated grammar corpus: train, resume, predict, evaluate, bad inputs."""

import shutil

import pytest
import torch

from hw1_cloze import evaluate, predict, train
from hw1_cloze.data import read_answers
from hw1_cloze.sample_data import make_sample

from .conftest import TINY, tiny_train_args


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp("hw1"), novels=3, sentences=1500, questions=60)


def _train(sample, run_dir, *overrides):
    return train.main(tiny_train_args(run_dir, sample, *overrides))


@pytest.fixture(scope="module")
def forward_run(sample, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fwd")
    assert _train(sample, run_dir, "train.keep_last=3") == 0
    return run_dir


def test_learns_the_grammar_and_answers_cloze(sample, forward_run, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert predict.main([str(sample / "testing_data.csv"), str(out), "--checkpoint", str(forward_run / "best.pt")]) == 0
    assert f"using forward {forward_run / 'best.pt'} (weight 1)" in capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0] == "id,answer" and len(lines) == 61
    predicted, key = read_answers(out), read_answers(sample / "test_answer.csv")
    accuracy = sum(predicted[i] == key[i] for i in key) / len(key)
    assert accuracy >= 0.9
    assert evaluate.main([str(out), str(sample / "test_answer.csv")]) == 0
    assert f"accuracy {accuracy:.4f} on 60 questions" in capsys.readouterr().out


def test_backward_model_combines_with_forward(sample, forward_run, tmp_path):
    bwd = tmp_path / "bwd"
    assert _train(sample, bwd, "data.direction=backward") == 0
    out = tmp_path / "both.csv"
    argv = [
        str(sample / "testing_data.csv"),
        str(out),
        "--checkpoint",
        str(forward_run / "best.pt"),
        "--backward",
        str(bwd / "best.pt"),
        "--weights",
        "1,0.5",
    ]
    assert predict.main(argv) == 0
    predicted, key = read_answers(out), read_answers(sample / "test_answer.csv")
    assert sum(predicted[i] == key[i] for i in key) / len(key) >= 0.9


def test_resume_from_a_mid_run_checkpoint_is_exact(sample, forward_run, tmp_path):
    # step_00000200.pt is what a run killed between steps 200 and 300 leaves as last.pt
    shutil.copy(forward_run / "step_00000200.pt", tmp_path / "last.pt")
    assert _train(sample, tmp_path, "train.keep_last=3", "--resume") == 0
    a = torch.load(forward_run / "last.pt", weights_only=True)["models"]["model"]
    b = torch.load(tmp_path / "last.pt", weights_only=True)["models"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_inputs_exit_2_without_output(sample, forward_run, tmp_path, capsys):
    out = tmp_path / "out.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question,a),b),c),d),e)\r\n1,No blank here.,a,b,c,d,e\r\n")
    assert predict.main([str(bad), str(out), "--checkpoint", str(forward_run / "best.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad}:2: question must have exactly one blank '_____', found 0"]
    binary = tmp_path / "Holmes_Training_Data.tar.xz"
    binary.write_bytes(b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F")
    assert predict.main([str(binary), str(out), "--checkpoint", str(forward_run / "best.pt")]) == 2
    assert "looks like a binary file" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    state = torch.load(forward_run / "best.pt", weights_only=True)
    state["homework"] = "hw3_gan"
    torch.save(state, other)
    assert predict.main([str(sample / "testing_data.csv"), str(out), "--checkpoint", str(other)]) == 2
    assert "checkpoint is from hw3_gan, expected hw1_cloze" in capsys.readouterr().err
    assert train.main(["--config", str(TINY), "--run-dir", str(tmp_path / "r"), "--set", "model.hiden=3"]) == 2
    assert "unknown config key 'model.hiden'" in capsys.readouterr().err
    assert not out.exists()
