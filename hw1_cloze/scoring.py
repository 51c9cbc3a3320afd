"""Whole-sentence scorers behind one interface, their combination, and held-out dev questions."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from common.batching import length_mask, pad_batch
from common.vocab import Vocab
from hw1_cloze.data import Question
from hw1_cloze.model import LSTMLanguageModel, ModelConfig
from hw1_cloze.ngram import KneserNey


class SentenceScorer(Protocol):
    name: str
    vocab: Vocab
    unk_types: int  # word types folded into <unk>

    def score(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """Log-probability of each tokenised sentence (natural log)."""


def unk_penalty(ids: list[list[int]], vocab: Vocab, unk_types: int) -> np.ndarray:
    """A word outside the vocabulary is scored as ``<unk>`` shared evenly by the ``unk_types``
    word types it stands for, so an unknown candidate is not favoured for being a frequent class."""
    n_unk = np.array([sum(i == vocab.unk_id for i in s) for s in ids], dtype=np.float64)
    return n_unk * np.log(max(unk_types, 1))


class LSTMScorer:
    """Scores with a trained forward or backward LSTM checkpoint, many sentences per batch."""

    def __init__(self, state: dict, device: torch.device, batch_size: int = 256):
        extra = state["extra"]
        self.vocab = Vocab(extra["itos"])
        self.direction = extra["direction"]
        self.unk_types = extra["unk_types"]
        self.name = f"lstm-{self.direction}"
        self.model = LSTMLanguageModel(len(self.vocab), ModelConfig(**state["config"]["model"])).to(device)
        self.model.load_state_dict(state["models"]["model"])
        self.model.eval()
        self.device, self.batch_size = device, batch_size

    def score(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        ids = [self.vocab.encode(s) for s in sentences]
        seqs = [s[::-1] if self.direction == "backward" else s for s in ids]
        out = np.zeros(len(seqs))
        order = np.argsort([len(s) for s in seqs])  # similar lengths together: less padding
        eos = self.vocab.eos_id
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            x, lengths = pad_batch([[eos] + seqs[r] for r in rows], self.vocab.pad_id)
            y, _ = pad_batch([seqs[r] + [eos] for r in rows], self.vocab.pad_id)
            mask = length_mask(lengths, x.size(1)).float()
            lp = self.model.sequence_logprob(x.to(self.device), y.to(self.device), mask.to(self.device))
            out[rows] = lp.double().cpu().numpy()
        return out - unk_penalty(ids, self.vocab, self.unk_types)


class NgramScorer:
    """Scores with a Kneser-Ney model saved by ``python -m hw1_cloze.ngram``."""

    def __init__(self, path: str | os.PathLike):
        self.model, itos, self.unk_types = KneserNey.load(path)
        self.vocab = Vocab(itos)
        self.name = f"kn{self.model.order}"

    def score(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        ids = [self.vocab.encode(s) for s in sentences]
        return self.model.sentence_logprob(ids, self.vocab.eos_id) - unk_penalty(ids, self.vocab, self.unk_types)


def candidate_sentences(questions: Sequence[Question]) -> list[list[str]]:
    """The 5 filled-in sentences of every question, question-major."""
    return [q.filled(k) for q in questions for k in range(5)]


def choose(scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Index (0-4) of the best option per question under a weighted sum of log-probabilities."""
    total = sum(w * s for w, s in zip(weights, scores))
    return np.asarray(total).reshape(-1, 5).argmax(1)


def window_logprob(ngram: KneserNey, seq: np.ndarray, pos: int, words: np.ndarray) -> np.ndarray:
    """For each of ``words`` put at ``seq[pos]``, the n-gram log-probability of the terms that
    change: that word and the ``order - 1`` after it, each given its own history (one batched
    call). ``seq`` is a whole sentence with its ``<eos>`` at both ends."""
    n, words = ngram.order - 1, np.asarray(words, dtype=np.int64)
    filled = np.repeat(seq[None, :], len(words), axis=0)
    filled[:, pos] = words
    hist, hlen, tgt = [], [], []
    for j in range(pos, min(pos + n + 1, len(seq))):
        ctx = filled[:, max(0, j - n) : j]
        hist.append(np.pad(ctx, ((0, 0), (n - ctx.shape[1], 0))))
        hlen.append(np.full(len(words), ctx.shape[1]))
        tgt.append(filled[:, j])
    lp = ngram.logprob(np.concatenate(hist), np.concatenate(hlen), np.concatenate(tgt))
    return lp.reshape(-1, len(words)).sum(axis=0)


DECOYS = ("grammatical", "sentence", "below", "left")


def pick_decoys(ngram: KneserNey, seq: np.ndarray, pos: int, near: np.ndarray, mode: str) -> np.ndarray:
    """The ranked pool (at most 20) the decoys for ``seq[pos]`` are drawn from.

    Of the ``near`` frequency neighbours the 100 likeliest after the left context are kept. In
    ``"left"`` mode their 20 best are the pool. Otherwise, as for the MSR decoys, they are
    re-ranked by how well they fit both sides (``window_logprob``) and the 20 best are the pool;
    in ``"below"`` mode every one the model scores at or above the true word is dropped first (a
    word the model prefers to the truth is often a valid synonym), which also makes the model
    itself right on every such question.
    """
    n = ngram.order - 1
    ctx = seq[max(0, pos - n) : pos]
    hist = np.repeat(np.pad(ctx, (n - len(ctx), 0))[None, :], len(near), axis=0)
    near = near[np.argsort(-ngram.logprob(hist, np.full(len(near), len(ctx)), near), kind="stable")[:100]]
    if mode == "left":
        return near[:20]
    fit = window_logprob(ngram, seq, pos, np.append(near, seq[pos]))
    keep = fit[:-1] < fit[-1] if mode == "below" else np.ones(len(near), dtype=bool)
    return near[keep][np.argsort(-fit[:-1][keep], kind="stable")][:20]


# The frequency ranks a dev blank may have: from the 5th percentile of the ranks of the test's
# candidate words (read from testing_data.csv's options, never its answers; 874 under the prepared
# 50,000-word vocabulary) up to 30,000. The test blanks rare words, and a dev set of commoner ones
# flatters the local models.
DEV_BAND = (874, 30000)

# Decoys kept per dev blank when they must also fit its grammar (``syntax``): the pool's this many
# nearest to the true word in syntactic contexts. MSR's human judges kept only decoys that were
# grammatical in the sentence; without this filter the dev decoys more often differ from the true
# word in form (-ed against -ing, a noun against an adverb), which the LSTMs catch and the test does
# not let them. 6 makes the share of questions whose five options all end alike (-ing, -ed, -ly,
# -s or none of these) 0.42 on 2,000 dev questions, as among the test's 1,040 (0.41; options only, never
# answers); 4 gives 0.47, 8 gives 0.38, no filter 0.22.
SYNTAX_POOL = 6


def syntax_vectors(ids: np.ndarray, vocab_size: int, context: int = 150) -> np.ndarray:
    """(V, 2 * (context + 1)) unit vectors: each word's distribution of left and right neighbours.

    The neighbours are the ``context`` most frequent ids (mostly function words and punctuation,
    the lowest ids) and one bucket for all others; the square roots of the two distributions make
    the cosine of two words a Hellinger affinity. Words of one part of speech (and one inflection)
    share such contexts (Schütze 1995), so this stands in for a tagger, which would need data we
    cannot download.
    """
    ids = np.asarray(ids, dtype=np.int64)
    sides = []
    for word, neighbour in ((ids[1:], ids[:-1]), (ids[:-1], ids[1:])):
        bucket = np.minimum(neighbour, context)
        counts = np.bincount(word * (context + 1) + bucket, minlength=vocab_size * (context + 1))
        counts = counts.reshape(vocab_size, context + 1).astype(np.float64)
        sides.append(np.sqrt(counts / np.maximum(counts.sum(1, keepdims=True), 1)))
    vec = np.concatenate(sides, axis=1)
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


NEAR = 600  # frequency neighbours a dev blank's decoys are picked from


def frequency_neighbours(
    word: int, lowest: int, alpha: np.ndarray, rng: np.random.Generator, spread: float = 0.0
) -> np.ndarray:
    """Candidate decoys for ``word`` (a frequency rank): the words within NEAR / 2 ranks of it, or
    with ``spread``, NEAR words drawn within ``spread`` times its rank either way, each with
    probability proportional to 1 / rank (log-uniform: as many from each octave)."""
    if not spread:
        lo, hi = max(lowest, word - NEAR // 2), min(len(alpha), word + NEAR // 2)
        return np.array([w for w in range(lo, hi) if alpha[w] and w != word])
    ranks = np.arange(max(lowest, math.ceil(word / spread)), min(len(alpha), math.floor(word * spread) + 1))
    ranks = ranks[alpha[ranks] & (ranks != word)]
    if len(ranks) <= NEAR:
        return ranks
    p = 1.0 / ranks
    return np.sort(rng.choice(ranks, NEAR, replace=False, p=p / p.sum()))


def balanced_decoys(pool: np.ndarray, word: int, commoner: int, rng: np.random.Generator) -> np.ndarray | None:
    """4 decoys from ``pool``: ``commoner`` of them with a lower rank than ``word``, the rest with a
    higher one; None when the pool has too few on either side."""
    frequent, rare = pool[pool < word], pool[pool > word]
    if len(frequent) < commoner or len(rare) < 4 - commoner:
        return None
    return np.concatenate(
        [rng.choice(frequent, commoner, replace=False), rng.choice(rare, 4 - commoner, replace=False)]
    )


def dev_questions(
    valid_ids: np.ndarray,
    vocab: Vocab,
    n: int = 500,
    seed: int = 0,
    band: tuple[int, int] = DEV_BAND,
    ngram: KneserNey | None = None,
    decoys: str = "grammatical",
    syntax: np.ndarray | None = None,
    syntax_pool: int = SYNTAX_POOL,
    spread: float = 0.0,
    balance: bool = False,
) -> tuple[list[list[str]], np.ndarray]:
    """Cloze questions made from held-out sentences, for tuning weights away from the test set.

    Like the MSR questions: one rare word (a rank in ``band``) is blanked and four distractors of
    similar frequency (within 300 ranks) are offered. With ``ngram``, the distractors are drawn
    from 20 that the n-gram finds plausible (``pick_decoys``): with ``decoys="sentence"``, as the
    MSR decoys were, the words that fit the left and right context best; ``"grammatical"`` keeps of
    those only the ``syntax_pool`` nearest to the true word in grammatical use (``syntax``, from
    :func:`syntax_vectors`), as MSR's judges kept only grammatical decoys; with ``"below"`` only
    those the n-gram scores below the true word (so that n-gram answers all of them right); with
    ``"left"`` the likeliest after the left context only, many of which the right context rules
    out. Without ``ngram`` they are random neighbours, which are far easier to rule out. With
    ``spread`` the decoys are not of near-equal frequency (``frequency_neighbours``): the test's
    options differ in frequency many times over, and dev questions whose options do not cannot see a
    member's preference for frequent or rare words. With ``balance``, question ``i`` has ``i % 5`` decoys
    commoner than the true word (a lower rank) and the rest rarer, so that the true word is as often
    the commonest of its five options as the rarest: the decoys the 4-gram finds likeliest lean to
    common words, which otherwise makes the true word the rarer more often than chance, and a member
    that prefers rare words gains on dev what it would not on a test without that lean. A blank
    with fewer than 4 such words (with ``balance``: too few on either side) is skipped.
    Returns (5 sentences per question, question-major; the answers).
    """
    if decoys not in DECOYS:
        raise ValueError(f"decoys must be one of {DECOYS}, not {decoys!r}")
    if decoys == "grammatical" and ngram is not None and syntax is None:
        raise ValueError("grammatical decoys need the syntax vectors")
    rng = np.random.default_rng(seed)
    ids = np.asarray(valid_ids, dtype=np.int64)
    ends = np.flatnonzero(ids == vocab.eos_id)
    sentences = [ids[a + 1 : b] for a, b in zip(ends[:-1], ends[1:]) if 10 <= b - a - 1 <= 40]
    alpha = np.array([w.isalpha() for w in vocab.itos])
    out, answers = [], []
    for s in rng.permutation(len(sentences)):
        sent = sentences[s]
        slots = [i for i, w in enumerate(sent) if band[0] <= w < min(band[1], len(vocab)) and alpha[w]]
        if not slots:
            continue
        pos = slots[rng.integers(len(slots))]
        word = int(sent[pos])
        near = frequency_neighbours(word, band[0], alpha, rng, spread)
        if ngram is not None:
            seq = np.concatenate([[vocab.eos_id], sent, [vocab.eos_id]])
            near = pick_decoys(ngram, seq, pos + 1, near, decoys)  # "grammatical" ranks as "sentence" does
            if decoys == "grammatical" and len(near):
                near = near[np.argsort(-(syntax[near] @ syntax[word]), kind="stable")[:syntax_pool]]
        if len(near) < 4:
            continue
        chosen = balanced_decoys(near, word, len(answers) % 5, rng) if balance else rng.choice(near, 4, replace=False)
        if chosen is None:
            continue
        options = [word] + [int(w) for w in chosen]
        answer = int(rng.integers(5))
        options[0], options[answer] = options[answer], options[0]
        for w in options:
            filled = sent.copy()
            filled[pos] = w
            out.append(vocab.decode(filled.tolist(), strip_specials=False))
        answers.append(answer)
        if len(answers) == n:
            break
    return out, np.array(answers)
