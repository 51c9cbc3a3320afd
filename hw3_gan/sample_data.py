"""A small synthetic data set in the exact course formats: ``python -m hw3_gan.sample_data OUT``.

Each 64x64 "face" has a hair region in its hair colour and two eyes in its eye colour on a skin
background, with random hair length, shading and JPEG noise. The colour regions make the task
checkable: a generator that learned the tags puts the asked colours in the right places.
Quirks of the real files are kept: ids are not contiguous, one tag line has no image, and the
2017 variant has many tags per line with post counts, some lines without a single colour pair.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import run_cli
from common.files import SAMPLE_MARK, atomic_dir, atomic_write
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS

HAIR_RGB = {
    "orange": (250, 140, 20),
    "white": (240, 240, 240),
    "aqua": (0, 200, 200),
    "gray": (128, 128, 128),
    "green": (20, 160, 40),
    "red": (220, 25, 25),
    "purple": (130, 20, 170),
    "pink": (255, 130, 190),
    "blue": (30, 60, 230),
    "black": (25, 25, 25),
    "brown": (120, 70, 25),
    "blonde": (250, 220, 110),
}
EYE_RGB = {**{k: v for k, v in HAIR_RGB.items() if k in EYE_COLOURS}, "yellow": (240, 230, 0)}
SKIN = (250, 215, 190)
EYE_BOXES = [(30, 42, 12, 26), (30, 42, 38, 52)]  # (top, bottom, left, right) at 64x64
# Colours the demo and the tests use: few enough for a tiny model to learn in seconds.
DEMO_HAIR = ["blue", "red", "blonde"]
DEMO_EYES = ["green", "blue", "red"]


def synthetic_faces(
    n: int, hair: Sequence[str], eyes: Sequence[str], seed: int = 0, size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 faces and their hair and eye ids (indices into the course lists)."""
    rng = np.random.default_rng(seed)
    h_ids = rng.integers(0, len(hair), n)
    e_ids = rng.integers(0, len(eyes), n)
    images = np.empty((n, 64, 64, 3), np.uint8)
    for i in range(n):
        img = np.empty((64, 64, 3), np.float32)
        img[:] = SKIN
        hair_rgb = np.array(HAIR_RGB[hair[h_ids[i]]], np.float32) * rng.uniform(0.85, 1.0)
        fringe = rng.integers(18, 27)  # hair down to row 18..26, and down the sides
        img[:fringe] = hair_rgb
        side = rng.integers(4, 10)
        img[:, :side] = hair_rgb
        img[:, 64 - side :] = hair_rgb
        for top, bottom, left, right in EYE_BOXES:
            img[top:bottom, left:right] = EYE_RGB[eyes[e_ids[i]]]
            img[top + 3 : bottom - 3, left + 4 : right - 4] *= 0.6  # a darker pupil
        img += rng.normal(0, 6, img.shape)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    if size != 64:
        images = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])
    hair_idx = np.array([HAIR_COLOURS.index(hair[k]) for k in h_ids])
    eye_idx = np.array([EYE_COLOURS.index(eyes[k]) for k in e_ids])
    return images, hair_idx, eye_idx


def judge_colours(images: np.ndarray, hair: Sequence[str], eyes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The hair and eye colours (course ids) that images of this layout show: the nearest of ``hair`` /
    ``eyes`` to the mean colour of the hair region and of the eye boxes. Works at any size."""
    s = images.shape[1] / 64
    x = images.astype(np.float64)
    hair_mean = x[:, : max(1, int(16 * s)), int(12 * s) : int(52 * s)].mean((1, 2))
    eye_mean = (
        np.mean(
            [x[:, int(t * s) : int(b * s), int(lft * s) : int(r * s)].mean((1, 2)) for t, b, lft, r in EYE_BOXES],
            axis=0,
        )
        / 0.914
    )  # undo the darker pupils

    def nearest(means: np.ndarray, names: Sequence[str], rgb: dict, ids: list[str]) -> np.ndarray:
        palette = np.array([rgb[n] for n in names], np.float64)
        best = ((means[:, None] - palette[None]) ** 2).sum(-1).argmin(1)
        return np.array([ids.index(names[k]) for k in best])

    return nearest(hair_mean, hair, HAIR_RGB, HAIR_COLOURS), nearest(eye_mean, eyes, EYE_RGB, EYE_COLOURS)


def _jpeg(img: np.ndarray, size: int) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(img)
    if size != 64:
        im = im.resize((size, size), Image.BICUBIC)
    im.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def write_sample_data(
    out: str | Path,
    n: int = 400,
    fmt: str = "2018",
    seed: int = 0,
    hair: Sequence[str] = DEMO_HAIR,
    eyes: Sequence[str] = DEMO_EYES,
) -> Path:
    """Write ``extra_data/`` (2018) or ``faces/`` + ``tags_clean.csv`` (2017) plus testing texts; returns
    the data folder."""
    out = Path(out)
    images, h_ids, e_ids = synthetic_faces(n, hair, eyes, seed)
    ids = [str(7 + 3 * i + (i // 50) * 11) for i in range(n)]  # not contiguous, like the real ids
    name = "extra_data" if fmt == "2018" else "data_2017"
    with atomic_dir(out / name, mark=SAMPLE_MARK) as tmp:
        image_dir = tmp / ("images" if fmt == "2018" else "faces")
        image_dir.mkdir()
        lines = []
        for i, (ident, h, e) in enumerate(zip(ids, h_ids, e_ids)):
            hair_tag, eye_tag = f"{HAIR_COLOURS[h]} hair", f"{EYE_COLOURS[e]} eyes"
            if fmt == "2018":
                lines.append(f"{ident},{hair_tag} {eye_tag}")
            else:
                items = [f"{hair_tag}:{1000 + 37 * i}", "long hair:195231", f"{eye_tag}:{500 + i}", "smile:36211"]
                lines.append(f"{ident}," + "\t".join(items[i % 3 :] + items[: i % 3]))
            (image_dir / f"{ident}.jpg").write_bytes(_jpeg(images[i], 64 if fmt == "2018" else 96))
        # Real quirks: a tag line whose image is missing; 2017 lines that are not one clean pair.
        lines.append(
            f"{int(ids[-1]) + 5},{HAIR_COLOURS[h_ids[0]]} hair {EYE_COLOURS[e_ids[0]]} eyes"
            if fmt == "2018"
            else f"{int(ids[-1]) + 5},blue hair:10\tred eyes:5"
        )
        if fmt == "2017":
            lines += [f"{int(ids[-1]) + 8},blue hair:10\tred hair:9\tred eyes:5", f"{int(ids[-1]) + 9},smile:4\t"]
        with atomic_write(tmp / ("tags.csv" if fmt == "2018" else "tags_clean.csv"), newline="\n") as f:
            f.write("\n".join(lines) + "\n")
    pairs = [(hair[0], eyes[0]), (hair[0], eyes[1 % len(eyes)]), (hair[1 % len(hair)], eyes[-1])]
    with atomic_write(out / "sample_testing_text.txt", newline="") as f:
        f.write("".join(f"{i},{h} hair {e} eyes\r\n" for i, (h, e) in enumerate(pairs, 1)))
        f.write(f"4,{hair[-1]} hair\r\n5,{eyes[0]} eyes {hair[0]} hair\r\n")
    return out / name


def _main(args: argparse.Namespace) -> int:
    folder = write_sample_data(args.out, args.n, args.format, args.seed)
    print(folder)
    print(Path(args.out) / "sample_testing_text.txt")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.sample_data", description=__doc__)
    p.add_argument("out", help="folder to write into")
    p.add_argument("--n", type=int, default=400, help="number of images")
    p.add_argument("--format", choices=["2018", "2017"], default="2018", help="course data format")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
