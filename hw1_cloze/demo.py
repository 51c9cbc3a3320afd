"""``make demo`` for HW1: a short training run and a submission in the course's format.

With ``MLDS_DATA`` set it reads five real novels and answers the real questions; without it, it
uses the sample corpus from :mod:`hw1_cloze.sample_data`.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from common.errors import run_cli
from common.runs import data_root, fresh_run_dir
from hw1_cloze import evaluate, predict, train
from hw1_cloze.sample_data import make_sample


def first_novels(archive: Path, dest: Path, count: int) -> Path:
    """Copy the first ``count`` novels out of the course archive (streams only its beginning)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tf:
        taken = 0
        for m in tf:
            if m.isfile() and m.name.upper().endswith(".TXT"):
                (dest / Path(m.name).name).write_bytes(tf.extractfile(m).read())
                taken += 1
                if taken == count:
                    break
    return dest


def _main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    real = data_root()
    if real:
        novels = first_novels(real / "hw1" / "Holmes_Training_Data.tar.xz", out / "novels", 5)
        questions, answers = real / "hw1" / "testing_data.csv", real / "hw1" / "test_answer_public.csv"
        extra = ["data.max_vocab=20000", "data.valid_tokens=20000", "model.cutoffs=[2000,8000]"]
    else:
        root = make_sample(out / "data")
        novels, questions, answers = root / "Holmes_Training_Data", root / "testing_data.csv", root / "test_answer.csv"
        extra = []
    run_dir = fresh_run_dir(out / "run")
    code = train.main(
        [
            "--config",
            "hw1_cloze/configs/tiny.yaml",
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--set",
            f"data.corpus={novels}",
            *extra,
        ]
    )
    submission = out / "submission.csv"
    code = code or predict.main([str(questions), str(submission), "--checkpoint", str(run_dir / "best.pt")])
    code = code or evaluate.main([str(submission), str(answers)])
    print(f"hw1_cloze outputs: submission {submission}, checkpoints {run_dir}/best.pt, metrics {run_dir}/metrics.jsonl")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw1_cloze.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo/hw1_cloze", help="where the demo writes everything")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
