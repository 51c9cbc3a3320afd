"""HW1 benchmark: every ensemble member trained within one wall-clock budget, the weights tuned on
dev questions, the test answered, each member's and the ensemble's accuracy printed.

    python benchmarks/hw1_cloze.py --minutes 60 --out benchmarks/out/hw1

How a 2-core CPU's budget is split: the 4-gram and the co-occurrence index first (seconds to a
minute, one process each), then the skip-gram
with 2 worker threads (both cores, 7-15 minutes), then the forward and backward LSTMs side by
side, one process per core with 1 thread each, their embeddings started from the skip-gram's word
vectors (``--random-embeddings``: not), for what is left less a reserve for their last validation
and checkpoint. Each LSTM validation keeps a numbered checkpoint, which the evaluation
scores to draw accuracy against training minutes (``--plot``). ``--skip-train`` evaluates what
``--out`` already holds. Dev questions come from the held-out end of the corpus; the public
answer key (ids 1-520) is only ever used to report, never to choose.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common_bench import machine_line  # noqa: E402
from common.checkpoint import load_checkpoint  # noqa: E402
from common.metrics import read_metrics  # noqa: E402
from common.plot import plot_curves  # noqa: E402
from hw1_cloze import HOMEWORK, predict  # noqa: E402
from hw1_cloze.cooc import CoocScorer  # noqa: E402
from hw1_cloze.data import CHOICES, read_answers, read_questions  # noqa: E402
from hw1_cloze.ensemble import KINDS, Member, load_scorer, write_ensemble  # noqa: E402
from hw1_cloze.prepare import prepare_corpus  # noqa: E402
from hw1_cloze.scoring import LSTMScorer, candidate_sentences, choose  # noqa: E402
from hw1_cloze.semantic import SkipGramScorer, blank_parts  # noqa: E402
from hw1_cloze.tune import add_decoys_arg, dev_record, make_dev, tune_weights  # noqa: E402

LSTM_CONFIG = "hw1_cloze/configs/cpu.yaml"
# sizes the cosine schedule to the budget: cpu.yaml on one thread ran 600 steps in 312 s with the other
# core busy (1.9/s) and 1.3/s under heavier load; a little under the fast figure, so that the schedule
# rather than the clock usually ends the run
STEPS_PER_SECOND = 1.8
RESERVE_S = 90  # the LSTMs' last validation (about 15 s) and checkpoint, after max_minutes runs out
PY = sys.executable


def member_paths(out: Path) -> dict[str, Path]:
    return {
        "forward": out / "forward" / "best.pt",
        "backward": out / "backward" / "best.pt",
        "ngram": out / "kn4.npz",
        "skipgram": out / "skipgram.npz",
        "cooc": out / "cooc.npz",
    }


def train_members(out: Path, minutes: float, corpus: str, eval_every: int, init: bool) -> dict:
    """Train all five members inside ``minutes`` of wall time; returns each phase's seconds.

    With ``init`` the LSTMs' embeddings start from the skip-gram's word vectors.
    """
    paths, start, phases = member_paths(out), time.time(), {}
    subprocess.run([PY, "-m", "hw1_cloze.ngram", corpus, "--out", str(paths["ngram"]), "--quiet"], check=True)
    phases["ngram_s"] = round(time.time() - start, 1)
    mark = time.time()
    cooc = [PY, "-m", "hw1_cloze.cooc", "--out", str(paths["cooc"]), "--quiet", "--set", f"data.corpus={corpus}"]
    subprocess.run(cooc, check=True)
    phases["cooc_s"] = round(time.time() - mark, 1)
    mark = time.time()
    subprocess.run(
        [
            PY,
            "-m",
            "hw1_cloze.semantic",
            "--out",
            str(paths["skipgram"]),
            "--quiet",
            "--set",
            f"data.corpus={corpus}",
            "model.workers=2",
        ],
        check=True,
    )
    phases["skipgram_s"] = round(time.time() - mark, 1)
    left = minutes * 60 - (time.time() - start) - RESERVE_S
    if left < 60:
        raise SystemExit(f"--minutes {minutes}: no time left for the LSTMs after the n-gram and skip-gram")
    print(
        f"n-gram {phases['ngram_s']} s, co-occurrence {phases['cooc_s']} s, skip-gram {phases['skipgram_s']} s; "
        f"LSTMs get {left / 60:.1f} min each, side by side",
        flush=True,
    )
    mark, procs = time.time(), []
    for d in ("forward", "backward"):
        run_dir = out / d
        argv = [
            PY,
            "-m",
            "hw1_cloze.train",
            "--config",
            LSTM_CONFIG,
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--set",
            "threads=1",
            f"data.direction={d}",
            f"data.corpus={corpus}",
            f"train.max_minutes={left / 60:.2f}",
            f"train.max_steps={int(left * STEPS_PER_SECOND)}",
            f"train.eval_every={eval_every}",
            "train.keep_last=1000",
            *([f"train.init_vectors={paths['skipgram']}"] if init else []),
        ]
        procs.append(subprocess.Popen(argv, stdout=open(out / f"{d}.log", "w"), stderr=subprocess.STDOUT))
    if any(p.wait() != 0 for p in procs):
        raise SystemExit(f"an LSTM training failed: see {out}/forward.log and {out}/backward.log")
    phases["lstm_s"] = round(time.time() - mark, 1)
    phases["total_s"] = round(time.time() - start, 1)
    return phases


def lstm_summary(run_dir: Path) -> dict:
    rows = read_metrics(run_dir / "metrics.jsonl")
    val = [r for r in rows if "val_ppl" in r]
    return {
        "steps": val[-1]["step"],
        "val_ppl": round(min(r["val_ppl"] for r in val), 1),
        "tok_s": round(val[-1]["tok_s"]),
        "minutes": round(val[-1]["time"] / 60, 1),
    }


class Judge:
    """Dev and public accuracy of weighted score combinations; weights tuned on dev only."""

    def __init__(self, dev_answers: np.ndarray, truth: np.ndarray, public: np.ndarray):
        self.dev_answers, self.truth, self.public = dev_answers, truth, public

    def single(self, dev: np.ndarray, test: np.ndarray) -> dict:
        return {
            "dev": float((choose([dev], [1]) == self.dev_answers).mean()),
            "public": self.public_accuracy([test], [1]),
        }

    def public_accuracy(self, test: list[np.ndarray], weights) -> float:
        picks = choose(test, weights)
        return float((picks[self.public] == self.truth[self.public]).mean())

    def tuned(self, dev: list[np.ndarray], test: list[np.ndarray], names: list[str]) -> dict:
        t = tune_weights(dev, self.dev_answers)
        return {
            "weights": {n: round(float(w), 4) for n, w in zip(names, t.weights)},
            "method": t.method,
            "dev": t.dev_accuracy,
            "dev_cv": t.cv_accuracy,
            "dev_stderr": t.stderr(t.dev_accuracy),
            "public": self.public_accuracy(test, t.weights),
            "tuned": t,
        }


def evaluate(out: Path, data: Path, args: argparse.Namespace) -> dict:
    questions, threads, plot, decoys = args.questions, args.threads, args.plot, args.decoys
    torch.set_num_threads(threads)
    members = [Member(k, p) for k, p in member_paths(out).items() if p.is_file()]
    scorers = {m.name: load_scorer(m, torch.device("cpu")) for m in members}
    ngram = scorers["ngram"].model if "ngram" in scorers else None
    corpus = str(data / "Holmes_Training_Data.tar.xz")
    shape = (tuple(args.dev_band), args.dev_spread, args.dev_balance)
    dev_sents, dev_answers = make_dev(corpus, questions, 0, 200000, ngram, decoys, *shape)
    test_q = read_questions(data / "testing_data.csv")
    key = read_answers(data / "test_answer_public.csv")
    test_sents = candidate_sentences(test_q)
    judge = Judge(
        dev_answers,
        np.array([CHOICES.index(key.get(q.id, "a")) for q in test_q]),
        np.array([q.id in key for q in test_q]),
    )
    if "skipgram" in scorers and args.distance_grid:
        report_distance_grid(scorers["skipgram"], dev_sents, dev_answers)
    start = time.time()
    dev = {n: s.score(dev_sents) for n, s in scorers.items()}
    test = {n: s.score(test_sents) for n, s in scorers.items()}
    if "cooc" in scorers:
        counts = {label: option_counts(scorers["cooc"], s) for label, s in (("dev", dev_sents), ("test", test_sents))}
        for label, c in counts.items():
            print(f"{label} options, most over least frequent: {frequency_spread(c)}", flush=True)
        print(f"dev answers by frequency among their options: {answer_frequency(counts['dev'], dev_answers)}")
    if "cooc" in scorers and args.cooc_grid:
        report_cooc_grid(scorers["cooc"], dev_sents, test_sents, dev, test, judge)
    rows = {n: judge.single(dev[n], test[n]) for n in scorers}

    def combo(names: list[str]) -> dict:
        return judge.tuned([dev[n] for n in names], [test[n] for n in names], names)

    names = [k for k in KINDS if k in scorers]
    rows["ensemble"] = combo(names)
    lstms = [n for n in ("forward", "backward") if n in scorers]
    if len(lstms) == 2:
        rows["rnn only (forward + backward)"] = combo(lstms)
    rest = [n for n in names if n not in lstms]
    if lstms and len(rest) > 0:
        rows["without the LSTMs"] = combo(rest) if len(rest) > 1 else rows[rest[0]]
    if "cooc" in names and len(names) > 2:
        rows["without the co-occurrence scorer"] = combo([n for n in names if n != "cooc"])
    scoring_s = round(time.time() - start, 1)
    tuned = rows["ensemble"].pop("tuned")
    for m, w in zip(members, tuned.weights):
        m.weight = float(w)
    write_ensemble(out / "ensemble.yaml", members, dev_record(tuned, seed=0))
    for r in rows.values():
        r.pop("tuned", None)

    start = time.time()
    argv = [
        str(data / "testing_data.csv"),
        str(out / "submission.csv"),
        "--ensemble",
        str(out / "ensemble.yaml"),
        "--threads",
        str(threads),
    ]
    if predict.main(argv) != 0:
        raise SystemExit("predict failed")
    submitted = read_answers(out / "submission.csv")
    report = {
        "dev_questions": len(dev_answers),
        "dev_decoys": decoys,
        "scoring_s": scoring_s,
        "predict_s": round(time.time() - start, 1),
        "submission_public": sum(submitted[i] == a for i, a in key.items()) / len(key),
        "accuracy": rows,
    }
    if args.no_curve:
        return report
    report["curve"] = accuracy_curve(out, dev_sents, test_sents, dev, test, judge)
    if plot and report["curve"]:
        draw(report["curve"], Path(plot))
    return report


def report_distance_grid(scorer: SkipGramScorer, dev_sents: list[list[str]], dev_answers: np.ndarray) -> None:
    """Dev accuracy of the skip-gram for each distance power (dev only: how the default was chosen)."""
    kept = scorer.distance_power, scorer.rarity
    for rarity in (False, True):
        for power in np.arange(0, 2.01, 0.25):
            scorer.distance_power, scorer.rarity = float(power), rarity
            acc = float((choose([scorer.score(dev_sents)], [1]) == dev_answers).mean())
            print(f"skip-gram, rarity weights {rarity!s:5}, distance power {power:4.2f}: dev {acc:.4f}", flush=True)
    scorer.distance_power, scorer.rarity = kept


def option_counts(scorer: CoocScorer, sentences: list[list[str]]) -> np.ndarray:
    """(Q, 5): how many training sentences hold each option's (first) word, 0 for an unknown one."""
    rows = []
    for q in range(0, len(sentences), 5):
        _, cands = blank_parts([scorer.vocab.encode(s) for s in sentences[q : q + 5]])
        rows.append([scorer.counts[c[0]] if c else 0.0 for c in cands])
    return np.array(rows)


def frequency_spread(counts: np.ndarray) -> str:
    """Quartiles over questions of how many times more sentences hold the most frequent option than the
    least frequent one (options only, never answers): how much a frequency preference can matter."""
    ratios = (counts.max(1) + 1) / (counts.min(1) + 1)
    return ", ".join(f"{x:.1f}x" for x in np.percentile(ratios, [25, 50, 75])) + " (quartiles)"


def answer_frequency(counts: np.ndarray, answers: np.ndarray) -> str:
    """How often the true word is the most frequent of its five options, the second, ..., the least
    (dev only: a member that prefers rare words gains wherever this leans to the end)."""
    places = (counts > counts[np.arange(len(answers)), answers][:, None]).sum(1)
    shares = np.bincount(places, minlength=5) / max(len(answers), 1)
    return " ".join(f"{x:.2f}" for x in shares) + " (most frequent first)"


def report_cooc_grid(scorer: CoocScorer, dev_sents, test_sents, dev: dict, test: dict, judge: Judge) -> None:
    """The co-occurrence scorer at each shift and distance power: alone, and in the ensemble of every
    member with weights tuned on dev (how its defaults were chosen: the best 5-fold dev figure of the
    ensemble; public printed beside it, never used to choose)."""
    kept, names = (scorer.shift, scorer.distance_power), list(dev)
    for shift in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5):
        for power in (0.0, 0.5, 1.0):
            scorer.shift, scorer.distance_power = shift, power
            cur_dev, cur_test = {**dev, "cooc": scorer.score(dev_sents)}, {**test, "cooc": scorer.score(test_sents)}
            alone = judge.single(cur_dev["cooc"], cur_test["cooc"])
            both = judge.tuned([cur_dev[n] for n in names], [cur_test[n] for n in names], names)
            print(
                f"co-occurrence, shift {shift:3.1f}, distance power {power:3.1f}: alone dev {alone['dev']:.4f} "
                f"public {alone['public']:.4f}; ensemble dev 5-fold {both['dev_cv']:.4f} public {both['public']:.4f}",
                flush=True,
            )
    scorer.shift, scorer.distance_power = kept


def numbered_checkpoints(run_dir: Path) -> list[tuple[Path, float]]:
    """(step_*.pt, training minutes when it was written), oldest first."""
    if not (run_dir / "metrics.jsonl").is_file():
        return []
    seconds = {r["step"]: r["time"] for r in read_metrics(run_dir / "metrics.jsonl") if "val_ppl" in r}
    paths = sorted(run_dir.glob("step_*.pt"))
    return [(p, seconds.get(int(p.stem.split("_")[1]), 0.0) / 60) for p in paths]


def accuracy_curve(out: Path, dev_sents, test_sents, dev: dict, test: dict, judge: Judge) -> list[dict]:
    """Public accuracy of each numbered LSTM checkpoint, alone, together and in the whole ensemble."""
    fixed = [n for n in ("ngram", "skipgram", "cooc") if n in dev]
    curve = []
    pairs = zip(numbered_checkpoints(out / "forward"), numbered_checkpoints(out / "backward"))
    for (fwd, fwd_min), (bwd, bwd_min) in pairs:
        row, cur_dev, cur_test = {"minutes": max(fwd_min, bwd_min)}, dict(dev), dict(test)
        for d, path in (("forward", fwd), ("backward", bwd)):
            scorer = LSTMScorer(load_checkpoint(path, HOMEWORK), torch.device("cpu"))
            cur_dev[d], cur_test[d] = scorer.score(dev_sents), scorer.score(test_sents)
            row[d] = judge.public_accuracy([cur_test[d]], [1])
        for label, names in (("rnn only", ["forward", "backward"]), ("ensemble", ["forward", "backward", *fixed])):
            row[label] = judge.tuned([cur_dev[n] for n in names], [cur_test[n] for n in names], names)["public"]
        print(json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
        curve.append(row)
    return curve


def draw(curve: list[dict], path: Path) -> None:
    keys = ["forward", "backward", "rnn only", "ensemble"]
    rows = [{"step": r["minutes"], **{k: r[k] for k in keys}} for r in curve]
    plot_curves(
        rows,
        keys,
        path,
        title="HW1: public accuracy (ids 1-520) against LSTM training",
        xlabel="minutes of LSTM training",
        rest_title="public accuracy",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget for training every member")
    p.add_argument("--skip-train", action="store_true", help="evaluate the members already in --out")
    p.add_argument("--train-only", action="store_true", help="stop after training")
    p.add_argument("--out", default="benchmarks/out/hw1", help="folder for the members, logs and submission")
    p.add_argument("--data", default=os.environ.get("MLDS_DATA", "../shared/data"), help="course data folder")
    p.add_argument("--questions", type=int, default=2000, help="dev questions for tuning")
    add_decoys_arg(p)
    p.add_argument("--no-curve", action="store_true", help="skip scoring each numbered LSTM checkpoint")
    p.add_argument("--eval-every", type=int, default=400, help="LSTM steps between validations and checkpoints")
    p.add_argument("--threads", type=int, default=2, help="threads for the evaluation")
    p.add_argument(
        "--random-embeddings", action="store_true", help="start the LSTMs' embeddings at random, not from the skip-gram"
    )
    p.add_argument(
        "--distance-grid", action="store_true", help="print the skip-gram's dev accuracy for each distance power"
    )
    p.add_argument(
        "--cooc-grid", action="store_true", help="print the co-occurrence scorer's accuracy for each shift and power"
    )
    p.add_argument("--plot", help="write the accuracy-against-minutes chart to this PNG")
    args = p.parse_args()
    out, data = Path(args.out), Path(args.data) / "hw1"
    out.mkdir(parents=True, exist_ok=True)
    print(machine_line(), flush=True)
    report: dict = {"machine": machine_line(), "minutes": args.minutes}
    prepare_corpus(data / "Holmes_Training_Data.tar.xz", quiet=True)
    if not args.skip_train:
        report["schedule"] = train_members(
            out, args.minutes, str(data / "Holmes_Training_Data.tar.xz"), args.eval_every, not args.random_embeddings
        )
        (out / "schedule.json").write_text(json.dumps(report["schedule"]))
    elif (out / "schedule.json").exists():
        report["schedule"] = json.loads((out / "schedule.json").read_text())
    report["lstm"] = {d: lstm_summary(out / d) for d in ("forward", "backward") if (out / d / "metrics.jsonl").exists()}
    print(json.dumps(report, indent=1), flush=True)
    if args.train_only:
        return
    report.update(evaluate(out, data, args))
    report["machine_after"] = machine_line()
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print(f"{'scorer':32} {'dev':>7} {'public':>7}")
    for name, r in report["accuracy"].items():
        print(f"{name:32} {r['dev']:7.3f} {r['public']:7.3f}  {r.get('weights', '')}")
    rows = report["accuracy"]
    if "without the co-occurrence scorer" in rows:
        gain = {k: rows["ensemble"][k] - rows["without the co-occurrence scorer"][k] for k in ("dev", "public")}
        print(f"the co-occurrence scorer adds {gain['dev']:+.3f} on dev and {gain['public']:+.3f} on the public half")
    if "without the LSTMs" in rows:
        gain = {k: rows["ensemble"][k] - rows["without the LSTMs"][k] for k in ("dev", "public")}
        print(f"the LSTMs add {gain['dev']:+.3f} on dev and {gain['public']:+.3f} on the public half")


if __name__ == "__main__":
    main()
