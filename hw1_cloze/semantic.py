"""A global-coherence scorer: a skip-gram scored as Mikolov et al. (2013) scored it on this test.

    python -m hw1_cloze.semantic --config hw1_cloze/configs/semantic.yaml --out runs/hw1_cloze/skipgram.npz

Training is gensim's Word2Vec (a C-speed skip-gram with hierarchical softmax) over the prepared
corpus's cached ids, so nothing is tokenised twice. Scoring puts each candidate at the input and
sums the log-probabilities of every other word of the sentence, as the paper did, here weighted
towards rare words near the blank (``SkipGramScorer``): the candidate must explain the whole
sentence, which is what an n-gram's few words of context cannot judge. The word vectors also
start the LSTMs' embeddings (``train.init_vectors``).
The saved ``.npz`` holds the input vectors, the output (inner-node) vectors and every word's
Huffman path, so scoring needs numpy only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.cli import model_file_parser
from common.config import RunConfig, config_to_dict, load_config
from common.errors import UserError, run_cli
from common.files import atomic_write
from common.metrics import say
from common.vocab import Vocab
from hw1_cloze.config import DataConfig
from hw1_cloze.prepare import load_corpus


@dataclass
class SkipGramConfig:
    dim: int = 200
    window: int = 10
    epochs: int = 10
    sample: float = 1e-4  # frequent-word subsampling threshold (Mikolov et al. 2013 used 1e-3)
    alpha: float = 0.025
    workers: int = 2  # gensim threads
    words_only: bool = True  # drop punctuation from training and from the scored context


@dataclass
class SemanticConfig(RunConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: SkipGramConfig = field(default_factory=SkipGramConfig)


def keep_mask(itos: Sequence[str], words_only: bool) -> np.ndarray:
    """Which vocabulary ids the skip-gram trains on and scores: words, not specials (or punctuation)."""
    keep = np.array([not (t.startswith("<") and t.endswith(">")) for t in itos])
    if words_only:
        keep &= np.array([any(c.isalnum() for c in t) for t in itos])
    return keep


class Sentences:
    """Re-iterable sentences of word strings cut at ``<eos>``, for gensim's several epochs."""

    def __init__(self, ids: np.ndarray, itos: Sequence[str], eos_id: int, keep: np.ndarray):
        self.ids, self.words, self.eos_id = ids, np.array(itos, dtype=object), eos_id
        self.keep = keep

    def __iter__(self) -> Iterator[list[str]]:
        chunk = 1_000_000
        tail = np.zeros(0, dtype=self.ids.dtype)
        for start in range(0, len(self.ids), chunk):
            block = np.concatenate([tail, np.asarray(self.ids[start : start + chunk])])
            ends = np.flatnonzero(block == self.eos_id)
            if len(ends) == 0:
                tail = block
                continue
            for sent in np.split(block[: ends[-1]], ends[:-1] + 1):
                sent = sent[self.keep[sent]]
                if len(sent) > 1:
                    yield self.words[sent].tolist()
            tail = block[ends[-1] + 1 :]


def train_skipgram(ids: np.ndarray, vocab: Vocab, cfg: SkipGramConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Train on ``ids`` and return the arrays a :class:`SkipGramScorer` needs, indexed by vocabulary id."""
    from gensim.models import Word2Vec  # only training needs gensim

    keep = keep_mask(vocab.itos, cfg.words_only)
    counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=len(vocab))
    freq = {vocab.itos[i]: int(c) for i, c in enumerate(counts) if keep[i] and c > 0}
    model = Word2Vec(
        vector_size=cfg.dim,
        window=cfg.window,
        sg=1,
        hs=1,
        negative=0,
        sample=cfg.sample,
        alpha=cfg.alpha,
        min_count=1,
        workers=cfg.workers,
        seed=seed,
    )
    model.build_vocab_from_freq(freq)
    sentences = Sentences(ids, vocab.itos, vocab.eos_id, keep)
    model.train(sentences, total_words=int(sum(freq.values())), epochs=cfg.epochs)
    return export(model, vocab.itos)


def export(model, itos: Sequence[str]) -> dict[str, np.ndarray]:
    """Input vectors, inner-node vectors and Huffman paths (points, codes; -1 pads), by vocabulary id."""
    wv = model.wv
    depth = max(len(wv.get_vecattr(w, "code")) for w in wv.index_to_key)
    vectors = np.zeros((len(itos), model.vector_size), dtype=np.float32)
    points = np.full((len(itos), depth), -1, dtype=np.int32)
    codes = np.zeros((len(itos), depth), dtype=np.int8)
    known = np.zeros(len(itos), dtype=bool)
    for i, w in enumerate(itos):
        if w in wv.key_to_index:
            code = wv.get_vecattr(w, "code")
            vectors[i], known[i] = wv[w], True
            points[i, : len(code)] = wv.get_vecattr(w, "point")
            codes[i, : len(code)] = code
    return {
        "vectors": vectors,
        "nodes": model.syn1.astype(np.float32),
        "points": points,
        "codes": codes,
        "known": known,
    }


def save_model(
    path: str | os.PathLike, arrays: dict[str, np.ndarray], itos: Sequence[str], unk_types: int, config: dict
) -> None:
    import yaml

    with atomic_write(path, "wb") as f:
        np.savez(f, itos=np.array(itos), unk_types=unk_types, config=yaml.safe_dump(config), **arrays)


def pretrained_rows(
    path: str | os.PathLike, itos: Sequence[str], width: int, rms: float
) -> tuple[np.ndarray, np.ndarray]:
    """A skip-gram's input vectors for the words of ``itos`` it knows, to start an embedding table with.

    Returns the vocabulary ids found and their vectors, at most ``width`` columns, scaled to root
    mean square ``rms`` so they fit the table's own initial scale. Words are matched by spelling,
    so the two vocabularies need not be the same.
    """
    try:
        with np.load(path) as z:
            words, vectors, known = z["itos"].tolist(), z["vectors"], z["known"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not a readable skip-gram model ({type(exc).__name__})") from None
    row_of = {w: i for i, w in enumerate(words) if known[i]}
    ids = np.array([i for i, w in enumerate(itos) if w in row_of], dtype=np.int64)
    rows = vectors[[row_of[itos[i]] for i in ids], :width].astype(np.float32)
    if len(rows):
        rows *= rms / max(float(np.sqrt((rows**2).mean())), 1e-12)
    return ids, rows


def blank_span(options: Sequence[Sequence[int]]) -> tuple[int, int]:
    """How many tokens a question's five filled-in sentences share before the blank and after it."""
    shortest = min(len(o) for o in options)
    pre = next((i for i in range(shortest) if len({o[i] for o in options}) > 1), shortest)
    suf = next((i for i in range(shortest - pre) if len({o[-1 - i] for o in options}) > 1), shortest - pre)
    return pre, suf


def blank_parts(options: Sequence[Sequence[int]]) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """A question's five filled-in sentences (ids) split into what they share and where they differ.

    Returns the context, (id, distance from the blank) for every shared token (1 = next to it), and
    each option's candidate tokens (several when an option is more than one word).
    """
    pre, suf = blank_span(options)
    first = options[0]
    right = len(first) - suf  # where the right context starts
    places = [(w, pre - i) for i, w in enumerate(first[:pre])]
    places += [(w, i - right + 1) for i, w in enumerate(first[right:], right)]
    return places, [list(o[pre : len(o) - suf]) for o in options]


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


class SkipGramScorer:
    """Scores each question's five filled-in sentences by log p(context | candidate) under the skip-gram.

    ``score`` takes sentences five at a time (question-major, as ``candidate_sentences`` gives them):
    the tokens the five share are the context, the tokens where they differ are the candidate. A
    candidate the skip-gram never saw gets the zero vector (every branch 1/2): it knows nothing.

    Each context word's log-probability is weighted by its rarity (its Huffman code length, about
    -log2 of its frequency) over (1 + its distance from the blank) ** ``distance_power``: a rare
    word next to the blank says more about what fits than "the" at the far end of the sentence.
    The power 0.5 was chosen on dev questions (grid 0 to 2 in steps of 0.25, with and without the
    rarity factor; ``benchmarks/hw1_cloze.py --distance-grid``); ``rarity=False`` and
    ``distance_power=0`` give the plain sum Mikolov et al. used.
    """

    def __init__(self, path: str | os.PathLike, distance_power: float = 0.5, rarity: bool = True):
        self.distance_power, self.rarity = distance_power, rarity
        path = Path(path)
        try:
            with np.load(path) as z:
                a = {k: z[k] for k in z.files}
            self.vocab = Vocab(a.pop("itos").tolist())
            self.unk_types = int(a.pop("unk_types"))
            self.vectors, self.nodes, self.points = a["vectors"], a["nodes"], a["points"]
            self.signs = np.where(a["codes"] == 1, -1.0, 1.0).astype(np.float32)  # code 1 = go left: sigma(-x)
            self.known = a["known"]
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"{path}: not a readable skip-gram model ({type(exc).__name__})") from None
        self.name = "skipgram"

    def context_logprob(
        self, candidates: np.ndarray, context: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """(C,) sum over context ids of (weight x) log p(word | candidate), one row per candidate id."""
        points, signs = self.points[context], self.signs[context]  # (W, L)
        valid = points >= 0
        dots = np.einsum("cd,wld->cwl", self.vectors[candidates], self.nodes[np.maximum(points, 0)])
        per_word = (log_sigmoid(dots * signs) * valid).sum(axis=2)  # (C, W)
        return per_word.sum(1) if weights is None else per_word @ weights

    def context_weights(self, context: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Each context word's weight: rarity over (1 + distance from the blank) ** distance_power."""
        rarity = (self.points[context] >= 0).sum(1) if self.rarity else np.ones(len(context))
        return rarity / (1.0 + distance) ** self.distance_power

    def score(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        if len(sentences) % 5:
            raise ValueError("the skip-gram scores whole questions: five sentences each")
        out = np.zeros(len(sentences))
        for q in range(0, len(sentences), 5):
            out[q : q + 5] = self._question([self.vocab.encode(s) for s in sentences[q : q + 5]])
        return out

    def _question(self, options: list[list[int]]) -> np.ndarray:
        places, cands = blank_parts(options)
        places = [(w, d) for w, d in places if self.known[w]]
        scores = np.zeros(5)
        if not places:
            return scores
        context = np.array([w for w, _ in places], dtype=np.int64)
        weights = self.context_weights(context, np.array([d for _, d in places], dtype=np.float64))
        for k, cand in enumerate(cands):
            cand = np.array([w for w in cand if self.known[w]] or [self.vocab.unk_id])
            scores[k] = self.context_logprob(cand, context, weights).mean()  # several tokens: their mean
        return scores


def _main(args: argparse.Namespace) -> int:
    cfg = load_config(SemanticConfig, args.config, args.overrides)
    if not args.quiet:  # gensim reports its progress (words/s, % of each epoch) through logging
        logging.basicConfig(format="%(message)s", level=logging.WARNING)
        logging.getLogger("gensim.models.word2vec").setLevel(logging.INFO)
    corpus = load_corpus(cfg.data, args.quiet)
    train_ids, _ = corpus.split(cfg.data.valid_tokens)  # the held-out end stays unseen, as for the LSTMs
    start = time.time()
    arrays = train_skipgram(train_ids, corpus.vocab, cfg.model, cfg.seed)
    minutes = (time.time() - start) / 60
    save_model(
        args.out,
        arrays,
        corpus.vocab.itos,
        corpus.meta["unk_types"],
        {**config_to_dict(cfg), "train_minutes": round(minutes, 2)},
    )
    say(
        f"skip-gram ({cfg.model.dim} dims, window {cfg.model.window}, {cfg.model.epochs} epochs, "
        f"{cfg.model.workers} workers) trained in {minutes:.1f} min: {args.out}",
        args.quiet,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = model_file_parser(
        "python -m hw1_cloze.semantic",
        __doc__.splitlines()[0],
        "hw1_cloze/configs/semantic.yaml",
        "model.epochs=3 model.workers=1",
        "model",
    )
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
