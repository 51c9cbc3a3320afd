"""hw2 commands never harm the user's files: bad inputs are one line, exit 2, and change nothing."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from hw2_video_caption import evaluate, predict, train
from hw2_video_caption.data import read_ids
from tests.safety import assert_refused, assert_user_file_kept, user_folder

from .conftest import TINY


@pytest.fixture(scope="module")
def small(sample_dir, tmp_path_factory):
    """A course folder with 3 test and 2 peer-review videos (the sample's own features)."""
    root = tmp_path_factory.mktemp("hw2safe") / "D"
    for split, ids_file, feat in [
        ("test", "testing_id.txt", "testing_data/feat"),
        ("peer", "peer_review_id.txt", "peer_review/feat"),
    ]:
        ids = read_ids(sample_dir / ids_file)[: 3 if split == "test" else 2]
        (root / feat).mkdir(parents=True)
        (root / ids_file).write_text("".join(f"{v}\n" for v in ids))
        for v in ids:
            shutil.copy(sample_dir / feat / f"{v}.npy", root / feat / f"{v}.npy")
    shutil.copy(sample_dir / "testing_label.json", root / "testing_label.json")
    return root


def _variant(small, tmp_path, name):
    data = tmp_path / name
    shutil.copytree(small, data)
    return data


PREDICT_CASES = {
    "output is the id list": (["D", "D/testing_id.txt"], "testing_id.txt: is also an input"),
    "output is a feature file": (["D", "D/testing_data/feat/FIRST.npy"], "is also an input"),
    "two outputs the same": (["D", "u/out.txt", "u/out.txt"], "given as two outputs"),
    "output is a folder": (["D", "u"], "u: is a folder, expected an output file"),
    "batch size 0": (["D", "u/out.txt", "--batch-size", "0"], "--batch-size must be >= 1"),
    "no ids selected": (["D", "u/out.txt", "--ids", ""], "--ids '': no video ids"),
    "corrupt checkpoint": (["D", "u/out.txt", "--checkpoint", "u/bad.pt"], "bad.pt: not a readable checkpoint"),
}


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_refuses_cleanly(case, small, trained, tmp_path, capsys):
    u = user_folder(tmp_path / "u")
    (u / "bad.pt").write_bytes(b"junk")
    first = read_ids(small / "testing_id.txt")[0]
    argv, needle = PREDICT_CASES[case]
    argv = [
        a.replace("FIRST", first).replace("D", str(small), 1).replace("u", str(u), 1) if a[:1] in "Du" else a
        for a in argv
    ]
    if "--checkpoint" not in argv:
        argv += ["--checkpoint", str(trained / "best.pt")]
    assert_refused(predict.main, argv, needle, capsys, [small, u, trained])


def test_empty_id_list_and_string_features_are_refused(small, trained, tmp_path, capsys):
    empty = _variant(small, tmp_path, "E")
    (empty / "testing_id.txt").write_bytes(b"\r\n")
    ckpt = ["--checkpoint", str(trained / "best.pt")]
    assert_refused(
        predict.main,
        [empty, tmp_path / "out.txt", *ckpt],
        f"{empty / 'testing_id.txt'}: no video ids",
        capsys,
        [tmp_path],
    )
    strings = _variant(small, tmp_path, "S")
    vid = read_ids(strings / "testing_id.txt")[1]
    np.save(strings / "testing_data" / "feat" / f"{vid}.npy", np.full((80, 4096), "x"))
    assert_refused(
        predict.main, [strings, tmp_path / "out.txt", *ckpt], f"{vid}.npy: feature values are <U1", capsys, [tmp_path]
    )


def test_predict_writes_only_its_outputs_into_a_user_folder(small, trained, tmp_path):
    u = user_folder(tmp_path / "u")
    assert (
        predict.main(
            [
                str(small),
                str(u / "test.txt"),
                str(u / "peer.txt"),
                "--beam",
                "1",
                "--checkpoint",
                str(trained / "best.pt"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in u.iterdir()) == ["peer.txt", "test.txt", "thesis.txt"]
    assert_user_file_kept(u)


def test_labels_with_an_empty_caption_list_are_refused(small, tmp_path, capsys):
    data = _variant(small, tmp_path, "L")
    labels = json.loads((data / "testing_label.json").read_text())
    labels[1]["caption"] = []
    (data / "testing_label.json").write_text(json.dumps(labels))
    (data / "training_label.json").write_text(json.dumps(labels))
    (tmp_path / "caps.txt").write_text(f"{labels[0]['id']},a man\n")
    needle = f"entry 1 (id {labels[1]['id']}) has no captions"
    assert_refused(evaluate.main, [data / "testing_label.json", tmp_path / "caps.txt"], needle, capsys, [tmp_path])
    argv = ["--config", TINY, "--quiet", "--run-dir", tmp_path / "run", "--set", f"data.data_dir={data}"]
    assert_refused(train.main, argv, needle, capsys, [tmp_path])


@pytest.mark.parametrize(
    "override, needle",
    [
        ("data.val_fraction=1.5", "config key 'data.val_fraction' must be <= 1, got 1.5"),
        ("data.val_fraction=1", "data.val_fraction=1.0 leaves none of the"),
        ("train.epochs=-1", "config key 'train.epochs' must be >= 0, got -1"),
        ("train.batch_size=0", "config key 'train.batch_size' must be > 0, got 0"),
        ("data.max_len=0", "config key 'data.max_len' must be >= 2, got 0"),
        ("model.dropout=-0.1", "config key 'model.dropout' must be >= 0, got -0.1"),
        ("model.feat_dim=10", "model.feat_dim=10, but the features have 4096 per frame"),
    ],
)
def test_train_refuses_bad_values_before_writing(override, needle, sample_dir, tmp_path, capsys):
    run = user_folder(tmp_path / "run")
    argv = ["--config", TINY, "--quiet", "--run-dir", run, "--set", f"data.data_dir={sample_dir}", override]
    assert_refused(train.main, argv, needle, capsys, [tmp_path])


def test_finished_run_is_refused_and_resume_reads_its_own_config(trained, sample_dir, tmp_path, capsys):
    argv = ["--config", TINY, "--quiet", "--run-dir", trained, "--set", f"data.data_dir={sample_dir}"]
    assert_refused(train.main, argv, "already holds a run (config.yaml); add --resume", capsys, [trained])
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    epochs = yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"]
    assert train.main(["--run-dir", str(run), "--resume", "--quiet", "--set", f"train.epochs={epochs + 1}"]) == 0
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == epochs + 1
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["hidden"] == 64  # tiny.yaml's, not default's
