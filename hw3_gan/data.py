"""The two course data formats, decoded once into a cached uint8 array.

2018 ``extra_data/``: ``images/<id>.jpg`` (64x64) and ``tags.csv`` lines ``<id>,<hair> hair <eye> eyes``.
2017 ``faces/<id>.jpg`` (96x96) and ``tags_clean.csv`` lines ``<id>,<tag>:<posts>\\t<tag>:<posts>...``;
an image is kept when it has exactly one hair colour and one eye colour tag. Either way a tag line
whose image is missing is counted and reported, and a corrupt JPEG is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from common.errors import UserError, where
from common.files import atomic_write
from common.metrics import say
from common.runs import cache_dir, data_root, unpack
from common.text import read_lines
from hw3_gan import HOMEWORK
from hw3_gan.tags import ALIASES, EYE_COLOURS, HAIR_COLOURS, parse_tags, split_id

IMAGE_SIZE = 64


@dataclass
class FaceData:
    """Images (N, S, S, 3) uint8 with their hair and eye colour ids."""

    images: np.ndarray
    hair: np.ndarray
    eye: np.ndarray
    ids: list[str]
    source: str = ""
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> FaceData:
        idx = np.flatnonzero(mask)
        return FaceData(
            self.images[idx], self.hair[idx], self.eye[idx], [self.ids[i] for i in idx], self.source, dict(self.stats)
        )

    def summary(self) -> str:
        s = self.stats
        extra = "".join(f", {k} {v}" for k, v in s.items() if v and k != "lines")
        return f"{self.source}: {len(self)} images from {s.get('lines', len(self))} tag lines{extra}"

    def pair_counts(self) -> np.ndarray:
        """(hair, eye) co-occurrence counts, used to fill in a tag a testing line leaves out."""
        counts = np.zeros((len(HAIR_COLOURS), len(EYE_COLOURS)), dtype=np.int64)
        np.add.at(counts, (self.hair, self.eye), 1)
        return counts


def locate(path: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Find a data set folder and its format ('2018' or '2017') from a folder, a .zip or MLDS_DATA."""
    if path is None or str(path) == "":
        root = data_root(required=True)
        path = root / "hw3" / "extra_data.zip" if (root / "hw3").is_dir() else root
    path = Path(path)
    if path.is_file() and path.suffix == ".zip":
        path = unpack(path)
    if not path.is_dir():
        raise UserError(f"{path}: data folder not found")
    for candidate in (path, path / "extra_data", path / "data"):
        if (candidate / "tags.csv").is_file():
            return candidate, "2018"
        if (candidate / "tags_clean.csv").is_file():
            return candidate, "2017"
    raise UserError(f"{path}: no tags.csv (2018 format) or tags_clean.csv (2017 format) in this folder")


def _read_2018(folder: Path) -> list[tuple[str, int, int, int]]:
    tags = folder / "tags.csv"
    rows = []
    for n, line in enumerate(read_lines(tags), 1):
        if not line.strip():
            continue
        source = where(tags, n)
        ident, rest = split_id(line, source)
        hair, eye = parse_tags(rest, source)
        if hair is None or eye is None:
            raise UserError(f"{source}: a training line needs both a hair and an eye colour")
        rows.append((ident, hair, eye, n))
    return rows


def _read_2017(folder: Path) -> tuple[list[tuple[str, int, int, int]], int]:
    """Rows with exactly one hair colour and one eye colour tag, and how many lines were left out."""
    tags = folder / "tags_clean.csv"
    rows, unusable = [], 0
    for n, line in enumerate(read_lines(tags), 1):
        if not line.strip():
            continue
        source = where(tags, n)
        ident, rest = split_id(line, source)
        hairs, eyes = set(), set()
        for item in rest.split("\t"):
            item = item.strip()
            if not item:
                continue
            name, sep, posts = item.rpartition(":")
            if not sep or not name or not posts.strip().isdigit():
                raise UserError(f"{source}: expected '<tag>:<post count>' items, got '{item[:40]}'")
            words = name.lower().split()
            if len(words) == 2 and words[1] in ("hair", "eyes"):
                colour = ALIASES.get(words[0], words[0])
                if words[1] == "hair" and colour in HAIR_COLOURS:
                    hairs.add(HAIR_COLOURS.index(colour))
                elif words[1] == "eyes" and colour in EYE_COLOURS:
                    eyes.add(EYE_COLOURS.index(colour))
        if len(hairs) == 1 and len(eyes) == 1:
            rows.append((ident, hairs.pop(), eyes.pop(), n))
        else:
            unusable += 1
    return rows, unusable


def decode_image(data: bytes, size: int = IMAGE_SIZE) -> np.ndarray:
    """JPEG/PNG bytes → (size, size, 3) uint8; raises ValueError on a corrupt file."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            if size and img.size != (size, size):  # size 0: keep as is
                img = img.resize((size, size), Image.BICUBIC)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def _decode_all(folder: Path, fmt: str) -> FaceData:
    if fmt == "2018":
        rows, unusable, image_dir = _read_2018(folder), 0, folder / "images"
    else:
        (rows, unusable), image_dir = _read_2017(folder), folder / "faces"
    if not image_dir.is_dir():
        raise UserError(f"{image_dir}: image folder not found")
    tags_name = "tags.csv" if fmt == "2018" else "tags_clean.csv"
    images, hair, eye, ids = [], [], [], []
    missing, corrupt = [], []
    for ident, h, e, n in rows:
        path = image_dir / f"{ident}.jpg"
        try:
            data = path.read_bytes()
        except OSError:
            missing.append(where(folder / tags_name, n))
            continue
        try:
            images.append(decode_image(data))
        except ValueError as exc:
            corrupt.append(f"{path} ({exc})")
            continue
        hair.append(h)
        eye.append(e)
        ids.append(ident)
    for kind, items in (("image missing for tag line", missing), ("corrupt image skipped", corrupt)):
        for item in items[:5]:
            say(f"warning: {kind}: {item}")
        if len(items) > 5:
            say(f"warning: ... and {len(items) - 5} more ({kind})")
    if not images:
        raise UserError(f"{image_dir}: no usable images for the tag lines in {folder / tags_name}")
    stats = {"lines": len(rows) + unusable, "missing": len(missing), "corrupt": len(corrupt)}
    if fmt == "2017":
        stats["without one hair and one eye colour"] = unusable
    return FaceData(
        np.stack(images), np.asarray(hair, np.int64), np.asarray(eye, np.int64), ids, f"{folder} ({fmt} format)", stats
    )


def _cache_key(folder: Path, fmt: str) -> str:
    # The tags file and the image folder's listing change whenever the data does.
    parts = [str(folder.resolve()), fmt, str(IMAGE_SIZE), str(len(HAIR_COLOURS)), str(len(EYE_COLOURS))]
    for p in (folder / ("tags.csv" if fmt == "2018" else "tags_clean.csv"), folder / "images", folder / "faces"):
        if p.exists():
            stat = p.stat()
            parts += [p.name, str(stat.st_size), str(stat.st_mtime_ns)]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def load_faces(path: str | os.PathLike | None = None, use_cache: bool = True) -> FaceData:
    """Load either format (folder, .zip, or MLDS_DATA when ``path`` is empty), via a decoded-array cache."""
    folder, fmt = locate(path)
    cache = cache_dir(HOMEWORK) / f"faces-{_cache_key(folder, fmt)}.npz"
    if use_cache and cache.is_file():
        try:
            z = np.load(cache, allow_pickle=False)
            stats = dict(zip([str(k) for k in z["stat_keys"]], [int(v) for v in z["stat_values"]]))
            return FaceData(
                z["images"], z["hair"], z["eye"], [str(i) for i in z["ids"]], f"{folder} ({fmt} format)", stats
            )
        except (OSError, KeyError, ValueError):
            say(f"warning: {cache}: unreadable cache, decoding the images again")
    data = _decode_all(folder, fmt)
    if use_cache:
        with atomic_write(cache, "wb") as f:
            np.savez(
                f,
                images=data.images,
                hair=data.hair,
                eye=data.eye,
                ids=np.asarray(data.ids),
                stat_keys=np.asarray(list(data.stats)),
                stat_values=np.asarray(list(data.stats.values())),
            )
    return data


def holdout_mask(ids: list[str], percent: float) -> np.ndarray:
    """True for the ids kept away from the GAN (for the evaluation classifier).

    A hash of the id, not its position, decides, so the split is the same for every run and for
    any subset or reordering of the data.
    """
    return np.array([zlib.crc32(f"hw3:{i}".encode()) % 10000 < percent * 100 for i in ids], dtype=bool)


class Batches:
    """Shuffled batches of the cached uint8 array; the order depends only on (seed, epoch, rank).

    ``balance`` > 0: an epoch draws its images with replacement, each with weight
    count(its hair/eye pair)^-balance, so a pair's share of the batches goes as count^(1 - balance):
    rare pairs are seen more often than their frequency alone would give (0.5: inverse square root).

    ``groups`` > 1: each run of ``groups`` consecutive images shares one hair/eye pair (the first
    drawn as above, the others uniformly from its pair, with replacement). The discriminator's
    minibatch standard deviation, taken over such runs, then sees the spread within one pair, and
    a generator that draws one face per pair can no longer hide behind the batch's mix of pairs.
    """

    def __init__(
        self,
        data: FaceData,
        batch_size: int,
        seed: int,
        rank: int,
        world: int,
        size: int,
        flip: bool,
        balance: float = 0.0,
        groups: int = 0,
    ):
        if groups > 1 and batch_size % groups:
            raise UserError(f"train.batch_size {batch_size} is not a multiple of train.tag_groups {groups}")
        self.data, self.bs, self.seed, self.rank, self.world = data, batch_size, seed, rank, world
        self.groups = groups if groups > 1 else 1
        self.size, self.flip = size, flip
        counts = torch.from_numpy(data.pair_counts())
        pair_size = counts[data.hair, data.eye]  # each image's pair count
        self.weights = pair_size.double() ** -balance if balance > 0 else None
        if self.groups > 1:
            pair = torch.from_numpy(data.hair * counts.shape[1] + data.eye)
            self.by_pair = torch.argsort(pair, stable=True)  # image indices, pair by pair
            self.pair_start = torch.searchsorted(pair[self.by_pair], pair)  # where each image's pair begins there
            self.pair_size = pair_size
        self.images = torch.from_numpy(data.images)
        self.hair, self.eye = torch.from_numpy(data.hair), torch.from_numpy(data.eye)
        self.per_epoch = len(data) // (batch_size * world)
        if self.per_epoch == 0:
            raise UserError(
                f"{data.source}: {len(data)} training images, fewer than one batch of "
                f"{batch_size * world}; lower train.batch_size"
            )

    def epoch(self, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
        n = self.per_epoch * self.bs * self.world
        if self.weights is None:
            order = torch.randperm(len(self.data), generator=g)[:n]
        else:
            order = torch.multinomial(self.weights, n, replacement=True, generator=g)
        if self.groups > 1:
            first = order[:: self.groups]  # each group's first image; the rest are drawn from its pair
            pick = (torch.rand(len(first), self.groups - 1, generator=g) * self.pair_size[first, None]).long()
            mates = self.by_pair[self.pair_start[first, None] + pick]
            order = torch.cat([first[:, None], mates], 1).flatten()
        order = order.view(self.per_epoch, self.world, self.bs)[:, self.rank]
        for idx in order[start:]:
            x = to_tensor(self.images[idx].numpy(), self.size)
            if self.flip:
                flip = torch.rand(len(idx)) < 0.5
                x[flip] = x[flip].flip(-1)
            yield x, self.hair[idx], self.eye[idx]


def to_tensor(images: np.ndarray, size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float (N, 3, size, size) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] → uint8 (N, H, W, 3)."""
    x = (x.detach().float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_grid(
    images: np.ndarray,
    cols: int,
    path: str | os.PathLike,
    pad: int = 2,
    labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> None:
    """uint8 (N, H, W, 3) → one PNG with ``cols`` images per row, written atomically.

    ``labels`` (one per row, e.g. the row's tags) are written in a strip at the left of the rows,
    ``col_labels`` (one per column) in a strip above them.
    """
    n, h, w, _ = images.shape
    rows = (n + cols - 1) // cols
    font = ImageFont.load_default()
    strip = top = 0
    if labels:
        strip = int(max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t, font=font) for t in labels)) + 3 * pad
    if col_labels:
        top = 12 + 2 * pad
    canvas = np.full((top + rows * (h + pad) + pad, strip + cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = strip + pad + c * (w + pad), top + pad + r * (h + pad)
        canvas[y : y + h, x : x + w] = images[i]
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for r, text in enumerate((labels or [])[:rows]):
        draw.text((strip - pad, top + pad + r * (h + pad) + h // 2), text, fill="black", font=font, anchor="rm")
    for c, text in enumerate((col_labels or [])[:cols]):
        draw.text((strip + pad + c * (w + pad) + w // 2, top // 2), text, fill="black", font=font, anchor="mm")
    with atomic_write(path, "wb") as f:
        img.save(f, format="PNG", optimize=True)
