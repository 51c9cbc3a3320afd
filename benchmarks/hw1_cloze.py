"""HW1 benchmark: prepare the Holmes corpus, train forward/backward LSTMs for a time budget, build
the 4-gram, answer testing_data.csv, report accuracy on the public half, perplexity and speed.

    python benchmarks/hw1_cloze.py --minutes 25 --out benchmarks/out/hw1

``--direction forward`` / ``backward`` train one model only (two such runs can share a 2-core
machine, one core each); ``--skip-train`` reuses the checkpoints already in ``--out``.
Interpolation weights are tuned on cloze questions made from the held-out end of the corpus,
never on the test questions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common_bench import machine_line, matmul_ceiling  # noqa: E402
from common.checkpoint import load_checkpoint  # noqa: E402
from common.metrics import read_metrics  # noqa: E402
from hw1_cloze import predict, train  # noqa: E402
from hw1_cloze.data import CHOICES, read_answers, read_questions  # noqa: E402
from hw1_cloze.model import LSTMLanguageModel, ModelConfig  # noqa: E402
from hw1_cloze.prepare import prepare_corpus  # noqa: E402
from hw1_cloze.scoring import LSTMScorer, NgramScorer, candidate_sentences, choose, dev_questions  # noqa: E402

CONFIG = "hw1_cloze/configs/cpu.yaml"


def train_direction(direction: str, out: Path, minutes: float, corpus: str) -> dict:
    run_dir = out / direction
    args = ["--config", CONFIG, "--run-dir", str(run_dir), "--quiet", "--set", f"data.direction={direction}",
            f"train.max_minutes={minutes}", f"data.corpus={corpus}"]
    if (run_dir / "last.pt").exists():
        args.append("--resume")
    if train.main(args) != 0:
        raise SystemExit(f"training {direction} failed")
    return summarize_run(run_dir)


def summarize_run(run_dir: Path) -> dict:
    rows = read_metrics(run_dir / "metrics.jsonl")
    val = [r for r in rows if "val_ppl" in r]
    speed = [r["tok_s"] for r in rows if "tok_s" in r]
    return {"steps": val[-1]["step"], "val_ppl": min(r["val_ppl"] for r in val), "tok_s": speed[-1],
            "minutes": rows[-1]["time"] / 60}


def flops_per_token(state: dict, ids: np.ndarray) -> float:
    model = LSTMLanguageModel(len(state["extra"]["itos"]), ModelConfig(**state["config"]["model"]))
    b = model.softmax.bounds
    sample = np.asarray(ids[:5_000_000])
    shares = [float(((sample >= lo) & (sample < hi)).mean()) for lo, hi in zip(b[1:], b[2:])]
    return model.flops_per_token(shares)


def build_ngram(corpus: str, out: Path) -> tuple[Path, float, float]:
    """Build the 4-gram in a child process so its time and peak memory are its own."""
    path = out / "kn4.npz"
    start = time.time()
    cmd = [sys.executable, "-m", "hw1_cloze.ngram", corpus, "--order", "4", "--out", str(path), "--quiet"]
    subprocess.run(cmd, check=True)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return path, time.time() - start, peak_gb


def tune(dev_scores: list[np.ndarray], answers: np.ndarray) -> tuple[list[float], float]:
    """Grid search of weights (first model fixed at 1) by dev-question accuracy."""
    grid = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    best = ([1.0] + [0.0] * (len(dev_scores) - 1), -1.0)
    for rest in itertools.product(grid, repeat=len(dev_scores) - 1):
        w = [1.0, *rest]
        acc = float((choose(dev_scores, w) == answers).mean())
        if acc > best[1]:
            best = (w, acc)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=25.0, help="training minutes per direction")
    p.add_argument("--direction", choices=["forward", "backward", "both"], default="both")
    p.add_argument("--skip-train", action="store_true", help="reuse the checkpoints in --out")
    p.add_argument("--train-only", action="store_true", help="stop after training")
    p.add_argument("--out", default="benchmarks/out/hw1")
    p.add_argument("--data", default=os.environ.get("MLDS_DATA", "../shared/data"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) / "hw1"
    corpus = str(data / "Holmes_Training_Data.tar.xz")
    print(machine_line(), flush=True)
    report: dict = {"machine": machine_line()}

    start = time.time()
    prepared = prepare_corpus(corpus, quiet=True)
    report["prepare_seconds"] = {"this_run": round(time.time() - start, 1), "first_prepare": prepared.meta["seconds"]}
    ceiling = matmul_ceiling()
    report["matmul_ceiling_gflops"] = round(ceiling / 1e9, 1)

    directions = ["forward", "backward"] if args.direction == "both" else [args.direction]
    for d in directions:
        if not args.skip_train:
            print(f"training {d} for {args.minutes} min", flush=True)
            report[d] = train_direction(d, out, args.minutes, corpus)
        elif (out / d / "metrics.jsonl").exists():
            report[d] = summarize_run(out / d)
        if d in report:
            state = load_checkpoint(out / d / "best.pt", "hw1_cloze")
            report[d]["flop_fraction"] = report[d]["tok_s"] * flops_per_token(state, prepared.ids) / ceiling
        print(json.dumps({d: report.get(d)}), flush=True)
    if args.train_only:
        return

    kn_path, kn_seconds, kn_peak = build_ngram(corpus, out)
    report["ngram"] = {"build_seconds": round(kn_seconds, 1), "peak_rss_gb": round(kn_peak, 2)}
    scorers = [LSTMScorer(load_checkpoint(out / d / "best.pt", "hw1_cloze"), torch.device("cpu"))
               for d in ("forward", "backward") if (out / d / "best.pt").exists()]
    kn = NgramScorer(kn_path)
    scorers.append(kn)
    _, valid = prepared.split(200000)
    dev_sents, dev_answers = dev_questions(np.asarray(valid), prepared.vocab, n=500, ngram=kn.model)
    dev_scores = [s.score(dev_sents) for s in scorers]

    questions = read_questions(data / "testing_data.csv")
    key = read_answers(data / "test_answer_public.csv")
    sents = candidate_sentences(questions)
    test_scores = [s.score(sents) for s in scorers]
    public = np.array([q.id in key for q in questions])
    truth = np.array([CHOICES.index(key[q.id]) if q.id in key else -1 for q in questions])

    def accuracy(picks: np.ndarray) -> float:
        return float((picks[public] == truth[public]).mean())

    rows = {}
    for i, s in enumerate(scorers):
        rows[s.name] = {"dev": float((choose([dev_scores[i]], [1]) == dev_answers).mean()),
                        "public": accuracy(choose([test_scores[i]], [1]))}
    lstm = [i for i, s in enumerate(scorers) if s.name.startswith("lstm")]
    if len(lstm) > 1:
        w, dev_acc = tune([dev_scores[i] for i in lstm], dev_answers)
        rows["lstm fwd+bwd"] = {"weights": w, "dev": dev_acc,
                                "public": accuracy(choose([test_scores[i] for i in lstm], w))}
    w, dev_acc = tune(dev_scores, dev_answers)
    rows["all (tuned on dev)"] = {"weights": w, "dev": dev_acc, "public": accuracy(choose(test_scores, w))}
    report["accuracy"] = rows

    argv = [str(data / "testing_data.csv"), str(out / "submission.csv"), "--weights", ",".join(map(str, w)),
            "--ngram", str(kn_path), "--checkpoint", str(out / "forward" / "best.pt")]
    if (out / "backward" / "best.pt").exists():
        argv += ["--backward", str(out / "backward" / "best.pt")]
    start = time.time()
    assert predict.main(argv) == 0
    report["predict_seconds"] = round(time.time() - start, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
