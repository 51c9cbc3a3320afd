"""Score a generator on every hair/eye pair the training data has at least ``min_count`` images of.

``python -m hw3_gan.evaluate --all-pairs --checkpoint RUN/best.pt --csv pairs.csv --json pairs.json``
draws ``k`` images per pair (fixed seed) and reports, per pair and pooled over all of them, what
``evaluate`` reports for a testing file: the classifier's hair / eye / joint accuracy (the joint one
also on ``k`` real images per pair: what a generator that drew like the data would score), the
anime-face detection rate, the Fréchet distance in the classifier's feature space next to the
real-vs-real floor at the same sample size (two disjoint real sets, ``k`` images per pair each), and
the within-pair diversity over that of real images. The pairs and their counts are those of the GAN's
training split as the data tags it (a run with ``data.retag`` trained on other tags, and is scored on
the same pairs as every other run); the real reference images come from that split too (the
classifier never saw it).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from common.files import atomic_write
from hw3_gan.classifier import AttributeNet, predict
from hw3_gan.data import FaceData
from hw3_gan.evaluate import face_hits, frechet_distance, mean_pairwise, real_diversity, tag_matched_sets
from hw3_gan.generate import TagSampler
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS, TagRequest

COLUMNS = [
    "hair",
    "eye",
    "real_count",
    "hair_accuracy",
    "eye_accuracy",
    "joint_accuracy",
    "face_rate",
    "frechet",
    "frechet_floor",
    "frechet_ratio",
    "diversity_ratio",
]


def frequent_pairs(counts: np.ndarray, min_count: int) -> list[tuple[int, int]]:
    """(hair, eye) ids with at least ``min_count`` images, in hair-then-eye order."""
    if min_count < 1:
        raise UserError(f"--min-count must be at least 1, got {min_count}")
    return [(int(h), int(e)) for h, e in zip(*np.nonzero(counts >= min_count))]


def pair_images(sampler: TagSampler, pairs: list[tuple[int, int]], k: int, seed: int = 0) -> np.ndarray:
    """(len(pairs) * k, 64, 64, 3) uint8: ``k`` images per pair, pair by pair; the same seed, the same images."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, e in pairs:
        hair, eye = sampler.tag_ids(TagRequest("", h, e))
        out.append(sampler.sample([hair] * k, [eye] * k, g))
    return np.concatenate(out)


def score_pairs(
    images: np.ndarray,
    pairs: list[tuple[int, int]],
    k: int,
    net: AttributeNet,
    real: FaceData,
    cascade: Path | None = None,
    seed: int = 0,
) -> tuple[dict, list[dict]]:
    """Pooled figures and one row per pair for ``images`` (``k`` per pair, in ``pairs`` order)."""
    requests = [TagRequest(str(i), h, e) for i, (h, e) in enumerate(pairs, 1)]
    feats, hair, eye = predict(net, images)
    want_h, want_e = np.repeat([p[0] for p in pairs], k), np.repeat([p[1] for p in pairs], k)
    ok_h, ok_e = hair == want_h, eye == want_e
    rng = np.random.default_rng(seed)
    set_a, set_b, short = tag_matched_sets(real, requests, rng, per_line=k)
    if short:
        raise UserError(f"{short} pairs have fewer than {2 * k} real images; raise --min-count or lower --per-pair")
    real_feats, real_h, real_e = predict(net, real.images[np.concatenate([set_a, set_b])])
    fa, fb = real_feats[: len(set_a)], real_feats[len(set_a) :]
    real_ok = (real_h[: len(set_a)] == want_h) & (real_e[: len(set_a)] == want_e)  # set_a: k per pair, in order
    faces = face_hits(images, cascade) if cascade is not None else None
    counts = real.pair_counts()
    rows, gen_div, real_div = [], [], []
    for i, (h, e) in enumerate(pairs):
        s = slice(i * k, (i + 1) * k)
        gen_div.append(mean_pairwise(feats[s]))
        real_div.append(real_diversity(net, real, np.flatnonzero((real.hair == h) & (real.eye == e)), rng, k))
        fd, floor = frechet_distance(feats[s], fa[s]), frechet_distance(fb[s], fa[s])
        rows.append(
            {
                "hair": HAIR_COLOURS[h],
                "eye": EYE_COLOURS[e],
                "real_count": int(counts[h, e]),
                "hair_accuracy": float(ok_h[s].mean()),
                "eye_accuracy": float(ok_e[s].mean()),
                "joint_accuracy": float((ok_h & ok_e)[s].mean()),
                "face_rate": None if faces is None else float(faces[s].mean()),
                "frechet": fd,
                "frechet_floor": floor,
                "frechet_ratio": fd / floor if floor > 0 else None,
                "diversity_ratio": gen_div[-1] / real_div[-1] if real_div[-1] else None,
            }
        )
    fd, floor = frechet_distance(feats, fa), frechet_distance(fb, fa)
    real_faces = face_hits(real.images[set_a], cascade) if cascade is not None else None
    pooled = {
        "pairs": len(pairs),
        "images": len(images),
        "per_pair": k,
        "hair_accuracy": float(ok_h.mean()),
        "eye_accuracy": float(ok_e.mean()),
        "joint_accuracy": float((ok_h & ok_e).mean()),
        "joint_accuracy_real": float(real_ok.mean()),
        "face_rate_generated": None if faces is None else float(faces.mean()),
        "face_rate_real": None if real_faces is None else float(real_faces.mean()),
        "frechet_generated_vs_real": fd,
        "frechet_real_vs_real": floor,
        "frechet_ratio": fd / floor,
        "diversity_generated": float(np.mean(gen_div)),
        "diversity_real": float(np.mean(real_div)),
        "diversity_ratio": float(np.mean(gen_div) / np.mean(real_div)),
    }
    return pooled, rows


def worst(rows: list[dict], n: int = 5) -> list[dict]:
    """The ``n`` pairs with the lowest joint accuracy; ties go to the higher Fréchet ratio."""
    return sorted(rows, key=lambda r: (r["joint_accuracy"], -(r["frechet_ratio"] or 0)))[:n]


def format_pooled(p: dict) -> str:
    face = "n/a (no opencv)" if p["face_rate_generated"] is None else f"{p['face_rate_generated']:.3f}"
    real_face = "" if p["face_rate_real"] is None else f" (real {p['face_rate_real']:.3f})"
    return (
        f"all pairs: {p['pairs']} pairs x {p['per_pair']} = {p['images']} images\n"
        f"accuracy   hair {p['hair_accuracy']:.3f}  eye {p['eye_accuracy']:.3f}  joint {p['joint_accuracy']:.3f} "
        f"(real {p['joint_accuracy_real']:.3f})\n"
        f"face       {face}{real_face}\n"
        f"frechet    {p['frechet_generated_vs_real']:.2f}, real-real floor {p['frechet_real_vs_real']:.2f}: "
        f"ratio {p['frechet_ratio']:.2f}\n"
        f"diversity  {p['diversity_generated']:.2f} / real {p['diversity_real']:.2f} = {p['diversity_ratio']:.2f}"
    )


def format_rows(rows: list[dict]) -> str:
    def cell(v: object) -> str:
        return "n/a" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    return "\n".join("  ".join(f"{c}={cell(r[c])}" for c in COLUMNS) for r in rows)


def write_results(pooled: dict, rows: list[dict], csv_path: str | Path | None, json_path: str | Path | None) -> None:
    """The per-pair table as CSV and everything as JSON, each written atomically."""
    if csv_path:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: ("" if r[c] is None else r[c]) for c in COLUMNS} for r in rows)
        with atomic_write(csv_path) as f:
            f.write(buf.getvalue())
    if json_path:
        with atomic_write(json_path) as f:
            json.dump({"pooled": pooled, "pairs": rows}, f, indent=2)
