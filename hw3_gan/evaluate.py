"""Score generated samples: ``python -m hw3_gan.evaluate <samples_dir> <testing_text.txt>``.

- tag accuracy: the evaluation classifier's hair / eye / joint accuracy against the asked tags;
- Fréchet distance in the classifier's feature space to real images of the same tags, next to the
  distance between two disjoint real sets of the same size and tags (the floor);
- within-tag diversity: mean pairwise feature distance of each line's 5 samples over the same for
  5 real images of those tags (below 0.5: mode collapse);
- optional: the fraction of images where OpenCV's anime-face cascade finds a face.
Real images come from the GAN's own training split, which the classifier never saw.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say
from common.runs import data_root
from common.setup import start_inference
from hw3_gan.classifier import AttributeNet, default_path, load_classifier, predict
from hw3_gan.data import IMAGE_SIZE, FaceData, decode_image, holdout_mask, load_faces
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
    real: FaceData, requests: list[TagRequest], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Two disjoint index sets of real images, each with 5 per testing line of its tags (fewer where the
    data runs short), and how many lines had too few."""
    set_a, set_b, short = [], [], 0
    used = np.zeros(len(real), bool)  # lines may share tags; no real image may serve twice
    for req in requests:
        idx = rng.permutation(np.setdiff1d(_matching(real, req), np.flatnonzero(used)))
        k = min(PER_LINE, len(idx) // 2)
        used[idx[: 2 * k]] = True
        short += int(k < PER_LINE)
        set_a += list(idx[:k])
        set_b += list(idx[k : 2 * k])
    return np.array(set_a, int), np.array(set_b, int), short


def face_rate(images: np.ndarray, cascade: Path) -> float | None:
    """Fraction of images with a detected anime face; None when OpenCV is not installed."""
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
    hits = 0
    for img in images:
        gray = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        faces = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        hits += int(len(faces) > 0)
    return hits / len(images)


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
    real_div = []
    for req in requests:  # average over several draws of 5 real images of the same tags
        idx = _matching(real, req)
        if len(idx) >= PER_LINE:
            draws = [rng.choice(idx, PER_LINE, replace=False) for _ in range(8)]
            pool = predict(net, real.images[np.concatenate(draws)])[0]
            real_div.append(np.mean([mean_pairwise(pool[j * PER_LINE : (j + 1) * PER_LINE]) for j in range(8)]))
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


def _main(args: argparse.Namespace) -> int:
    start_inference("cpu", args.threads, seed=None)  # the reference draw has its own --seed
    requests = read_testing_text(args.testing_text)
    samples = [Path(args.samples_dir) / f"sample_{r.id}_{k}.jpg" for r in requests for k in range(1, PER_LINE + 1)]
    inputs = [args.testing_text, args.classifier or default_path(), args.cascade, args.data, *samples]
    check_outputs([args.json], inputs)
    images = read_samples(Path(args.samples_dir), requests)
    clf_path = Path(args.classifier) if args.classifier else default_path()
    if not clf_path.is_file():
        raise UserError(f"{clf_path}: no evaluation classifier; train one: python -m hw3_gan.classifier")
    net, info = load_classifier(clf_path)
    say(f"classifier: {clf_path} (real-image accuracy {info.get('real_accuracy')})")
    real = real_reference(args.data, info.get("holdout_percent", 20.0))
    cascade = Path(args.cascade) if args.cascade else None
    root = data_root()
    if cascade is None and root is not None and (root / "hw3" / "lbpcascade_animeface.xml").is_file():
        cascade = root / "hw3" / "lbpcascade_animeface.xml"
    if cascade is not None and not cascade.is_file():
        raise UserError(f"{cascade}: cascade file not found")
    res = evaluate(images, requests, net, real, cascade, args.seed)
    print(format_report(res))
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(res, f, indent=2)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("samples_dir", help="folder of sample_<id>_<k>.jpg written by hw3_gan.generate")
    p.add_argument("testing_text", help="the testing file the samples were generated from")
    p.add_argument("--classifier", help=f"evaluation classifier (default: {default_path()})")
    p.add_argument("--data", default="", help="real data folder or .zip (default: $MLDS_DATA/hw3/extra_data.zip)")
    p.add_argument("--cascade", help="lbpcascade_animeface.xml (default: $MLDS_DATA/hw3/ when present)")
    p.add_argument("--seed", type=int, default=0, help="seed for drawing real reference images")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: the cores that are free)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
