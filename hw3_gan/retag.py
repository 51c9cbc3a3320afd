"""Noisy colour tags, replaced where a classifier that never saw the image disagrees confidently.

The training tags name colours the images often do not show plainly (docs/RESULTS.md: 47 of the 68
"brown hair orange eyes" training images are read as brown-eyed). With ``data.retag`` p > 0 the GAN
trains on cleaned tags, the simplest form of confident learning (Northcutt et al. 2021): the
evaluation classifier's network and recipe are trained on one half of the GAN's training images and
read the other half, and the other way round; a hair or eye tag that the half which never saw the
image contradicts with probability >= p is replaced by the colour it reads. The evaluation
hold-out plays no part. The out-of-fold probabilities are cached per data set, so only the first
run pays for the two classifiers.

``python -m hw3_gan.retag [--data PATH] [--confidence P ...]`` reports how many tags each
confidence changes, and the most common replacements.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from common.device import set_threads
from common.errors import UserError, run_cli
from common.files import atomic_write
from common.metrics import say
from common.runs import cache_dir
from hw3_gan import HOMEWORK
from hw3_gan.classifier import AttributeNet, add_run_args, net_from_state, read_images, train_classifier
from hw3_gan.data import FaceData, holdout_mask, load_faces
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS

Device = torch.device | str
EPOCHS = 5  # each half holds about twice the evaluation classifier's images: about its number of steps


def halves(ids: Sequence[str]) -> np.ndarray:
    """0 or 1 per image, from a hash of its id (the same split for any order or subset)."""
    return np.array([zlib.crc32(f"retag:{i}".encode()) % 2 for i in ids], dtype=np.int64)


def half_classifiers(
    data: FaceData, seed: int = 0, epochs: int = EPOCHS, quiet: bool = False, width: int = 32, device: Device = "cpu"
) -> tuple[np.ndarray, list[AttributeNet]]:
    """The half (0 or 1) of every image, and per half k the classifier trained on the other half (on
    ``device``)."""
    half = halves(data.ids)
    if min(np.bincount(half, minlength=2)) < 64:
        raise UserError(f"{data.source}: too few images to retag ({len(data)}; each half needs 64)")
    nets = [
        train_classifier(data.subset(half != k), epochs, seed=seed + k, quiet=quiet, width=width, device=device)
        for k in (0, 1)
    ]
    return half, nets


def out_of_fold(
    data: FaceData, seed: int = 0, epochs: int = EPOCHS, quiet: bool = False, width: int = 32, device: Device = "cpu"
) -> tuple[np.ndarray, np.ndarray, list[AttributeNet]]:
    """(N, 12) hair and (N, 11) eye probabilities, each image read by the classifier of the other half,
    and the two classifiers (``generate`` can name the colours of its draws with them), on the CPU."""
    half, nets = half_classifiers(data, seed, epochs, quiet, width, device)
    hair = np.zeros((len(data), len(HAIR_COLOURS)), dtype=np.float32)
    eye = np.zeros((len(data), len(EYE_COLOURS)), dtype=np.float32)
    for k, net in enumerate(nets):
        _, hair[half == k], eye[half == k] = read_images(net, data.images[half == k])
    return hair, eye, [net.cpu() for net in nets]


def cached_out_of_fold(
    data: FaceData, seed: int = 0, quiet: bool = False, device: Device = "cpu"
) -> tuple[np.ndarray, np.ndarray, list[AttributeNet]]:
    """:func:`out_of_fold`, computed once per (images, tags, seed) and kept in the cache (the reads and the
    two classifiers' weights, in one ``.npz``); ``device`` trains them when they are not cached."""
    key = hashlib.sha1()
    for part in ("\n".join(data.ids), data.hair.tobytes(), data.eye.tobytes(), f"{EPOCHS}|{seed}|{data.images.shape}"):
        key.update(part.encode() if isinstance(part, str) else part)
    path = cache_dir(HOMEWORK) / f"retag-{key.hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            z = np.load(path, allow_pickle=False)
            weights = [
                {k.split("/", 1)[1]: torch.from_numpy(z[k]) for k in z.files if k.startswith(f"net{i}/")}
                for i in (0, 1)
            ]
            nets = [net_from_state(w) for w in weights]
            return z["hair"], z["eye"], nets
        except (OSError, KeyError, ValueError, RuntimeError):
            say(f"warning: {path}: unreadable, or made before the classifiers were kept: training them again")
    start = time.time()
    hair, eye, nets = out_of_fold(data, seed, EPOCHS, quiet, device=device)
    weights = {f"net{i}/{k}": v.numpy() for i, net in enumerate(nets) for k, v in net.state_dict().items()}
    with atomic_write(path, "wb") as f:
        np.savez(f, hair=hair, eye=eye, **weights)
    say(f"retag: two classifiers trained on halves of {len(data)} images in {time.time() - start:.0f} s", quiet)
    return hair, eye, nets


def replace(tags: np.ndarray, probs: np.ndarray, confidence: float) -> np.ndarray:
    """``tags`` with each one the probabilities contradict at >= ``confidence`` replaced by their colour."""
    read = probs.argmax(1)
    return np.where((read != tags) & (probs.max(1) >= confidence), read, tags)


def retag(data: FaceData, confidence: float, seed: int = 0, quiet: bool = False, device: Device = "cpu") -> FaceData:
    """``data`` with cleaned hair and eye tags (see the module)."""
    hair_p, eye_p, _ = cached_out_of_fold(data, seed, quiet, device)
    hair, eye = replace(data.hair, hair_p, confidence), replace(data.eye, eye_p, confidence)
    return FaceData(data.images, hair, eye, data.ids, data.source, dict(data.stats))


def changes(before: FaceData, after: FaceData, top: int = 5) -> str:
    """One line: how many hair and eye tags changed, and the most common replacements."""
    moves = Counter()
    for part, names, old, new in (
        ("hair", HAIR_COLOURS, before.hair, after.hair),
        ("eyes", EYE_COLOURS, before.eye, after.eye),
    ):
        for a, b in zip(old[old != new], new[old != new]):
            moves[f"{part} {names[a]} > {names[b]}"] += 1
    n_hair, n_eye = int((before.hair != after.hair).sum()), int((before.eye != after.eye).sum())
    common = ", ".join(f"{k} {v}" for k, v in moves.most_common(top))
    return f"{n_hair} hair and {n_eye} eye tags of {len(before)} images replaced ({common or 'none'})"


def _main(args: argparse.Namespace) -> int:
    bad = [p for p in args.confidence if not 0 < p < 1]
    if bad:
        raise UserError(f"--confidence must be between 0 and 1, got {bad[0]:g}")
    set_threads(args.threads)
    data = load_faces(args.data or None)
    train = data.subset(~holdout_mask(data.ids, args.holdout_percent))
    say(f"{data.summary()}; {len(train)} GAN training images")
    for p in args.confidence:
        print(f"confidence {p:g}: {changes(train, retag(train, p, args.seed, args.quiet))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.retag", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="", help="data folder or .zip (default: $MLDS_DATA/hw3/extra_data.zip)")
    p.add_argument("--holdout-percent", type=float, default=20.0, help="the GAN's data.holdout_percent")
    p.add_argument("--confidence", type=float, nargs="+", default=[0.5], help="the data.retag values to report")
    add_run_args(p, "the classifiers' seed (training uses 0)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
