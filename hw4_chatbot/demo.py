"""End-to-end demo in well under a minute: data → S2S → RL → replies in the course format → metrics.

Uses the real Cornell pairs when ``MLDS_DATA`` is set (training capped to a few steps), otherwise
writes the sample data set under ``demo/hw4_chatbot/data``. Everything goes under ``demo/hw4_chatbot/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from common.errors import run_cli
from common.runs import data_root, fresh_run_dir
from hw4_chatbot import evaluate, predict, train
from hw4_chatbot.sample_data import write_sample

CONFIGS = Path(__file__).parent / "configs"


def _main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    real = data_root()
    if real is not None:
        pairs, inputs = real / "hw4" / "cornell_pairs", real / "hw4" / "sample_inputs" / "sample_input_4_crlf.txt"
        cap = ["train.max_steps=30", "data.vocab_size=3000", "data.limit=6000"]
    else:
        data = write_sample(out / "data")
        pairs, inputs, cap = data / "cornell_pairs", data / "sample_inputs" / "input_crlf.txt", []
    common = ["--quiet", "--set", f"data.path={pairs}", *cap]
    runs = {k: fresh_run_dir(out / "runs" / k) for k in ("s2s", "backward", "rl")}
    steps = [
        ["--config", str(CONFIGS / "tiny.yaml"), "--run-dir", str(runs["s2s"]), *common],
        [
            "--config",
            str(CONFIGS / "tiny.yaml"),
            "--run-dir",
            str(runs["backward"]),
            *common,
            "data.reverse=true",
            "train.epochs=4",
        ],
        [
            "--config",
            str(CONFIGS / "tiny_rl.yaml"),
            "--run-dir",
            str(runs["rl"]),
            "--quiet",
            "--set",
            f"rl.init_checkpoint={runs['s2s'] / 'best.pt'}",
            f"rl.backward_checkpoint={runs['backward'] / 'best.pt'}",
        ],
    ]
    for argv in steps:
        if train.main(argv):
            return 1
    outputs = []
    for name, ckpt in (("S2S", runs["s2s"]), ("RL", runs["rl"]), ("BEST", runs[predict.preset("BEST").model])):
        target = out / f"output_{name}.txt"
        if predict.main([name, str(inputs), str(target), "--checkpoint", str(ckpt / "best.pt")]):
            return 1
        outputs.append(target)
    table = out / "metrics.md"
    code = evaluate.main(
        [
            "--models",
            "S2S",
            "S2S-beam5",
            "RL",
            "BEST",
            "--s2s",
            str(runs["s2s"] / "best.pt"),
            "--rl",
            str(runs["rl"] / "best.pt"),
            "--latency-n",
            "20",
            "--limit",
            "200",
            "--out",
            str(table),
        ]
    )
    if code:
        return code
    print(f"\ninput: {inputs}")
    for path in outputs:
        print(f"replies: {path}")
    print(f"metrics (held-out split): {table}\nruns (best.pt, last.pt, metrics.jsonl): {out / 'runs'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw4_chatbot.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="demo/hw4_chatbot", help="where the demo writes everything")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
