"""Score generated samples: ``python -m hw3_gan.evaluate <samples_dir> <testing_text.txt>``.

- tag accuracy: the evaluation classifier's hair / eye / joint accuracy against the asked tags;
- Fréchet distance in the classifier's feature space to real images of the same tags, next to the
  distance between two disjoint real sets of the same size and tags (the floor);
- within-tag diversity: mean pairwise feature distance of each line's 5 samples over the same for
  5 real images of those tags (below 0.5: mode collapse);
- optional: the fraction of images where OpenCV's anime-face cascade finds a face.
``--all-pairs --checkpoint FILE`` instead draws and scores samples for every frequent hair/eye pair
(``hw3_gan.all_pairs``).
Real images come from the GAN's own training split, which the classifier never saw.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import load_checkpoint
from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say
from common.runs import data_root, latest_checkpoint
from common.setup import start_inference
from hw3_gan import HOMEWORK
from hw3_gan.classifier import AttributeNet, default_path, load_classifier, predict
from hw3_gan.data import IMAGE_SIZE, FaceData, decode_image, holdout_mask, load_faces
from hw3_gan.generate import PICKERS
from hw3_gan.tags import PER_LINE, TagRequest, read_testing_text


def read_samples(folder: Path, requests: list[TagRequest]) -> np.ndarray:
    """(lines * 5, 64, 64, 3) uint8 in testing-file order; a missing, corrupt or wrong-size file is an error."""
    if not folder.is_dir():
        raise UserError(f"{folder}: samples folder not found")
    images = []
    for req in requests:
        for k in range(1, PER_LINE + 1):
            path = folder / f"sample_{req.id}_{k}.jpg"
            try:
                data = path.read_bytes()
            except OSError:
                raise UserError(f"{path}: sample missing (testing line {req.line})") from None
            try:
                img = decode_image(data, size=0)
            except ValueError as exc:
                raise UserError(f"{path}: not a readable image ({exc})") from None
            if img.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
                raise UserError(f"{path}: is {img.shape[1]}x{img.shape[0]}, the course asks for 64x64")
            images.append(img)
    return np.stack(images)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), the square root through eigendecompositions."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    # Tr((S_a S_b)^1/2) = Tr((S_a^1/2 S_b S_a^1/2)^1/2), and the latter is symmetric PSD.
    inner = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    root_trace = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * root_trace)


def mean_pairwise(feats: np.ndarray) -> float:
    d = np.sqrt(((feats[:, None] - feats[None]) ** 2).sum(-1))
    n = len(feats)
    return float(d.sum() / (n * (n - 1)))


def _matching(real: FaceData, req: TagRequest) -> np.ndarray:
    ok = np.ones(len(real), bool)
    if req.hair is not None:
        ok &= real.hair == req.hair
    if req.eye is not None:
        ok &= real.eye == req.eye
    return np.flatnonzero(ok)


def tag_matched_sets(
    real: FaceData, requests: list[TagRequest], rng: np.random.Generator, per_line: int = PER_LINE
) -> tuple[np.ndarray, np.ndarray, int]:
    """Two disjoint index sets of real images, each with ``per_line`` per testing line of its tags (fewer
    where the data runs short), and how many lines had too few."""
    set_a, set_b, short = [], [], 0
    used = np.zeros(len(real), bool)  # lines may share tags; no real image may serve twice
    for req in requests:
        idx = rng.permutation(np.setdiff1d(_matching(real, req), np.flatnonzero(used)))
        k = min(per_line, len(idx) // 2)
        used[idx[: 2 * k]] = True
        short += int(k < per_line)
        set_a += list(idx[:k])
        set_b += list(idx[k : 2 * k])
    return np.array(set_a, int), np.array(set_b, int), short


def face_rate(images: np.ndarray, cascade: Path) -> float | None:
    """Fraction of images with a detected anime face; None when OpenCV is not installed."""
    hits = face_hits(images, cascade)
    return None if hits is None else float(hits.mean())


def face_hits(images: np.ndarray, cascade: Path) -> np.ndarray | None:
    """Per image: is an anime face detected? None when OpenCV is not installed."""
    try:
        import cv2  # optional dependency
    except ImportError:
        return None
    try:
        detector = cv2.CascadeClassifier(str(cascade))
    except cv2.error:
        detector = None
    if detector is None or detector.empty():
        raise UserError(f"{cascade}: not a readable OpenCV cascade file")
    hits = np.zeros(len(images), bool)
    for i, img in enumerate(images):
        gray = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        faces = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        hits[i] = len(faces) > 0
    return hits


def real_diversity(
    net: AttributeNet, real: FaceData, idx: np.ndarray, rng: np.random.Generator, k: int = PER_LINE, draws: int = 8
) -> float | None:
    """Mean pairwise feature distance of ``k`` real images among ``idx``, averaged over ``draws`` draws."""
    if len(idx) < k:
        return None
    pool = predict(net, real.images[np.concatenate([rng.choice(idx, k, replace=False) for _ in range(draws)])])[0]
    return float(np.mean([mean_pairwise(pool[j * k : (j + 1) * k]) for j in range(draws)]))


def evaluate(
    images: np.ndarray,
    requests: list[TagRequest],
    net: AttributeNet,
    real: FaceData,
    cascade: Path | None = None,
    seed: int = 0,
) -> dict:
    """All figures for ``images`` (5 per request, in order) against ``real`` images."""
    feats, hair, eye = predict(net, images)
    want_h = np.repeat([r.hair if r.hair is not None else -1 for r in requests], PER_LINE)
    want_e = np.repeat([r.eye if r.eye is not None else -1 for r in requests], PER_LINE)
    has_h, has_e = want_h >= 0, want_e >= 0
    res: dict = {"images": len(images), "lines": len(requests)}
    res["hair_accuracy"] = float((hair == want_h)[has_h].mean()) if has_h.any() else None
    res["eye_accuracy"] = float((eye == want_e)[has_e].mean()) if has_e.any() else None
    both = has_h & has_e
    res["joint_accuracy"] = float(((hair == want_h) & (eye == want_e))[both].mean()) if both.any() else None
    rng = np.random.default_rng(seed)
    set_a, set_b, short = tag_matched_sets(real, requests, rng)
    real_feats = predict(net, real.images[np.concatenate([set_a, set_b])])[0]
    fa, fb = real_feats[: len(set_a)], real_feats[len(set_a) :]
    res["real_images_per_set"], res["lines_short_of_real"] = len(set_a), short
    if len(set_a) >= 2:
        res["frechet_generated_vs_real"] = frechet_distance(feats, fa)
        res["frechet_real_vs_real"] = frechet_distance(fb, fa)
    gen_div = [mean_pairwise(feats[i * PER_LINE : (i + 1) * PER_LINE]) for i in range(len(requests))]
    real_div = [d for req in requests if (d := real_diversity(net, real, _matching(real, req), rng)) is not None]
    res["diversity_generated"] = float(np.mean(gen_div))
    res["diversity_real"] = float(np.mean(real_div)) if real_div else None
    res["diversity_ratio"] = res["diversity_generated"] / res["diversity_real"] if real_div else None
    if cascade is not None:
        res["face_rate_generated"] = face_rate(images, cascade)
        res["face_rate_real"] = face_rate(real.images[set_a], cascade) if len(set_a) else None
    return res


def format_report(res: dict) -> str:
    def f(key: str) -> str:
        v = res.get(key)
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    ratio = res.get("diversity_ratio")
    lines = [
        f"images {res['images']} ({res['lines']} lines)",
        f"accuracy   hair {f('hair_accuracy')}  eye {f('eye_accuracy')}  joint {f('joint_accuracy')}",
        f"frechet    generated-real {f('frechet_generated_vs_real')}  real-real floor "
        f"{f('frechet_real_vs_real')}  ({res['real_images_per_set']} real images per set)",
        f"diversity  generated {f('diversity_generated')}  real {f('diversity_real')}  ratio "
        f"{f('diversity_ratio')}" + ("  (below 0.5: mode collapse)" if ratio is not None and ratio < 0.5 else ""),
    ]
    if "face_rate_generated" in res:
        lines.append(
            f"anime face detected  generated {f('face_rate_generated')}  real {f('face_rate_real')}"
            if res["face_rate_generated"] is not None
            else "anime face detection: skipped (no opencv)"
        )
    return "\n".join(lines)


def real_reference(data_path: str, holdout_percent: float) -> FaceData:
    data = load_faces(data_path or None)
    return data.subset(~holdout_mask(data.ids, holdout_percent))


def _references(args: argparse.Namespace) -> tuple[AttributeNet, FaceData, Path | None, str]:
    """The evaluation classifier, the real reference images (the GAN's training split), the cascade, and
    a status line naming the classifier."""
    clf_path = Path(args.classifier) if args.classifier else default_path()
    if not clf_path.is_file():
        raise UserError(f"{clf_path}: no evaluation classifier; train one: python -m hw3_gan.classifier")
    net, info = load_classifier(clf_path)
    real = real_reference(args.data, info.get("holdout_percent", 20.0))
    cascade = Path(args.cascade) if args.cascade else None
    root = data_root()
    if cascade is None and root is not None and (root / "hw3" / "lbpcascade_animeface.xml").is_file():
        cascade = root / "hw3" / "lbpcascade_animeface.xml"
    if cascade is not None and not cascade.is_file():
        raise UserError(f"{cascade}: cascade file not found")
    return net, real, cascade, f"classifier: {clf_path} (real-image accuracy {info.get('real_accuracy')})"


def _check_args(args: argparse.Namespace) -> None:
    if args.all_pairs:
        if args.samples_dir or args.testing_text:
            raise UserError("--all-pairs samples from --checkpoint itself: give no samples folder or testing file")
        if args.per_pair < 2:
            raise UserError(f"--per-pair must be at least 2 (diversity compares images), got {args.per_pair}")
        if args.min_count < 2 * args.per_pair:
            raise UserError(
                f"--min-count must be at least twice --per-pair (two disjoint real sets per pair), got {args.min_count}"
            )
    else:
        if not (args.samples_dir and args.testing_text):
            raise UserError("give a samples folder and its testing file, or --all-pairs")
        given = (args.checkpoint, args.csv, args.candidates != 1, args.spread != 1, args.accept, args.picker)
        flags = ("--checkpoint", "--csv", "--candidates", "--spread", "--accept", "--picker")
        for flag, value in zip(flags, given):
            if value:
                raise UserError(f"{flag} goes with --all-pairs")


def _all_pairs(args: argparse.Namespace) -> int:
    # Imported here: all_pairs builds on this module's functions.
    from hw3_gan import all_pairs
    from hw3_gan.generate import TagSampler

    ckpt = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(HOMEWORK)
    check_outputs([args.csv, args.json], [ckpt, args.classifier or default_path(), args.cascade, args.data])
    state = load_checkpoint(ckpt, HOMEWORK)
    sampler = TagSampler(state, torch.device("cpu"), str(ckpt), args.candidates, args.spread, args.accept, args.picker)
    net, real, cascade, classifier = _references(args)
    pairs = all_pairs.frequent_pairs(real.pair_counts(), args.min_count)  # the data's tags, not the run's
    if not pairs:
        raise UserError(f"{real.source}: no hair/eye pair has {args.min_count} training images (--min-count)")
    say(classifier)
    say(f"checkpoint: {ckpt}; {len(pairs)} pairs with at least {args.min_count} training images")
    images = all_pairs.pair_images(sampler, pairs, args.per_pair, args.sample_seed)
    pooled, rows = all_pairs.score_pairs(images, pairs, args.per_pair, net, real, cascade, args.seed)
    print(all_pairs.format_pooled(pooled))
    print("worst pairs:\n" + all_pairs.format_rows(all_pairs.worst(rows)))
    all_pairs.write_results(pooled, rows, args.csv, args.json)
    return 0


def _main(args: argparse.Namespace) -> int:
    start_inference("cpu", args.threads, seed=None)  # the reference draw has its own --seed
    _check_args(args)
    if args.all_pairs:
        return _all_pairs(args)
    requests = read_testing_text(args.testing_text)
    samples = [Path(args.samples_dir) / f"sample_{r.id}_{k}.jpg" for r in requests for k in range(1, PER_LINE + 1)]
    inputs = [args.testing_text, args.classifier or default_path(), args.cascade, args.data, *samples]
    check_outputs([args.json], inputs)
    images = read_samples(Path(args.samples_dir), requests)
    net, real, cascade, classifier = _references(args)
    say(classifier)
    res = evaluate(images, requests, net, real, cascade, args.seed)
    print(format_report(res))
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(res, f, indent=2)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("samples_dir", nargs="?", help="folder of sample_<id>_<k>.jpg written by hw3_gan.generate")
    p.add_argument("testing_text", nargs="?", help="the testing file the samples were generated from")
    p.add_argument("--classifier", help=f"evaluation classifier (default: {default_path()})")
    p.add_argument("--data", default="", help="real data folder or .zip (default: $MLDS_DATA/hw3/extra_data.zip)")
    p.add_argument("--cascade", help="lbpcascade_animeface.xml (default: $MLDS_DATA/hw3/ when present)")
    p.add_argument("--seed", type=int, default=0, help="seed for drawing real reference images")
    p.add_argument("--json", help="also write the figures to this JSON file (all pairs: pooled and per pair)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: the cores that are free)")
    g = p.add_argument_group("all pairs: score a checkpoint on every frequent hair/eye pair")
    g.add_argument("--all-pairs", action="store_true", help="generate and score every pair with --min-count images")
    g.add_argument("--checkpoint", help="generator checkpoint (default: newest runs/hw3_gan/*/best.pt)")
    g.add_argument("--min-count", type=int, default=20, help="pairs with at least this many training images")
    g.add_argument("--per-pair", type=int, default=5, help="images generated (and real images per set) per pair")
    g.add_argument("--sample-seed", type=int, default=0, help="noise seed of the generated images")
    g.add_argument("--csv", help="write the per-pair table to this CSV file")
    g.add_argument(
        "--candidates",
        type=int,
        default=1,
        help="each image the best of this many draws (default 1: plain draws, where generate "
        "draws a classifier run as --candidates 8 --accept 0.5)",
    )
    g.add_argument("--spread", type=int, default=1, metavar="K", help="keep a pair's images apart (see generate)")
    g.add_argument(
        "--accept",
        type=float,
        default=0.0,
        metavar="R",
        help="keep images apart among draws >= R x the best (see generate)",
    )
    g.add_argument("--picker", choices=PICKERS, help="with --candidates: what names a draw's colours (see generate)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
