"""Tokenise the Holmes corpus once into a cache of uint32 ids: ``python -m hw1_cloze.prepare``.

Reads a folder of ``.TXT`` novels or the course's ``.tar.xz`` directly, on every free core. The
cache key is a hash of the input files' names and sizes and of the settings, so a changed
setting never reuses stale ids.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.device import free_cores
from common.errors import UserError, run_cli
from common.files import atomic_write
from common.metrics import progress, say
from common.runs import cache_dir, data_root
from common.text import decode_bytes
from common.vocab import EOS, Vocab
from hw1_cloze import HOMEWORK
from hw1_cloze.data import corpus_tokens

if TYPE_CHECKING:
    from hw1_cloze.config import DataConfig

TOKENIZER_VERSION = 2


@dataclass
class Corpus:
    ids: np.ndarray  # (N,) uint32 token ids, novels in name order, sentences ended by <eos>
    vocab: Vocab
    meta: dict  # files, tokens, unk_types (words folded into <unk>), seconds

    def split(self, valid_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """Training stream and the held-out slice at its end (the last novels)."""
        if valid_tokens >= len(self.ids) // 2:
            valid_tokens = len(self.ids) // 10
        return self.ids[:-valid_tokens], self.ids[-valid_tokens:]


def default_source() -> Path | None:
    root = data_root()
    return root / "hw1" / "Holmes_Training_Data.tar.xz" if root else None


def load_corpus(cfg: DataConfig, quiet: bool = False) -> Corpus:
    """The prepared corpus a run's ``data`` section names (or ``$MLDS_DATA``'s novels)."""
    source = cfg.corpus or default_source()
    if not source:
        raise UserError("data.corpus is empty and MLDS_DATA is not set: say where the Holmes novels are")
    return prepare_corpus(source, cfg.max_vocab, cfg.min_freq, quiet=quiet)


def _iter_novels(source: Path) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of each ``.TXT`` novel, from a folder or a tar archive (in archive order:
    seeking backwards in a compressed stream would decompress it again from the start)."""
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.suffix.lower() == ".txt"):
            yield path.name, path.read_bytes()
        return
    try:
        with tarfile.open(source) as tf:
            for m in tf:
                if m.isfile() and m.name.lower().endswith(".txt"):
                    yield Path(m.name).name, tf.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"{source}: not a folder of novels nor a readable tar archive ({exc})") from None


def _list_inputs(source: Path) -> list[tuple[str, int]]:
    if source.is_dir():
        return sorted((p.name, p.stat().st_size) for p in source.rglob("*") if p.suffix.lower() == ".txt")
    return [(source.name, source.stat().st_size)]


def _tokenise_novel(item: tuple[str, bytes]) -> tuple[str, list[str], np.ndarray]:
    """A novel's tokens as (its own small vocabulary, local ids): cheap to send between processes."""
    name, raw = item
    local: dict[str, int] = {EOS: 0}
    ids = [local.setdefault(t, len(local)) for t in corpus_tokens(decode_bytes(raw, name))]
    return name, list(local), np.asarray(ids, dtype=np.uint32)


def cache_key(source: Path, max_vocab: int, min_freq: int) -> str:
    blob = json.dumps([_list_inputs(source), max_vocab, min_freq, TOKENIZER_VERSION])
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def prepare_corpus(
    source: str | os.PathLike, max_vocab: int = 50000, min_freq: int = 1, workers: int = 0, quiet: bool = False
) -> Corpus:
    """Tokenise ``source`` (or load it from the cache) into ids over a ``max_vocab`` vocabulary."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: corpus not found (a folder of .TXT novels or Holmes_Training_Data.tar.xz)")
    if max_vocab >= 2**16:
        raise UserError(f"max_vocab {max_vocab} too large: the n-gram model packs ids into 16 bits")
    folder = cache_dir(HOMEWORK, cache_key(source, max_vocab, min_freq))
    if (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        return Corpus(np.load(folder / "ids.npy", mmap_mode="r"), Vocab.load(folder / "vocab.json"), meta)

    start = time.time()
    workers = workers or free_cores()
    novels: list[tuple[str, list[str], np.ndarray]] = []
    with get_context("fork").Pool(workers) as pool:
        bar = progress(
            total=len(_list_inputs(source)) if source.is_dir() else None, desc="tokenising", unit="novel", quiet=quiet
        )
        for result in pool.imap(_tokenise_novel, _iter_novels(source), chunksize=2):
            novels.append(result)
            bar.update()
        bar.close()
    if not novels:
        raise UserError(f"{source}: no .TXT novels found")
    novels.sort(key=lambda novel: novel[0])  # the same stream whatever the archive's order
    counts: Counter = Counter()
    for _, words, ids in novels:
        counts.update(dict(zip(words, np.bincount(ids, minlength=len(words)).tolist())))
    vocab = Vocab.build(counts, min_freq=min_freq, max_size=max_vocab)
    parts = [np.asarray([vocab.id(w) for w in words], dtype=np.uint32)[ids] for _, words, ids in novels]
    all_ids = np.concatenate(parts)
    unk_types = sum(1 for w in counts if w not in vocab)
    meta = {
        "novels": len(novels),
        "tokens": int(len(all_ids)),
        "vocab": len(vocab),
        "unk_types": unk_types,
        "unk_tokens": int(np.sum(all_ids == vocab.unk_id)),
        "seconds": round(time.time() - start, 1),
        "source": str(source),
    }
    with atomic_write(folder / "ids.npy", "wb") as f:
        np.save(f, all_ids)
    vocab.save(folder / "vocab.json")
    with atomic_write(folder / "meta.json") as f:  # written last: marks the cache complete
        json.dump(meta, f, indent=1)
    return Corpus(all_ids, vocab, meta)


def _main(args: argparse.Namespace) -> int:
    source = args.corpus or default_source()
    if source is None:
        raise UserError("no corpus given and MLDS_DATA is not set")
    corpus = prepare_corpus(source, args.max_vocab, args.min_freq, args.workers, args.quiet)
    m = corpus.meta
    say(
        f"{m['novels']} novels, {m['tokens']:,} tokens, vocabulary {m['vocab']:,} "
        f"({m['unk_types']:,} rarer word types folded into <unk>), prepared in {m['seconds']} s"
    )
    return 0


def add_corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-vocab", type=int, default=50000, help="vocabulary size, specials included")
    p.add_argument("--min-freq", type=int, default=1, help="drop words seen fewer times")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw1_cloze.prepare", description=__doc__)
    p.add_argument("corpus", nargs="?", help="folder of .TXT novels or the .tar.xz (default: $MLDS_DATA/hw1/...)")
    add_corpus_args(p)
    p.add_argument("--workers", type=int, default=0, help="processes (default: free cores)")
    p.add_argument("--quiet", action="store_true")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
