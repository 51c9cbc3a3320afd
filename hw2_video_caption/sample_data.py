"""A small synthetic data set in the exact course layout, whose features determine the caption.

Each video shows a subject (man, dog, ...) and an action (running, cooking, ...). Frame features
are non-negative like VGG fc7: the subject's fixed random pattern is visible in the first part of
the video, the action's in a later part, plus noise, stored as ``(80, 4096)`` float64 ``.npy``
files. Captions come from a few templates with the real files' quirks (capitalised, a trailing
period or not, an odd reference). A model that reads the frames can caption unseen videos
perfectly; one that ignores them cannot beat about 0.6 BLEU@1.

    python -m hw2_video_caption.sample_data <out_dir> [--train 60 --test 20 --peer 4]
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.errors import run_cli
from common.files import SAMPLE_MARK, atomic_dir
from hw2_video_caption.data import FEAT_DIM, FRAMES

SUBJECTS = ("man", "woman", "dog", "cat", "boy", "girl")
ACTIONS = ("running", "cooking", "swimming", "dancing", "eating", "singing")
TEMPLATES = ("A {s} is {a}.", "The {s} is {a}", "a {s} is {a} .", "A {s} is {a} here.", "The {s} is {a}.")
PATTERN_SEED = 1234  # fixed, so every split (and every call) shares the same word patterns


def _patterns(feat_dim: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(PATTERN_SEED)
    out = {}
    for word in SUBJECTS + ACTIONS:
        vec = np.zeros(feat_dim)
        on = rng.choice(feat_dim, size=max(4, feat_dim // 32), replace=False)  # sparse, like fc7 after ReLU
        vec[on] = rng.uniform(1.0, 3.0, size=len(on))
        out[word] = vec
    return out


def make_video(
    subject: str, action: str, rng: np.random.Generator, feat_dim: int = FEAT_DIM, noise: float = 0.3
) -> np.ndarray:
    """``(80, feat_dim)`` float64 frames: subject visible early, action later, noise everywhere."""
    pats = _patterns(feat_dim)
    cut = int(rng.integers(30, 50))
    frames = np.abs(rng.normal(0.0, noise, size=(FRAMES, feat_dim)))
    frames[:cut] += pats[subject] * rng.uniform(0.6, 1.4)
    frames[cut - 10 :] += pats[action] * rng.uniform(0.6, 1.4)
    return np.maximum(frames, 0.0)


def _video_id(rng: np.random.Generator) -> str:
    chars = string.ascii_letters + string.digits + "-_"
    start = int(rng.integers(0, 300))
    return "".join(rng.choice(list(chars), size=11)) + f"_{start}_{start + int(rng.integers(4, 25))}.avi"


def _captions(subject: str, action: str, rng: np.random.Generator) -> list[str]:
    caps = [t.format(s=subject, a=action) for t in rng.permutation(TEMPLATES)[: int(rng.integers(3, 6))]]
    if rng.random() < 0.3:
        caps.append(f"Someone is {action}.")  # references are not all alike in the real data either
    return caps


def make_split(n: int, rng: np.random.Generator, feat_dim: int = FEAT_DIM):
    """``n`` videos: (ids, features, captions)."""
    ids, feats, caps = [], [], []
    for _ in range(n):
        s, a = SUBJECTS[int(rng.integers(len(SUBJECTS)))], ACTIONS[int(rng.integers(len(ACTIONS)))]
        ids.append(_video_id(rng))
        feats.append(make_video(s, a, rng, feat_dim))
        caps.append(_captions(s, a, rng))
    return ids, feats, caps


def _write_split(root: Path, feat_sub: str, ids, feats) -> None:
    folder = root / feat_sub
    folder.mkdir(parents=True)
    for vid, x in zip(ids, feats):
        np.save(folder / f"{vid}.npy", x.astype(np.float64))


def _labels(ids, caps) -> str:
    return json.dumps([{"caption": c, "id": v} for v, c in zip(ids, caps)], indent=4)


def write_sample_data(
    out: str | Path, n_train: int = 60, n_test: int = 20, n_peer: int = 0, seed: int = 0, feat_dim: int = FEAT_DIM
) -> Path:
    """Write the course layout under ``out`` (replacing only sample data written earlier) and return it."""
    rng = np.random.default_rng(seed)
    with atomic_dir(out, mark=SAMPLE_MARK) as tmp:
        ids, feats, caps = make_split(n_train, rng, feat_dim)
        _write_split(tmp, "training_data/feat", ids, feats)
        (tmp / "training_label.json").write_text(_labels(ids, caps), encoding="utf-8")
        ids, feats, caps = make_split(n_test, rng, feat_dim)
        _write_split(tmp, "testing_data/feat", ids, feats)
        order = rng.permutation(len(ids))  # the real id list is not in label-file order either
        (tmp / "testing_id.txt").write_text("".join(ids[i] + "\n" for i in order), encoding="utf-8")
        (tmp / "testing_label.json").write_text(_labels(ids, caps), encoding="utf-8")
        if n_peer:
            ids, feats, _ = make_split(n_peer, rng, feat_dim)
            _write_split(tmp, "peer_review/feat", ids, feats)
            (tmp / "peer_review_id.txt").write_text("".join(v + "\n" for v in ids), encoding="utf-8")
    return Path(out)


def write_full_size_data(
    out: str | Path,
    caption_sets: Sequence[Sequence[str]],
    n_train: int = 1450,
    n_test: int = 100,
    n_peer: int = 100,
    seed: int = 0,
) -> Path:
    """The course layout at the course's size, for measuring speed and memory, not quality:
    ``(80, 4096)`` float64 features drawn at random (deterministic in ``seed``, one file at a time,
    so writing 3.8 GB never holds more than one video), captions taken in turn from
    ``caption_sets`` (the real training captions)."""
    rng = np.random.default_rng(seed)

    def split(folder: Path, n: int, first: int) -> tuple[list[str], list[list[str]]]:
        folder.mkdir(parents=True)
        ids = [_video_id(rng) for _ in range(n)]
        for vid in ids:
            x = np.abs(rng.standard_normal((FRAMES, FEAT_DIM), dtype=np.float32))  # >= 0 like fc7
            np.save(folder / f"{vid}.npy", x.astype(np.float64))
        return ids, [list(caption_sets[(first + i) % len(caption_sets)]) for i in range(n)]

    with atomic_dir(out) as tmp:
        ids, caps = split(tmp / "training_data/feat", n_train, 0)
        (tmp / "training_label.json").write_text(_labels(ids, caps), encoding="utf-8")
        ids, caps = split(tmp / "testing_data/feat", n_test, n_train)
        (tmp / "testing_id.txt").write_text("".join(v + "\n" for v in ids), encoding="utf-8")
        (tmp / "testing_label.json").write_text(_labels(ids, caps), encoding="utf-8")
        if n_peer:
            ids, _ = split(tmp / "peer_review/feat", n_peer, 0)
            (tmp / "peer_review_id.txt").write_text("".join(v + "\n" for v in ids), encoding="utf-8")
    return Path(out)


def _main(args: argparse.Namespace) -> int:
    path = write_sample_data(args.out_dir, args.train, args.test, args.peer, args.seed)
    print(f"sample data written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw2_video_caption.sample_data", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--train", type=int, default=60, help="training videos")
    p.add_argument("--test", type=int, default=20, help="test videos")
    p.add_argument("--peer", type=int, default=4, help="peer-review videos")
    p.add_argument("--seed", type=int, default=0)
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
