"""Every bad input is one stderr line naming the file, exit status 2, and no output file."""

import json
import re
import shutil

import numpy as np
import pytest

from common.errors import UserError
from hw2_video_caption import predict, train
from hw2_video_caption.data import load_features, load_labels, read_ids

from .conftest import TINY


def _copy(sample_dir, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(sample_dir, dst)
    return dst


def _predict(data, out, trained, *extra):
    return predict.main([str(data), str(out), *extra, "--checkpoint", str(trained / "best.pt")])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_missing_feature_files_are_counted_and_named(sample_dir, trained, tmp_path, capsys):
    data = _copy(sample_dir, tmp_path)
    ids = read_ids(data / "testing_id.txt")
    for vid in ids[:5]:
        (data / "testing_data" / "feat" / f"{vid}.npy").unlink()
    out = tmp_path / "out.txt"
    assert _predict(data, out, trained) == 2
    line = _one_error_line(capsys)
    assert "5 of 20 feature files missing" in line and f"{ids[0]}.npy" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.zeros((80, 2048)), "feature shape (80, 2048), expected (80, 4096)"),
        (np.full((80, 4096), np.nan), "NaN or inf"),
        (np.full((80, 4096), np.inf), "NaN or inf"),
    ],
)
def test_bad_feature_values(sample_dir, trained, tmp_path, capsys, bad, message):
    data = _copy(sample_dir, tmp_path)
    vid = read_ids(data / "testing_id.txt")[2]
    np.save(data / "testing_data" / "feat" / f"{vid}.npy", bad)
    out = tmp_path / "out.txt"
    assert _predict(data, out, trained) == 2
    line = _one_error_line(capsys)
    assert message in line and f"{vid}.npy" in line
    assert not out.exists()


def test_corrupt_feature_file(tmp_path):
    (tmp_path / "v.avi.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserError, match="v.avi.npy: not a readable .npy"):
        load_features(tmp_path, ["v.avi"], cache=False)


def test_malformed_label_json(sample_dir, tmp_path, capsys):
    data = _copy(sample_dir, tmp_path)
    text = (data / "training_label.json").read_text()
    (data / "training_label.json").write_text(text.replace('"id":', '"id"', 1))  # a missing colon
    run = tmp_path / "run"
    rc = train.main(["--config", TINY, "--set", f"data.data_dir={data}", "--run-dir", str(run), "--quiet"])
    assert rc == 2
    line = _one_error_line(capsys)
    assert re.search(r"training_label\.json:\d+: not valid JSON", line), line
    assert not (run / "last.pt").exists()
    (data / "training_label.json").write_text(json.dumps([{"caption": "A man.", "id": "x.avi"}]))
    with pytest.raises(UserError, match="entry 0 is not"):
        load_labels(data / "training_label.json")


def test_unknown_ids(sample_dir, trained, tmp_path, capsys):
    out = tmp_path / "out.txt"
    assert _predict(sample_dir, out, trained, "--ids", "nope.avi") == 2
    assert "--ids: 1 ids not in" in _one_error_line(capsys)
    assert not out.exists()


def test_id_list_naming_a_video_without_features(sample_dir, trained, tmp_path, capsys):
    data = _copy(sample_dir, tmp_path)
    with open(data / "testing_id.txt", "a") as f:
        f.write("ghost_1_2.avi\n")
    out = tmp_path / "out.txt"
    assert _predict(data, out, trained) == 2
    assert "1 of 21 feature files missing (first: ghost_1_2.avi.npy)" in _one_error_line(capsys)
    assert not out.exists()


def test_unwritable_output_path(sample_dir, trained, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _predict(sample_dir, blocker / "out.txt", trained) == 2
    assert "cannot create folder" in _one_error_line(capsys)
    assert _predict(sample_dir, tmp_path, trained) == 2  # a folder, not a file
    assert "is a folder" in _one_error_line(capsys)


def test_peer_output_without_peer_review_ids(sample_dir, trained, tmp_path, capsys):
    data = _copy(sample_dir, tmp_path)
    (data / "peer_review_id.txt").unlink()
    out, peer = tmp_path / "out.txt", tmp_path / "peer.txt"
    assert _predict(data, out, trained, str(peer)) == 2
    assert "peer_review_id.txt: file not found" in _one_error_line(capsys)
    assert not out.exists() and not peer.exists()


def test_corrupt_checkpoint(sample_dir, tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"not a checkpoint")
    assert predict.main([str(sample_dir), str(tmp_path / "o.txt"), "--checkpoint", str(ckpt)]) == 2
    assert "not a readable checkpoint" in _one_error_line(capsys)
