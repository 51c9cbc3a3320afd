"""Interpolated modified Kneser-Ney n-gram model (Chen & Goodman 1998) in numpy.

An n-gram of word ids (each < 2**16) is packed into one uint64 key, first word in the high bits,
so every table is a sorted key array searched with ``np.searchsorted`` and a context's n-grams
are one contiguous run of it. Orders up to 4.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say

BITS = 16
MAX_ORDER = 4


def pack(ids: np.ndarray, k: int) -> np.ndarray:
    """Keys of every k-gram of ``ids`` (length ``len(ids) - k + 1``)."""
    ids = np.asarray(ids, dtype=np.uint64)
    n = len(ids) - k + 1
    key = np.zeros(max(n, 0), dtype=np.uint64)
    for j in range(k):
        key = (key << np.uint64(BITS)) | ids[j : j + n]
    return key


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Modified KN discounts D1, D2, D3+ from the count-of-counts n1..n4."""
    n = np.bincount(np.minimum(counts, 5).astype(np.int64), minlength=6)[1:5].astype(np.float64)
    n = np.maximum(n, 1.0)
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    return np.clip(d, 0.05, np.array([1.0, 2.0, 3.0]))


def _discount(counts: np.ndarray, d: np.ndarray) -> np.ndarray:
    return np.where(counts == 0, 0.0, d[np.clip(counts, 1, 3).astype(np.int64) - 1])


class KneserNey:
    """``order``-gram model; ``logprob(ids, targets)`` gives natural-log probabilities."""

    def __init__(self, order: int, vocab_size: int, tables: dict[str, np.ndarray]):
        # keys{k}/counts{k}: the sorted k-gram keys and their counts; d{k}: discounts; ctx{k}, total{k},
        # gamma{k}: each (k-1)-word context, its total count and its back-off weight
        self.order, self.vocab_size, self.tables = order, vocab_size, tables

    @classmethod
    def build(cls, ids: np.ndarray, order: int, vocab_size: int) -> KneserNey:
        if not 1 <= order <= MAX_ORDER:
            raise UserError(f"n-gram order must be 1..{MAX_ORDER}, got {order}")
        if vocab_size > 2**BITS:
            raise UserError(f"vocabulary of {vocab_size} does not fit the n-gram's {BITS}-bit ids")
        tables: dict[str, np.ndarray] = {}
        keys, counts = np.unique(pack(ids, order), return_counts=True)
        for k in range(order, 0, -1):
            tables[f"keys{k}"], tables[f"counts{k}"] = keys, counts.astype(np.int32)
            d = _discounts(counts)
            tables[f"d{k}"] = d
            if k > 1:
                ctx = keys >> np.uint64(BITS)
                starts = np.flatnonzero(np.r_[True, ctx[1:] != ctx[:-1]])
                tables[f"ctx{k}"] = ctx[starts]
                tables[f"total{k}"] = np.add.reduceat(counts, starts).astype(np.float64)
                tables[f"gamma{k}"] = sum(
                    d[i] * np.add.reduceat((np.minimum(counts, 3) == i + 1).astype(np.int64), starts) for i in range(3)
                ).astype(np.float64)
                # lower order: continuation counts = distinct left extensions of each (k-1)-gram
                suffix = keys & np.uint64(2 ** (BITS * (k - 1)) - 1)
                keys, counts = np.unique(suffix, return_counts=True)
            else:
                tables["total1"] = np.array([counts.sum()], dtype=np.float64)
                tables["gamma1"] = np.array([sum(d[i] * np.sum(np.minimum(counts, 3) == i + 1) for i in range(3))])
        return cls(order, vocab_size, tables)

    def logprob(self, history: np.ndarray, hist_len: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``log p(target | history)``; ``history`` (M, order-1) ids, last column = previous word,
        ``hist_len`` (M,) how many of those columns are real (at a sentence start, fewer)."""
        tables, target = self.tables, np.asarray(target, dtype=np.uint64)
        c1 = self._lookup(tables["keys1"], tables["counts1"], target)
        unigram = np.maximum(c1 - _discount(c1, tables["d1"]), 0) + tables["gamma1"][0] / self.vocab_size
        p = unigram / tables["total1"][0]
        history = np.asarray(history, dtype=np.uint64)
        for k in range(2, self.order + 1):
            h = np.zeros(len(target), dtype=np.uint64)
            for col in range(self.order - k + 1, self.order):
                h = (h << np.uint64(BITS)) | history[:, col - 1]
            idx = np.searchsorted(tables[f"ctx{k}"], h)
            idx = np.minimum(idx, len(tables[f"ctx{k}"]) - 1)
            seen = (tables[f"ctx{k}"][idx] == h) & (hist_len >= k - 1)
            c = self._lookup(tables[f"keys{k}"], tables[f"counts{k}"], (h << np.uint64(BITS)) | target)
            num = np.maximum(c - _discount(c, tables[f"d{k}"]), 0) + tables[f"gamma{k}"][idx] * p
            p = np.where(seen, num / tables[f"total{k}"][idx], p)
        return np.log(p)

    @staticmethod
    def _lookup(keys: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
        idx = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(keys[idx] == query, counts[idx], 0).astype(np.float64)

    def sentence_logprob(self, sentences: list[list[int]], eos_id: int) -> np.ndarray:
        """Sum of log-probabilities of each sentence's words and its closing ``<eos>``, after ``<eos>``."""
        n = self.order - 1
        hist, hlen, tgt, owner = [], [], [], []
        for s, ids in enumerate(sentences):
            seq = [eos_id] + list(ids) + [eos_id]
            for i in range(1, len(seq)):
                ctx = seq[max(0, i - n) : i]
                hist.append([0] * (n - len(ctx)) + ctx)
                hlen.append(len(ctx))
                tgt.append(seq[i])
                owner.append(s)
        lp = self.logprob(np.array(hist, dtype=np.int64).reshape(len(tgt), n), np.array(hlen), np.array(tgt))
        return np.bincount(np.array(owner), weights=lp, minlength=len(sentences))

    def save(self, path: str | os.PathLike, itos: list[str], unk_types: int) -> None:
        """Save with the vocabulary it was counted over, so the file scores text on its own."""
        with atomic_write(path, "wb") as f:
            np.savez(
                f, order=self.order, vocab_size=self.vocab_size, itos=np.array(itos), unk_types=unk_types, **self.tables
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[KneserNey, list[str], int]:
        """The model, its vocabulary (id -> word) and the number of word types folded into <unk>."""
        path = Path(path)
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            order, size = int(arrays.pop("order")), int(arrays.pop("vocab_size"))
            itos, unk_types = arrays.pop("itos").tolist(), int(arrays.pop("unk_types"))
        except Exception as exc:  # numpy raises many kinds for truncated or foreign files
            raise UserError(f"{path}: not a readable n-gram model ({type(exc).__name__})") from None
        return cls(order, size, arrays), itos, unk_types


def _main(args: argparse.Namespace) -> int:
    from hw1_cloze.prepare import default_source, prepare_corpus

    source = args.corpus or default_source()
    if source is None:
        raise UserError("no corpus given and MLDS_DATA is not set")
    check_outputs([args.out], [source])
    corpus = prepare_corpus(source, args.max_vocab, args.min_freq, quiet=args.quiet)
    train_ids, _ = corpus.split(args.valid_tokens)
    start = time.time()
    model = KneserNey.build(np.asarray(train_ids), args.order, len(corpus.vocab))
    model.save(args.out, corpus.vocab.itos, corpus.meta["unk_types"])
    say(
        f"{args.order}-gram Kneser-Ney over {len(train_ids):,} tokens built in {time.time() - start:.1f} s: {args.out}",
        args.quiet,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from hw1_cloze.prepare import add_corpus_args

    p = argparse.ArgumentParser(prog="python -m hw1_cloze.ngram", description=__doc__.splitlines()[0])
    p.add_argument("corpus", nargs="?", help="folder of .TXT novels or the .tar.xz (default: $MLDS_DATA/hw1/...)")
    p.add_argument("--order", type=int, default=4, help=f"n-gram order, 1..{MAX_ORDER}")
    p.add_argument("--out", required=True, help="where to write the model (.npz)")
    p.add_argument(
        "--valid-tokens",
        type=int,
        default=200000,
        help="tokens held out at the end, as in training (keep equal to data.valid_tokens)",
    )
    add_corpus_args(p)
    p.add_argument("--quiet", action="store_true")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
