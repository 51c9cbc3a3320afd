"""Demo: train the tiny config, caption the test videos in the course format, and score them.

With ``MLDS_DATA`` set it uses the real course data (training on the test videos that have
features here, capped to a few steps: this shows the pipeline, not a useful model); otherwise it
writes the synthetic sample data under ``demo/hw2_video_caption/data`` first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from common.errors import UserError, run_cli
from common.runs import fresh_run_dir
from hw2_video_caption import evaluate, predict, train
from hw2_video_caption.data import available_ids, course_data_dir, split_ids
from hw2_video_caption.sample_data import write_sample_data

TINY = Path(__file__).resolve().parent / "configs" / "tiny.yaml"


def _main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    data = course_data_dir()
    overrides: list[str] = []
    ids_args: list[str] = []
    if data is None:
        data = write_sample_data(out / "data", n_train=60, n_test=20, n_peer=4)
        print(f"sample data (synthetic, course layout): {data}")
    else:
        # This copy of the course data has no training features, only 40 of the 100 test files.
        feat_dir, ids = split_ids(data, "testing")
        have = available_ids(feat_dir, ids)
        ids_args = ["--ids", ",".join(have)]
        overrides = ["data.split=testing", "data.missing=skip", "train.epochs=2"]
        print(f"real course data: {data} ({len(have)} of {len(ids)} test videos have features)")
    run_dir = fresh_run_dir(out / "run")
    rc = train.main(
        ["--config", str(TINY), "--set", f"data.data_dir={data}", *overrides, "--run-dir", str(run_dir), "--quiet"]
    )
    if rc:
        raise UserError("training failed")
    test_out = out / "test_output.txt"
    outputs = [str(test_out)]
    if (data / "peer_review_id.txt").is_file():
        outputs.append(str(out / "peer_review_output.txt"))
    if predict.main([str(data), *outputs, *ids_args, "--checkpoint", str(run_dir / "best.pt")]):
        raise UserError("prediction failed")
    print(
        "scores on the test videos"
        + (" (the real-data model trained on them: not a fair score)" if ids_args else " (unseen synthetic videos)")
        + ":"
    )
    evaluate.main([str(data / "testing_label.json"), str(test_out), "--constant"])
    print(f"checkpoints: {run_dir}/best.pt, {run_dir}/last.pt; metrics: {run_dir}/metrics.jsonl")
    for path in outputs:
        print(f"captions: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw2_video_caption.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo/hw2_video_caption", help="where the demo writes everything")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
