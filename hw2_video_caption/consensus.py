"""Consensus (minimum-Bayes-risk) choice among candidate captions, and a nearest-neighbour captioner.

MBR (Kumar & Byrne 2004) picks the candidate with the highest expected similarity to captions
that stand in for the unknown references: the other candidates of the model's n-best list, or the
caption sets of the nearest training videos (Devlin et al. 2015), each weighted. With a caption
set as one "sample" the course's new BLEU@1 (one score against all references of a video) is the
similarity, so MBR over neighbour sets maximises the expected course metric itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hw2_video_caption.data import normalize_caption

Metric = Literal["bleu1", "cider"]
Tokens = tuple[str, ...]


def bleu1_tokens(cand: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """The course BLEU@1 of one tokenised candidate against tokenised references (all at once)."""
    if not cand or not refs:
        return 0.0
    max_ref: Counter = Counter()
    for ref in refs:
        for word, n in Counter(ref).items():
            max_ref[word] = max(max_ref[word], n)
    clipped = sum(min(n, max_ref[word]) for word, n in Counter(cand).items())
    c = len(cand)
    r = min((len(ref) for ref in refs), key=lambda n: abs(n - c))  # min keeps the first on ties
    return clipped / c * (1.0 if c > r else math.exp(1 - r / c))


class CiderD:
    """CIDEr-D of one candidate against references, with document frequencies from a caption corpus
    (one document = the caption set of one video), as a similarity for MBR."""

    def __init__(self, caption_sets: Iterable[Sequence[Sequence[str]]], n: int = 4, sigma: float = 6.0):
        self.n, self.sigma, self.df, docs = n, sigma, Counter(), 0
        for caps in caption_sets:
            seen = set()
            for cap in caps:
                for grams in self._grams(cap):
                    seen.update(grams)
            self.df.update(seen)
            docs += 1
        self.log_n = math.log(max(docs, 1))
        self._memo: dict[Tokens, tuple[list[dict], list[float], int]] = {}

    def _grams(self, words: Sequence[str]) -> list[Counter]:
        return [Counter(tuple(words[i : i + k]) for i in range(len(words) - k + 1)) for k in range(1, self.n + 1)]

    def _vec(self, words: Sequence[str]) -> tuple[list[dict], list[float], int]:
        key = tuple(words)
        if key not in self._memo:
            vecs = [
                {g: tf * (self.log_n - math.log(max(1.0, self.df[g]))) for g, tf in c.items()}
                for c in self._grams(words)
            ]
            norms = [math.sqrt(sum(x * x for x in v.values())) for v in vecs]
            self._memo[key] = (vecs, norms, len(words))
        return self._memo[key]

    def __call__(self, cand: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
        if not refs:
            return 0.0
        hv, hn, hl = self._vec(cand)
        total = 0.0
        for ref in refs:
            rv, rn, rl = self._vec(ref)
            for k in range(self.n):
                if hn[k] and rn[k]:
                    dot = sum(min(x, rv[k][g]) * rv[k][g] for g, x in hv[k].items() if g in rv[k])
                    total += dot / (hn[k] * rn[k]) * math.exp(-((hl - rl) ** 2) / (2 * self.sigma**2))
        return total / self.n / len(refs) * 10.0


@dataclass
class Candidate:
    words: Tokens
    model_score: float = 0.0  # length-normalised log-probability under the captioner (0 if unscored)


def mbr_choose(
    cands: Sequence[Candidate],
    support: Sequence[tuple[float, tuple[Tokens, ...]]],
    sim,
    model_weight: float = 0.0,
    memo: dict | None = None,
    prior: CaptionPrior | None = None,
    prior_weight: float = 0.0,
) -> int:
    """Index of the candidate with the highest expected similarity plus ``model_weight * score``; the
    expectation is ``(1 - prior_weight) * sum_s w_s * sim(c, refs_s) / sum_s w_s`` over ``support``
    ``+ prior_weight *`` the expected similarity to a random training video's captions (``prior``).

    ``support`` holds weighted caption sets standing in for the references; a candidate is never
    compared with itself (one copy of it, in the first set that holds it, is left out), so a caption
    does not win just by being in the support, while its copies in other sets still count.
    ``memo`` keeps similarities between calls (keyed by candidate and set) when many strategies are
    tried on the same candidates.
    """
    memo = {} if memo is None else memo
    best, best_i = -math.inf, 0
    for i, cand in enumerate(cands):
        if not cand.words:
            continue
        gain, alone, total_w = 0.0, True, 0.0
        for w, refs in support:
            leave_out = alone and cand.words in refs  # its own copy: the first set that holds it
            alone = alone and not leave_out
            if leave_out and len(refs) == 1:
                continue  # nothing left to compare with: the set does not count (as in Devlin et al.)
            total_w += w
            key = (id(sim), cand.words, refs, leave_out)
            if key not in memo:
                others = list(refs)
                if leave_out:
                    others.remove(cand.words)
                memo[key] = sim(cand.words, others)
            gain += w * memo[key]
        value = (1 - prior_weight) * gain / (total_w or 1.0) + model_weight * cand.model_score
        if prior is not None and prior_weight:
            value += prior_weight * prior(cand.words, sim)
        if value > best:
            best, best_i = value, i
    return best_i


class CaptionPrior:
    """What any video's references tend to look like: the expected similarity of a caption to the
    caption set of a random training video (estimated on ``sample`` of them), and the captions
    used by the most training videos as generic candidates. Mixed into MBR, it pulls an uncertain
    choice towards captions that score on most videos, as the constant caption does."""

    def __init__(self, caption_sets: Iterable[Sequence[str]], sample: int = 100, generic: int = 10, seed: int = 0):
        sets = tokenize_sets(caption_sets)
        pick = np.random.default_rng(seed).permutation(len(sets))[:sample]
        self.sample = [sets[i] for i in sorted(pick)]
        uses = Counter(c for s in sets for c in set(s) if c)
        self.generic = [Candidate(c) for c, _ in uses.most_common(generic)]
        self._memo: dict = {}

    def __call__(self, words: Tokens, sim) -> float:
        key = (id(sim), words)
        if key not in self._memo:
            self._memo[key] = sum(sim(words, refs) for refs in self.sample) / max(len(self.sample), 1)
        return self._memo[key]


def similarity(metric: Metric, cider: CiderD | None):
    """The similarity function of an MBR metric (CIDEr-D needs its corpus statistics)."""
    if metric == "bleu1":
        return bleu1_tokens
    if cider is None:
        raise ValueError("CIDEr-D consensus needs document frequencies from the training captions")
    return cider


def tokenize_sets(caption_sets: Iterable[Sequence[str]]) -> list[tuple[Tokens, ...]]:
    return [tuple(tuple(normalize_caption(c)) for c in caps) for caps in caption_sets]


class NeighbourCaptioner:
    """Cosine nearest neighbours among training videos (mean-pooled, centred features); their
    caption sets are the MBR support and their captions the candidates (Devlin et al. 2015)."""

    def __init__(self, pooled: np.ndarray, caption_sets: Sequence[Sequence[str]]):
        self.mean = pooled.mean(axis=0)
        self.keys = self._normalise(pooled)
        self.sets = tokenize_sets(caption_sets)

    def _normalise(self, pooled: np.ndarray) -> np.ndarray:
        x = pooled - self.mean  # all fc7 values are >= 0: without centring every cosine is near 1
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)

    def neighbours(self, pooled: np.ndarray, k: int) -> list[list[tuple[float, int]]]:
        """The ``k`` most similar training videos of each query as (cosine, index), best first."""
        sims = self._normalise(pooled) @ self.keys.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return [[(float(sims[q, j]), int(j)) for j in row] for q, row in enumerate(order)]

    def support(self, neigh: Sequence[tuple[float, int]]) -> list[tuple[float, tuple[Tokens, ...]]]:
        """The neighbours' caption sets, weighted alike."""
        return [(1.0, self.sets[j]) for _, j in neigh]

    def candidates(self, neigh: Sequence[tuple[float, int]]) -> list[Candidate]:
        seen: dict[Tokens, None] = {}
        for _, j in neigh:
            seen.update(dict.fromkeys(c for c in self.sets[j] if c))
        return [Candidate(words) for words in seen]

    def caption(self, pooled: np.ndarray, k: int, sim) -> list[str]:
        """The consensus caption of each query's neighbours' captions."""
        out = []
        for neigh in self.neighbours(pooled, k):
            cands = self.candidates(neigh)
            out.append(" ".join(cands[mbr_choose(cands, self.support(neigh), sim)].words))
        return out
