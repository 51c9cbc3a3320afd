"""Reading the course files: label JSON, id lists, (80, 4096) feature files, caption outputs.

Course layout of ``data_dir``: ``training_data/feat/<id>.npy``, ``testing_data/feat/<id>.npy``,
``training_label.json``, ``testing_label.json``, ``testing_id.txt`` and, when present,
``peer_review_id.txt`` + ``peer_review/feat/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from common.errors import UserError, where
from common.files import atomic_write
from common.runs import cache_dir, data_root, unpack
from common.text import read_lines, read_text
from common.vocab import Vocab

FRAMES, FEAT_DIM = 80, 4096
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")

# Where each split's features and id list live inside the course folder.
SPLITS = {
    "training": ("training_data/feat", "training_label.json"),
    "testing": ("testing_data/feat", "testing_id.txt"),
    "peer_review": ("peer_review/feat", "peer_review_id.txt"),
}


def normalize_caption(text: str) -> list[str]:
    """Lowercase words without punctuation: "A man's dog, running." -> [a, man's, dog, running]."""
    return _WORD.findall(text.lower().replace("’", "'"))


def course_data_dir() -> Path | None:
    """The unpacked real ``MLDS_hw2_data`` folder when ``MLDS_DATA`` is set, else ``None``."""
    root = data_root()
    if root is None:
        return None
    archive = root.resolve() / "hw2" / "MLDS_hw2_data.tar.gz"
    return unpack(archive) / "MLDS_hw2_data"


def load_labels(path: str | os.PathLike) -> dict[str, list[str]]:
    """``{id: [caption, ...]}`` from a course label JSON; any malformed entry is a UserError."""
    path = Path(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of {{\"caption\": [...], \"id\": ...}} objects")
    labels: dict[str, list[str]] = {}
    for i, item in enumerate(data):
        ok = isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("caption"), list)
        if not ok or not all(isinstance(c, str) for c in item["caption"]):
            raise UserError(f"{path}: entry {i} is not {{\"caption\": [strings], \"id\": string}}")
        if item["id"] in labels:
            raise UserError(f"{path}: entry {i} repeats id {item['id']}")
        if not item["caption"]:
            raise UserError(f"{path}: entry {i} (id {item['id']}) has no captions")
        labels[item["id"]] = item["caption"]
    return labels


def read_ids(path: str | os.PathLike) -> list[str]:
    """One video id per line (blank lines skipped); a repeated id is an error naming its line."""
    ids, seen = [], {}
    for n, line in enumerate(read_lines(path), 1):
        vid = line.strip()
        if not vid:
            continue
        if vid in seen:
            raise UserError(f"{where(path, n)}: id {vid} repeats line {seen[vid]}")
        if "," in vid or " " in vid:
            raise UserError(f"{where(path, n)}: '{vid}' is not a video id")
        seen[vid] = n
        ids.append(vid)
    return ids


def read_captions(path: str | os.PathLike) -> dict[str, str]:
    """``id,caption`` lines (the predict output) as ``{id: caption}``."""
    out: dict[str, str] = {}
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        vid, sep, caption = line.partition(",")
        if not sep or not vid.strip():
            raise UserError(f"{where(path, n)}: expected 'id,caption'")
        if vid.strip() in out:
            raise UserError(f"{where(path, n)}: id {vid.strip()} appears twice")
        out[vid.strip()] = caption.strip()
    return out


def write_captions(path: str | os.PathLike, captions: Sequence[tuple[str, str]]) -> None:
    """``id,caption`` lines, written atomically (no partial file on failure)."""
    with atomic_write(path) as f:
        for vid, caption in captions:
            f.write(f"{vid},{caption}\n")


def _read_feature(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy feature file ({type(exc).__name__})") from None
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise UserError(f"{path}: feature values are {arr.dtype}, expected real numbers")
    if arr.shape != (FRAMES, FEAT_DIM):
        raise UserError(f"{path}: feature shape {arr.shape}, expected ({FRAMES}, {FEAT_DIM})")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise UserError(f"{path}: feature contains NaN or inf")
    return arr


def load_features(feat_dir: str | os.PathLike, ids: Sequence[str], cache: bool = True) -> np.ndarray:
    """``(N, 80, 4096)`` float32 for ``ids``, in order, checked for shape and finite values.

    All files are read into one array so an epoch never touches the disk. With ``cache`` the
    float32 array is kept in the git-ignored cache (keyed by paths, sizes and mtimes) and opened
    memory-mapped next time: the course's 1,450 float64 files are 3.8 GB to parse.
    """
    feat_dir = Path(feat_dir)
    paths = [feat_dir / f"{vid}.npy" for vid in ids]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        first = ", ".join(missing[:3])
        raise UserError(f"{feat_dir}: {len(missing)} of {len(ids)} feature files missing (first: {first})")
    key = hashlib.sha1()
    for p in paths:
        st = p.stat()
        key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
    cached = cache_dir("hw2_video_caption", "features") / f"{key.hexdigest()[:20]}.npy" if cache else None
    if cached is not None and cached.is_file():
        return np.load(cached, mmap_mode="r")
    out = np.empty((len(ids), FRAMES, FEAT_DIM), dtype=np.float32)
    for i, p in enumerate(paths):
        out[i] = _read_feature(p)
    if cached is not None:
        with atomic_write(cached, "wb") as f:
            np.save(f, out)
    return out


def available_ids(feat_dir: str | os.PathLike, ids: Iterable[str]) -> list[str]:
    """The ids whose feature file exists (for partial copies of the course data, like this one)."""
    return [v for v in ids if (Path(feat_dir) / f"{v}.npy").is_file()]


def split_ids(data_dir: str | os.PathLike, split: str) -> tuple[Path, list[str]]:
    """(feature folder, ids) of a split; training ids come from its label file."""
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}' (use {', '.join(SPLITS)})")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: data folder not found")
    feat, id_file = SPLITS[split]
    if id_file.endswith(".json"):
        ids = list(load_labels(data_dir / id_file))
    else:
        ids = read_ids(data_dir / id_file)
    if not ids:
        raise UserError(f"{data_dir / id_file}: no video ids")
    return data_dir / feat, ids


def build_vocab(captions: Iterable[str], min_count: int) -> Vocab:
    counts = Counter(w for c in captions for w in normalize_caption(c))
    return Vocab.build(counts, min_freq=min_count)


class CaptionSet:
    """Videos with encoded captions; ``sample(rng, k)`` draws ``k`` captions per video for one epoch."""

    def __init__(self, feats: np.ndarray, captions: Sequence[Sequence[str]], vocab: Vocab, max_len: int):
        self.feats = feats
        self.vocab = vocab
        self.encoded: list[list[list[int]]] = []
        for caps in captions:
            enc = [vocab.encode(normalize_caption(c))[: max_len - 1] for c in caps]
            enc = [e for e in enc if e] or [[vocab.unk_id]]
            self.encoded.append(enc)

    def __len__(self) -> int:
        return len(self.encoded)

    def sample(self, rng: np.random.Generator, per_video: int) -> list[tuple[int, list[int]]]:
        """(video index, caption ids) pairs, ``per_video`` distinct captions (if it has that many)."""
        pairs = []
        for i, caps in enumerate(self.encoded):
            pick = rng.choice(len(caps), size=min(per_video, len(caps)), replace=False)
            pairs.extend((i, caps[j]) for j in pick)
        rng.shuffle(pairs)
        return pairs
