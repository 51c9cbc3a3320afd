"""HW2 benchmark: k-fold captioning of the 40 real test videos that have features here.

Each fold trains ``python -m hw2_video_caption.train`` on the other videos and captions the held-out
ones with beam search; all held-out captions are then scored together (both course BLEU@1 variants,
BLEU-4, CIDEr-D, number of different captions) beside the constant caption "a man is playing a
guitar" on the same videos. Also: training videos/s and the time to beam-decode 100 videos.

    MLDS_DATA=../shared/data python benchmarks/hw2_caption.py --out benchmarks/out/hw2_caption [--lm-epochs 1]

With ``--lm-epochs N`` the decoder is also pre-trained once as a caption language model on the
24,232 training captions (their videos are not among the 40) and every fold is run a second time
starting from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.errors import UserError, run_cli  # noqa: E402
from common.metrics import read_metrics  # noqa: E402
from hw2_video_caption import train  # noqa: E402
from hw2_video_caption.data import (  # noqa: E402
    available_ids,
    course_data_dir,
    load_features,
    load_labels,
    split_ids,
    write_captions,
)
from hw2_video_caption.evaluate import CONSTANT_CAPTION, format_scores, score_all  # noqa: E402
from hw2_video_caption.predict import decode_captions, load_model  # noqa: E402


def _train(cfg: str, data: Path, sets: list[str], run_dir: Path, reuse: bool = False) -> None:
    if reuse and (run_dir / "last.pt").is_file():
        return  # --reuse: keep the model trained by an earlier run, only decode again
    args = ["--config", cfg, "--set", f"data.data_dir={data}", "data.split=testing", *sets,
            "--run-dir", str(run_dir), "--quiet"]
    if train.main(args) != 0:
        raise UserError(f"training failed: {' '.join(args)}")


def _run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    print(f"threads {torch.get_num_threads()}, 1-minute load average {os.getloadavg()[0]:.2f}")
    data = course_data_dir()
    if data is None:
        raise UserError("set MLDS_DATA (e.g. ../shared/data): this benchmark needs the real features")
    out = Path(args.out)
    feat_dir, ids = split_ids(data, "testing")
    have = available_ids(feat_dir, ids)
    labels = load_labels(data / "testing_label.json")
    feats = load_features(feat_dir, have, cache=False)
    order = np.random.default_rng(args.seed).permutation(len(have))
    folds = [sorted(order[f::args.folds].tolist()) for f in range(args.folds)][: args.fold_limit or None]
    print(f"{len(have)} videos with features, {args.folds}-fold ({len(folds)} run), config {args.config} "
          f"{' '.join(args.overrides)}")
    variants = [("scratch", [])]
    if args.lm_epochs:
        lm_dir = out / "caption_lm"
        start = time.perf_counter()
        # val_fraction=1 puts all 40 videos on the validation side, so the vocabulary and the language
        # model come from training_label.json alone; epochs=0 stops after pre-training.
        _train(args.config, data, [f"data.ids={json.dumps(have)}", "data.val_fraction=1.0", "train.epochs=0",
                                   f"train.pretrain_lm_epochs={args.lm_epochs}", *args.overrides], lm_dir, args.reuse)
        print(f"caption LM pre-training: {args.lm_epochs} epochs in {time.perf_counter() - start:.0f}s")
        variants.append(("caption_lm", [f"train.init_checkpoint={lm_dir / 'best.pt'}"]))
    results = {}
    for name, sets in variants:
        captions: dict[str, str] = {}
        rates, train_s = [], 0.0
        for f, held in enumerate(folds):
            held_set = set(held)
            train_ids = [have[i] for i in range(len(have)) if i not in held_set]
            run_dir = out / name / f"fold{f}"
            start = time.perf_counter()
            _train(args.config, data, [f"data.ids={json.dumps(train_ids)}", "data.val_fraction=0", *sets,
                                       *args.overrides], run_dir, args.reuse)
            train_s += time.perf_counter() - start
            rates += [row["videos_per_s"] for row in read_metrics(run_dir / "metrics.jsonl")]
            model, vocab, extra = load_model(run_dir / "last.pt", torch.device("cpu"))
            caps = decode_captions(model, feats[held], vocab, torch.device("cpu"), args.beam, args.alpha,
                                   extra["max_len"])
            captions.update(zip([have[i] for i in held], caps))
        ordered = [v for v in have if v in captions]
        tag = f"beam{args.beam}_alpha{args.alpha}"
        write_captions(out / f"{name}_{tag}_captions.txt", [(v, captions[v]) for v in ordered])
        scores = score_all({v: captions[v] for v in ordered}, labels)
        const = score_all({v: CONSTANT_CAPTION for v in ordered}, labels)
        results[name] = {"model": scores, "constant": const, "train_videos_per_s": float(np.median(rates)),
                         "train_seconds": train_s}
        print(f"[{name}] model:    {format_scores(scores)}")
        print(f"[{name}] constant: {format_scores(const)}")
        print(f"[{name}] training {np.median(rates):.0f} videos/s (median over epochs), {train_s:.0f}s for "
              f"{len(folds)} folds{' (reused)' if args.reuse else ''}")
    # Decode time for 100 videos (the 40 repeated), beam search batched across videos.
    model, vocab, extra = load_model(out / variants[-1][0] / "fold0" / "last.pt", torch.device("cpu"))
    x = np.concatenate([feats] * 3)[:100]
    decode_captions(model, x[:5], vocab, torch.device("cpu"), args.beam, args.alpha, extra["max_len"])  # warm-up
    start = time.perf_counter()
    decode_captions(model, x, vocab, torch.device("cpu"), args.beam, args.alpha, extra["max_len"])
    decode_s = time.perf_counter() - start
    print(f"decode 100 videos, beam {args.beam}, batch 100: {decode_s:.2f}s")
    results["decode_100_beam_s"] = decode_s
    (out / f"results_beam{args.beam}_alpha{args.alpha}.json").write_text(json.dumps(results, indent=2))
    print(f"captions and results_*.json in {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/out/hw2_caption", help="output folder (git-ignored)")
    p.add_argument("--config", default="hw2_video_caption/configs/small40.yaml")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], help="config overrides")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold-limit", type=int, default=0, help="run only the first N folds (quick try-runs)")
    p.add_argument("--lm-epochs", type=int, default=0, help="also run with a caption-LM pre-trained decoder")
    p.add_argument("--reuse", action="store_true", help="reuse fold models already in --out (decode only)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--alpha", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    return run_cli(_run, p, argv)


if __name__ == "__main__":
    sys.exit(main())
