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
from hw2_video_caption import HOMEWORK

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
        raise UserError(f'{path}: expected a JSON list of {{"caption": [...], "id": ...}} objects')
    labels: dict[str, list[str]] = {}
    for i, item in enumerate(data):
        ok = isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("caption"), list)
        if not ok or not all(isinstance(c, str) for c in item["caption"]):
            raise UserError(f'{path}: entry {i} is not {{"caption": [strings], "id": string}}')
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


def _open(path: Path) -> np.ndarray:
    """A memory map of one .npy file (nothing read yet); unreadable files are a UserError."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy feature file ({type(exc).__name__})") from None


def _checked(arr: np.ndarray, path: Path) -> np.ndarray:
    """``arr`` as float32 after the type, shape and finite-value checks that name ``path``."""
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise UserError(f"{path}: feature values are {arr.dtype}, expected real numbers")
    if arr.shape != (FRAMES, FEAT_DIM):
        raise UserError(f"{path}: feature shape {arr.shape}, expected ({FRAMES}, {FEAT_DIM})")
    out = np.array(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise UserError(f"{path}: feature contains NaN or inf")
    return out


def _read_feature(path: Path) -> np.ndarray:
    return _checked(_open(path), path)


class FeatureStore:
    """``(N, 80, 4096)`` float32 features that stay on disk until a batch needs them.

    Indexing with a slice or a list of rows gives another lazy store; ``np.asarray(store)`` reads
    its rows (each file memory-mapped only while it is copied). So training on the course's 1,450
    float64 files (3.8 GB) holds one batch in memory, not the whole set. ``cached`` is one float32
    ``(N, 80, 4096)`` .npy holding all rows, read the same way.
    """

    def __init__(self, paths: Sequence[Path], cached: Path | None = None, rows: np.ndarray | None = None):
        self.paths, self.cached = list(paths), cached
        self.rows = np.arange(len(self.paths)) if rows is None else rows

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.rows), FRAMES, FEAT_DIM)

    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._read(self.rows[[index]])[0]
        return FeatureStore(self.paths, self.cached, self.rows[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._read(self.rows)
        return out if dtype is None else out.astype(dtype)

    def _read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), FRAMES, FEAT_DIM), dtype=np.float32)
        if self.cached is not None:
            out[:] = np.load(self.cached, mmap_mode="r")[rows]  # the map is dropped right after the copy
        else:
            for i, r in enumerate(rows):
                out[i] = _read_feature(self.paths[r])
        return out


def load_features(
    feat_dir: str | os.PathLike, ids: Sequence[str], cache: bool = True, lazy: bool = False
) -> np.ndarray | FeatureStore:
    """``(N, 80, 4096)`` float32 for ``ids``, in order, checked for shape and finite values.

    Eager (``lazy=False``): one in-memory array. Lazy: a :class:`FeatureStore` whose rows are read
    per batch; every file's header is checked now, its values when it is read. With ``cache`` a
    float32 copy of all rows is written once to the git-ignored cache (keyed by paths, sizes and
    mtimes, streamed file by file, so every value is checked then) and read from on later runs.
    """
    feat_dir = Path(feat_dir)
    paths = [feat_dir / f"{vid}.npy" for vid in ids]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        first = ", ".join(missing[:3])
        raise UserError(f"{feat_dir}: {len(missing)} of {len(ids)} feature files missing (first: {first})")
    cached = _feature_cache(paths) if cache else None
    if cached is not None and not cached.is_file():
        with atomic_write(cached, "wb") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": (len(paths), FRAMES, FEAT_DIM)}
            np.lib.format.write_array_header_1_0(f, header)
            for p in paths:
                f.write(_read_feature(p).tobytes())
    if cached is None:
        for p in paths:
            shape = _open(p).shape
            if shape != (FRAMES, FEAT_DIM):
                raise UserError(f"{p}: feature shape {shape}, expected ({FRAMES}, {FEAT_DIM})")
    store = FeatureStore(paths, cached)
    return store if lazy else np.asarray(store)


def mean_frames(feats: np.ndarray | FeatureStore) -> np.ndarray:
    """Mean over frames, ``(N, 80, D) -> (N, D)`` float32, reading 64 videos at a time."""
    out = np.empty((len(feats), feats.shape[-1]), dtype=np.float32)
    for start in range(0, len(feats), 64):
        out[start : start + 64] = np.asarray(feats[start : start + 64]).mean(axis=1)
    return out


def _feature_cache(paths: Sequence[Path]) -> Path:
    key = hashlib.sha1()
    for p in paths:
        st = p.stat()
        key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
    return cache_dir(HOMEWORK, "features") / f"{key.hexdigest()[:20]}.npy"


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
