"""Reading the course's dialogue formats into (query, reply) pairs, tokenising and batching them.

Formats: Cornell raw (``movie_lines.txt`` + ``movie_conversations.txt``), parallel ``.enc``/``.dec``
files, and ``chat.in`` (query and reply on alternating lines). All go through ``common.text`` so
Windows-1252 bytes and CRLF endings are handled once, the same way as in the other homeworks.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.batching import pad_batch
from common.errors import UserError, where
from common.runs import data_root
from common.text import read_lines, squash_spaces, tokenize
from common.vocab import Vocab
from hw4_chatbot.config import DataConfig

SEP = "+++$+++"
# Generic replies (Li et al. 2016's list of dull responses plus the usual suspects of Cornell
# models). Used both by the ease-of-answering reward and by the dull-reply-rate metric.
DULL_REPLIES = (
    "i don't know .",
    "i don't know what you're talking about .",
    "i don't know what you mean .",
    "you don't know .",
    "you know what i mean .",
    "i know what you mean .",
    "you know what i'm saying .",
    "you don't know anything .",
    "i'm not sure .",
    "i don't think so .",
    "i'm sorry .",
    "i know .",
    "what ?",
    "nothing .",
    "i don't know , i don't know .",
)
SOURCES = {
    "cornell_pairs": "hw4/cornell_pairs",
    "cornell": "hw4/cornell",
    "opensubtitles": "hw4/opensubtitles/chat.in",
    "movie_subtitles": "hw4/movie_subtitles/chat.in",
}


def normalize(text: str) -> list[str]:
    """The one tokenisation used for training, prediction and metrics (lowercased words + punctuation)."""
    return tokenize(squash_spaces(text))


def read_parallel(enc: str | os.PathLike, dec: str | os.PathLike) -> list[tuple[str, str]]:
    """``.enc`` line i is the query that ``.dec`` line i answers."""
    queries, replies = read_lines(enc), read_lines(dec)
    if len(queries) != len(replies):
        raise UserError(f"{enc}: {len(queries)} lines but {dec} has {len(replies)}; they must align")
    return list(zip(queries, replies))


def read_alternating(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``chat.in``: line 2k is a query, line 2k+1 its reply; an odd last line has no reply and is dropped."""
    lines = read_lines(path)
    return [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]


def read_cornell(folder: str | os.PathLike) -> list[tuple[str, str]]:
    """Adjacent utterances of every conversation become (query, reply) pairs."""
    folder = Path(folder)
    lines_path, conv_path = folder / "movie_lines.txt", folder / "movie_conversations.txt"
    text: dict[str, str] = {}
    for n, line in enumerate(read_lines(lines_path), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(SEP)]
        if len(fields) != 5:
            raise UserError(f"{where(lines_path, n)}: expected 5 fields separated by '{SEP}', got {len(fields)}")
        text[fields[0]] = fields[4]
    pairs = []
    for n, line in enumerate(read_lines(conv_path), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(SEP)]
        try:
            ids = ast.literal_eval(fields[3]) if len(fields) == 4 else None
        except (ValueError, SyntaxError):
            ids = None
        if not isinstance(ids, list):
            raise UserError(f"{where(conv_path, n)}: expected 4 fields ending in a list of line ids")
        missing = [i for i in ids if i not in text]
        if missing:
            raise UserError(f"{where(conv_path, n)}: line id {missing[0]} is not in {lines_path.name}")
        pairs += [(text[a], text[b]) for a, b in zip(ids, ids[1:])]
    return pairs


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Any of the formats, told apart by what the path holds."""
    path = Path(path)
    if path.is_dir():
        if (path / "movie_conversations.txt").exists():
            return read_cornell(path)
        encs = sorted(path.glob("*.enc"))
        if encs:
            return read_parallel(encs[0], encs[0].with_suffix(".dec"))
        if (path / "chat.in").exists():
            return read_alternating(path / "chat.in")
        raise UserError(f"{path}: no movie_conversations.txt, *.enc/*.dec or chat.in here")
    if path.suffix == ".enc":
        return read_parallel(path, path.with_suffix(".dec"))
    if not path.exists():
        raise UserError(f"{path}: data file not found")
    return read_alternating(path)


def source_path(cfg: DataConfig) -> Path:
    if cfg.path:
        return Path(cfg.path)
    if cfg.source not in SOURCES:
        raise UserError(f"data.source '{cfg.source}' unknown (use {', '.join(SOURCES)} or set data.path)")
    return data_root(required=True) / SOURCES[cfg.source]


def tokenize_pairs(pairs: list[tuple[str, str]], cfg: DataConfig) -> list[tuple[list[str], list[str]]]:
    """Tokenise, drop pairs with an empty side, keep the end of long queries and the start of long replies."""
    out = []
    for q, r in pairs:
        qt, rt = normalize(q), normalize(r)
        if cfg.reverse:
            qt, rt = rt, qt
        if qt and rt:
            out.append((qt[-cfg.max_query_len :], rt[: cfg.max_reply_len]))
    return out


def split(items: list, cfg: DataConfig) -> tuple[list, list, list]:
    """A seeded train / valid / test split (the same one for the forward and the backward model)."""
    order = np.random.default_rng(cfg.split_seed).permutation(len(items))
    n_valid = max(1, int(len(items) * cfg.valid_fraction))
    n_test = max(1, int(len(items) * cfg.test_fraction))
    pick = lambda idx: [items[i] for i in idx]  # noqa: E731
    return pick(order[n_valid + n_test :]), pick(order[:n_valid]), pick(order[n_valid : n_valid + n_test])


def build_vocab(pairs: list[tuple[list[str], list[str]]], cfg: DataConfig) -> Vocab:
    return Vocab.build((t for q, r in pairs for t in q + r), min_freq=cfg.min_freq, max_size=cfg.vocab_size)


@dataclass
class Splits:
    train: list[tuple[list[str], list[str]]]
    valid: list[tuple[list[str], list[str]]]
    test: list[tuple[list[str], list[str]]]


def load_splits(cfg: DataConfig) -> Splits:
    pairs = read_pairs(source_path(cfg))
    if cfg.limit:
        pairs = pairs[: cfg.limit]
    tokens = tokenize_pairs(pairs, cfg)
    if len(tokens) < 3:
        raise UserError(f"{source_path(cfg)}: only {len(tokens)} usable (query, reply) pairs")
    return Splits(*split(tokens, cfg))


def encode_query(vocab: Vocab, tokens: list[str], max_len: int) -> list[int]:
    """Query ids end in ``<eos>``, so even an empty query is a sequence of length 1."""
    return vocab.encode(tokens[-max_len:] if max_len else tokens, eos=True)


class PairBatches:
    """Id-encoded pairs and their batches: ``src (B,S)``, ``src_len``, ``tgt_in``/``tgt_out (B,T)``."""

    def __init__(self, pairs: list[tuple[list[str], list[str]]], vocab: Vocab, max_query_len: int = 20):
        self.vocab = vocab
        self.src = [encode_query(vocab, q, max_query_len) for q, _ in pairs]
        self.tgt = [vocab.encode(r, bos=True, eos=True) for _, r in pairs]

    def __len__(self) -> int:
        return len(self.src)

    def lengths(self) -> list[int]:
        return [len(s) + len(t) for s, t in zip(self.src, self.tgt)]

    def batch(self, idx: list[int], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        src, src_len = pad_batch([self.src[i] for i in idx], self.vocab.pad_id)
        tgt, _ = pad_batch([self.tgt[i] for i in idx], self.vocab.pad_id)
        return {
            "src": src.to(device),
            "src_len": src_len,
            "tgt_in": tgt[:, :-1].to(device),
            "tgt_out": tgt[:, 1:].to(device),
        }
