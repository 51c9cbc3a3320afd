"""With MLDS_DATA: three real novels, a few training steps, the 1,040 real questions."""

import csv

from hw1_cloze import evaluate, predict, train
from hw1_cloze.demo import first_novels
from tests.conftest import needs_data, real_data


@needs_data
def test_real_novels_train_and_real_questions_predict(tmp_path, capsys):
    hw1 = real_data() / "hw1"
    novels = first_novels(hw1 / "Holmes_Training_Data.tar.xz", tmp_path / "novels", 3)
    run = tmp_path / "run"
    assert (
        train.main(
            [
                "--config",
                "hw1_cloze/configs/tiny.yaml",
                "--run-dir",
                str(run),
                "--quiet",
                "--set",
                f"data.corpus={novels}",
                "data.max_vocab=8000",
                "data.valid_tokens=5000",
                "train.max_steps=20",
                "train.eval_every=20",
                "model.cutoffs=[1000,4000]",
            ]
        )
        == 0
    )
    out = tmp_path / "submission.csv"
    assert predict.main([str(hw1 / "testing_data.csv"), str(out), "--checkpoint", str(run / "best.pt")]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "answer"] and len(rows) == 1041
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 1041))
    assert all(r[1] in "abcde" and len(r) == 2 for r in rows[1:])
    assert evaluate.main([str(out), str(hw1 / "test_answer_public.csv")]) == 0
    assert "on 520 questions" in capsys.readouterr().out
