"""HW2 benchmark: k-fold captioning of the 40 real test videos that have features here.

Each fold trains ``python -m hw2_video_caption.train`` on the other videos and captions the held-out
ones with every method: the constant caption "a man is playing a guitar", the training caption
with the best mean BLEU@1 over the training videos (another constant), the model's top beam, MBR
over the model's n-best list, the nearest-neighbour captioner, and MBR over the model's n-best
list joined with the neighbours' captions. A method's settings (beam width, MBR metric, model
weight, neighbours, prior weight, pool of generic training captions) are chosen per fold on the
fold's training videos only: they are split again (``--inner-folds``), a model trained on each
inner part captions the rest, and the setting with the best new BLEU@1 + CIDEr-D among those
giving different captions to >= 75% of videos (or, if none does, the most different captions)
wins. All held-out captions are then scored together (both course BLEU@1 variants, BLEU-4,
CIDEr-D, number of different captions).

    MLDS_DATA=../shared/data python benchmarks/hw2_caption.py --out benchmarks/out/hw2_caption --lm-epochs 1

With ``--lm-epochs N`` the decoder is first pre-trained once as a caption language model on the
24,232 training captions (their videos are not among the 40) and every model starts from it.
``--full-scale`` instead measures one epoch of ``configs/default.yaml`` on a generated data set of
the course's full size (see benchmarks/hw2_full_scale.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.hw2_full_scale import full_scale  # noqa: E402
from common.errors import UserError, run_cli  # noqa: E402
from hw2_video_caption import train  # noqa: E402
from hw2_video_caption.consensus import (  # noqa: E402
    CaptionPrior,
    CiderD,
    NeighbourCaptioner,
    similarity,
    tokenize_sets,
)
from hw2_video_caption.data import (  # noqa: E402
    available_ids,
    course_data_dir,
    load_features,
    load_labels,
    mean_frames,
    split_ids,
    write_captions,
)
from hw2_video_caption.decode import Decoding, choose, extra_candidates, model_nbest, score_candidates  # noqa: E402
from hw2_video_caption.evaluate import CONSTANT_CAPTION, format_scores, score_all  # noqa: E402
from hw2_video_caption.predict import load_model  # noqa: E402

CPU = torch.device("cpu")
MAX_BEAM, MAX_NEIGHBOURS, MAX_POOL = 10, 10, 1000


def grids() -> dict[str, list[Decoding]]:
    """The settings tried per method (the first of each list is its plain form). The prior's weight
    and pool of generic candidates: CIDEr-D, scored pair by pair, only with the small pools."""
    weights = (0.0, 0.3, 1.0)
    mbr = [("bleu1", p, n) for p in (0.0, 0.15, 0.3, 0.45, 0.6, 0.75) for n in (0, 10, 100, MAX_POOL)]
    mbr += [("cider", p, n) for p in (0.0, 0.15, 0.3, 0.45) for n in (0, 10)]
    return {
        "model beam 5": [Decoding(beam=5)],
        "model + MBR": [
            Decoding(beam=b, rerank=m, model_weight=w, prior=p, pool=n)
            for b, (m, p, n), w in itertools.product((5, 10), mbr, weights)
        ],
        "NN": [
            Decoding(rerank=m, neighbours=k, use_model=False, prior=p, pool=n)
            for (m, p, n), k in itertools.product(mbr, (1, 3, 5, 10))
        ],
        "NN + model MBR": [
            Decoding(beam=b, rerank=m, neighbours=k, model_weight=w, prior=p, pool=n)
            for b, (m, p, n), k, w in itertools.product((5, 10), mbr, (3, 5, 10), weights)
        ],
    }


def _train(cfg: str, data: Path, sets: list[str], run_dir: Path, reuse: bool = False) -> None:
    if reuse and (run_dir / "last.pt").is_file():
        return  # --reuse: keep the model trained by an earlier run, only decode again
    args = [
        "--config",
        cfg,
        "--set",
        f"data.data_dir={data}",
        "data.split=testing",
        *sets,
        "--run-dir",
        str(run_dir),
        "--quiet",
    ]
    if train.main(args) != 0:
        raise UserError(f"training failed: {' '.join(args)}")


class Pools:
    """What every strategy needs for some held-out videos, computed once: the model's n-best
    lists, the neighbours among the training videos, and the neighbours' captions scored by the model."""

    def __init__(
        self,
        run_dir: Path,
        feats: np.ndarray,
        pooled: np.ndarray,
        train_rows: list[int],
        rows: list[int],
        sets: list[list[str]],
        prior: CaptionPrior,
    ):
        model, self.vocab, extra = load_model(run_dir / "last.pt", CPU)
        self.nn, self.prior = NeighbourCaptioner(pooled[train_rows], [sets[i] for i in train_rows]), prior
        x = feats[rows]
        self.nbest = {b: model_nbest(model, x, self.vocab, CPU, b, 0.7, extra["max_len"]) for b in (5, MAX_BEAM)}
        self.neigh = self.nn.neighbours(pooled[rows], MAX_NEIGHBOURS)
        self.scored = [
            score_candidates(
                model, torch.from_numpy(x[i : i + 1]), extra_candidates(n, self.nn, prior, MAX_POOL), self.vocab, 0.7
            )
            for i, n in enumerate(self.neigh)
        ]

    def captions(self, dec: Decoding, sims: dict, memo: dict) -> list[str]:
        sim = sims.get(dec.rerank)
        return [
            choose(self.nbest[dec.beam][i], self.neigh[i], self.nn, dec, sim, self.scored[i], memo, self.prior)
            for i in range(len(self.neigh))
        ]


def objective(s: dict) -> tuple[float, float]:
    """The tuning criterion: different captions for 75% of the videos (or as near to it as any
    setting gets), then the highest new BLEU@1 + CIDEr-D."""
    return min(s["distinct"] / s["videos"], 0.75), s["bleu1_new"] + s["cider_d"]


def fixed_objective(per_fold: list[dict]) -> tuple[float, float]:
    """The criterion for one setting used in every fold: the mean over the folds of each part of
    ``objective`` on the fold's inner held-out videos."""
    parts = np.array([objective(s) for s in per_fold])
    return float(parts[:, 0].mean()), float(parts[:, 1].mean())


def _tune(
    pools: list[tuple[Pools, list[str]]], labels: dict, sims: dict, memo: dict, every: dict[tuple[str, int], list]
) -> dict[str, tuple]:
    """Per method: (best setting, its inner scores) on the inner held-out videos of one fold; every
    setting's inner scores are appended to ``every[(method, index in its grid)]``."""
    best = {}
    for method, options in grids().items():
        scored = []
        for i, dec in enumerate(options):
            caps = {v: c for p, ids in pools for v, c in zip(ids, p.captions(dec, sims, memo))}
            s = score_all(caps, labels)
            scored.append((objective(s), dec, s))
            every.setdefault((method, i), []).append(s)
        key, dec, s = max(scored, key=lambda t: t[0])
        best[method] = (dec, s)
    return best


def _main(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    print(f"threads {torch.get_num_threads()}, 1-minute load average {os.getloadavg()[0]:.2f}")
    if args.full_scale:
        return full_scale(args.out, args.seed)
    data = course_data_dir()
    if data is None:
        raise UserError("set MLDS_DATA (e.g. ../shared/data): this benchmark needs the real features")
    out = Path(args.out)
    feat_dir, ids = split_ids(data, "testing")
    have = available_ids(feat_dir, ids)
    labels = load_labels(data / "testing_label.json")
    feats = load_features(feat_dir, have, cache=False)
    pooled, sets = mean_frames(feats), [labels[v] for v in have]
    train_sets = list(load_labels(data / "training_label.json").values())  # none of the 40 videos is among them
    sims = {"bleu1": similarity("bleu1", None), "cider": similarity("cider", CiderD(tokenize_sets(train_sets)))}
    prior = CaptionPrior(train_sets)
    order = np.random.default_rng(args.seed).permutation(len(have))
    folds = [sorted(order[f :: args.folds].tolist()) for f in range(args.folds)][: args.fold_limit or None]
    print(
        f"{len(have)} videos with features, {args.folds}-fold ({len(folds)} run), {args.inner_folds} inner folds, "
        f"config {args.config} {' '.join(args.overrides)}"
    )
    sets_lm: list[str] = []
    if args.lm_epochs:
        lm_dir, start = out / "caption_lm", time.perf_counter()
        # val_fraction=1 puts all 40 videos on the validation side, so the vocabulary and the language
        # model come from training_label.json alone; epochs=0 stops after pre-training.
        _train(
            args.config,
            data,
            [
                f"data.ids={json.dumps(have)}",
                "data.val_fraction=1.0",
                "train.epochs=0",
                f"train.pretrain_lm_epochs={args.lm_epochs}",
                *args.overrides,
            ],
            lm_dir,
            args.reuse,
        )
        print(f"caption LM pre-training: {args.lm_epochs} epochs in {time.perf_counter() - start:.0f}s")
        sets_lm = [f"train.init_checkpoint={lm_dir / 'best.pt'}"]

    def fit(rows: list[int], run_dir: Path) -> None:
        _train(
            args.config,
            data,
            [f"data.ids={json.dumps([have[i] for i in rows])}", "data.val_fraction=0", *sets_lm, *args.overrides],
            run_dir,
            args.reuse,
        )

    memo: dict = {}
    captions: dict[str, dict[str, str]] = {m: {} for m in grids()}
    chosen: dict[str, list] = {m: [] for m in grids()}
    every: dict[tuple[str, int], list] = {}
    outer: list[tuple[Pools, list[str]]] = []
    inner_ids: list[list[str]] = []
    start = time.perf_counter()
    for f, held in enumerate(folds):
        rest = [i for i in range(len(have)) if i not in set(held)]
        inner = []
        for j in range(args.inner_folds):
            part = rest[j :: args.inner_folds]
            others = [i for i in rest if i not in set(part)]
            fit(others, out / "inner" / f"fold{f}_{j}")
            inner.append(
                (
                    Pools(out / "inner" / f"fold{f}_{j}", feats, pooled, others, part, sets, prior),
                    [have[i] for i in part],
                )
            )
        best = _tune(inner, labels, sims, memo, every)
        inner_ids.append([v for _, ids in inner for v in ids])
        fit(rest, out / "outer" / f"fold{f}")
        outer.append(
            (Pools(out / "outer" / f"fold{f}", feats, pooled, rest, held, sets, prior), [have[i] for i in held])
        )
        for method, (dec, _) in best.items():
            chosen[method].append(dec)
            captions[method].update(zip(outer[-1][1], outer[-1][0].captions(dec, sims, memo)))
        print(
            f"fold {f}: "
            + "; ".join(
                f"{m}: {_short(d)} (inner {s['bleu1_new']:.3f}/{s['cider_d']:.3f}/{s['distinct']})"
                for m, (d, s) in best.items()
            ),
            flush=True,
        )
    print(f"{len(folds)} folds in {time.perf_counter() - start:.0f}s")
    ordered = [have[i] for fold in folds for i in fold]
    ordered = [v for v in have if v in set(ordered)]
    results = {"constant": score_all({v: CONSTANT_CAPTION for v in ordered}, labels)}
    print(f"{'constant':>15}: {format_scores(results['constant'])}")
    best_prior = " ".join(prior.pool(1)[0].words)  # another constant, chosen on the training captions alone
    results["prior best"] = score_all({v: best_prior for v in ordered}, labels)
    print(f"{'prior best':>15}: {format_scores(results['prior best'])}  ({best_prior!r})")
    for method, caps in captions.items():
        results[method] = score_all({v: caps[v] for v in ordered}, labels)
        name = method.replace(" ", "_").replace("+", "and")
        write_captions(out / f"{name}_captions.txt", [(v, caps[v]) for v in ordered])
        print(f"{method:>15}: {format_scores(results[method])}")
    # The default for predict: the one setting that does best on every fold's inner held-out videos.
    (method, i), grid = max(every, key=lambda k: fixed_objective(every[k])), grids()
    dec = grid[method][i]
    caps = {v: c for p, ids in outer for v, c in zip(ids, p.captions(dec, sims, memo))}
    results["default"] = score_all({v: caps[v] for v in ordered}, labels)
    write_captions(out / "default_captions.txt", [(v, caps[v]) for v in ordered])
    distinct, value = fixed_objective(every[(method, i)])
    print(
        f"one setting for every fold, best on the inner held-out videos: {method}, {_short(dec)} "
        f"(inner means: different captions {distinct:.3f} capped at 0.75, BLEU@1 new + CIDEr-D {value:.4f})"
    )
    print(f"{'that setting':>15}: {format_scores(results['default'])}")
    results["chosen"] = {m: [d.__dict__ for d in ds] for m, ds in chosen.items()}
    results["default_setting"] = {"method": method, **dec.__dict__}
    # Every setting's inner scores, and how many reach the quality targets on the inner videos of every fold.
    results["grid"] = [
        {"method": m, **grid[m][i].__dict__, "inner_per_fold": scores} for (m, i), scores in every.items()
    ]
    floors = [score_all({v: CONSTANT_CAPTION for v in ids}, labels)["bleu1_new"] - 0.01 for ids in inner_ids]
    reach = [
        k
        for k, scores in every.items()
        if all(s["bleu1_new"] >= f and s["distinct"] >= 0.75 * s["videos"] for s, f in zip(scores, floors))
    ]
    print(
        "settings with new BLEU@1 >= the constant's - 0.01 and >= 75% different captions on every fold's "
        f"inner held-out videos: {len(reach)} of {len(every)}"
        + "".join(f"; {m}, {_short(grid[m][i])}" for m, i in reach[:5])
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"captions and results.json in {out}")
    return 0


def _short(d: Decoding) -> str:
    parts = [f"beam {d.beam}"] if d.use_model else []
    if d.neighbours:
        parts.append(f"{d.neighbours} nn")
    if d.rerank != "none":
        parts.append(f"MBR {d.rerank}" + (f" w {d.model_weight}" if d.use_model else "") + f" prior {d.prior}")
        parts[-1] += f" pool {d.pool}" if d.pool else ""
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/out/hw2_caption", help="output folder (git-ignored)")
    p.add_argument("--config", default="hw2_video_caption/configs/small40.yaml", help="training config")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], help="config overrides")
    p.add_argument("--folds", type=int, default=5, help="outer folds (test = one fold)")
    p.add_argument("--inner-folds", type=int, default=2, help="splits of a fold's training videos for tuning")
    p.add_argument("--fold-limit", type=int, default=0, help="run only the first N folds (quick try-runs)")
    p.add_argument("--lm-epochs", type=int, default=0, help="start every model from a caption LM pre-trained N epochs")
    p.add_argument("--reuse", action="store_true", help="reuse models already in --out (decode only)")
    p.add_argument("--seed", type=int, default=0, help="fold assignment")
    p.add_argument(
        "--full-scale",
        action="store_true",
        help="instead: one epoch of configs/default.yaml on a generated full-size data set",
    )
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
