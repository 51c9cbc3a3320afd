"""benchmarks/hw3_pair_judge.py: each pair's generated joint accuracy averaged over all-pairs JSON files."""

import json

import pytest

from benchmarks.hw3_pair_judge import generated_accuracy, main
from common.errors import UserError


def test_a_pairs_accuracy_is_its_mean_over_the_files(tmp_path):
    rows = [
        {"hair": "brown", "eye": "orange", "joint_accuracy": 0.2},
        {"hair": "red", "eye": "red", "joint_accuracy": 1.0},
    ]
    (tmp_path / "a.json").write_text(json.dumps({"pooled": {}, "pairs": rows}))
    rows[0]["joint_accuracy"], rows[1]["joint_accuracy"] = 0.6, 0.8
    (tmp_path / "b.json").write_text(json.dumps({"pooled": {}, "pairs": rows[:1]}))  # red/red in one file only
    acc = generated_accuracy([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert acc.keys() == {("brown", "orange"), ("red", "red")}
    assert abs(acc[("brown", "orange")] - 0.4) < 1e-12 and acc[("red", "red")] == 1.0


def test_a_file_that_is_not_an_all_pairs_json_is_named(tmp_path, capsys):
    bad = tmp_path / "samples.json"
    bad.write_text(json.dumps({"testing_tags": {}}))
    with pytest.raises(UserError, match="samples.json: not an evaluate --all-pairs --json file"):
        generated_accuracy([str(bad)])
    assert main([str(bad), "--classifier", str(tmp_path / "none.pt")]) == 2
    assert "samples.json" in capsys.readouterr().err
