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


def _most_uses(refs: Iterable[Sequence[str]]) -> Counter:
    """Each word's largest count in one reference: the clipping limit of BLEU."""
    most: Counter = Counter()
    for ref in refs:
        for word, n in Counter(ref).items():
            most[word] = max(most[word], n)
    return most


def bleu1_tokens(cand: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """The course BLEU@1 of one tokenised candidate against tokenised references (all at once)."""
    if not cand or not refs:
        return 0.0
    max_ref = _most_uses(refs)
    clipped = sum(min(n, max_ref[word]) for word, n in Counter(cand).items())
    c = len(cand)
    r = min((len(ref) for ref in refs), key=lambda n: abs(n - c))  # min keeps the first on ties
    return clipped / c * (1.0 if c > r else math.exp(1 - r / c))


class Bleu1:
    """The course BLEU@1 as an MBR similarity, for one pair (``__call__``, = ``bleu1_tokens``) or
    for many candidates against many caption sets at once (``matrix``, numpy): a candidate's
    clipped count is ``sum_w min(count in candidate, most uses of w in one reference)``, and its
    brevity penalty uses the reference length closest to its own (the first on ties)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}  # word -> column (0 is padding)
        self._cands: dict[Tokens, tuple[np.ndarray, np.ndarray]] = {}
        self._sets: dict[tuple[Tokens, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, cand: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
        return bleu1_tokens(cand, refs)

    def _ids(self, words: Iterable[str]) -> np.ndarray:
        return np.array([self.vocab.setdefault(w, len(self.vocab) + 1) for w in words], dtype=np.int64)

    def _cand(self, words: Tokens) -> tuple[np.ndarray, np.ndarray]:
        if words not in self._cands:
            counts = Counter(words)
            self._cands[words] = (self._ids(counts), np.array(list(counts.values()), dtype=np.int16))
        return self._cands[words]

    def _set(self, refs: tuple[Tokens, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if refs not in self._sets:
            most = _most_uses(refs)
            lengths = np.array([len(r) for r in refs] or [0])
            wanted = np.arange(lengths.max() + 1)[:, None]
            closest = lengths[np.argmin(np.abs(lengths[None, :] - wanted), axis=1)]  # argmin: the first on ties
            with np.errstate(divide="ignore", over="ignore"):
                bp = np.where(wanted[:, 0] > closest, 1.0, np.exp(1 - closest / np.maximum(wanted[:, 0], 1)))
            self._sets[refs] = (self._ids(most), np.array(list(most.values()), dtype=np.int16), bp)
        return self._sets[refs]

    def matrix(self, cands: Sequence[Tokens], sets: Sequence[tuple[Tokens, ...]], chunk: int = 1024) -> np.ndarray:
        """``bleu1_tokens(c, s)`` for every candidate ``c`` and caption set ``s``: (len(cands), len(sets))."""
        out = np.zeros((len(cands), len(sets)))
        if not len(cands) or not len(sets):
            return out
        rows = [self._set(tuple(s)) for s in sets]
        enc = [self._cand(tuple(c)) for c in cands]
        most = np.zeros((len(self.vocab) + 1, len(sets)), dtype=np.int16)  # word x set: most uses in one reference
        for j, (ids, counts, _) in enumerate(rows):
            most[ids, j] = counts
        lengths = np.array([len(c) for c in cands])
        bp = np.ones((len(cands), len(sets)))
        for j, (*_, table) in enumerate(rows):
            short = lengths < len(table)  # longer than every reference: no penalty
            bp[short, j] = table[lengths[short]]
        for start in range(0, len(cands), chunk):
            part = enc[start : start + chunk]
            width = max(len(ids) for ids, _ in part)
            ids = np.zeros((len(part), width), dtype=np.int64)
            counts = np.zeros((len(part), width), dtype=np.int16)
            for i, (a, b) in enumerate(part):
                ids[i, : len(a)], counts[i, : len(b)] = a, b
            clipped = np.minimum(counts[:, :, None], most[ids]).sum(axis=1)
            out[start : start + len(part)] = clipped
        empty = [not s for s in sets]
        out = out / np.maximum(lengths, 1)[:, None] * bp
        out[:, empty] = 0.0
        return out


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


def _similarity(memo: dict, sim, cand: Tokens, refs: tuple[Tokens, ...]) -> float:
    key = (id(sim), cand, refs)
    if key not in memo:
        memo[key] = sim(cand, refs)
    return memo[key]


def expected_similarity(
    cands: Sequence[Candidate], support: Sequence[tuple[float, tuple[Tokens, ...]]], sim, memo: dict | None = None
) -> np.ndarray:
    """Each candidate's weighted mean similarity to the caption sets of ``support``.

    A candidate is never compared with itself: one copy of it, in the first set that holds it, is
    left out (a set holding nothing else does not count), so a caption does not win just by being
    in the support, while its copies in other sets still count. A similarity with a ``matrix``
    method scores all pairs at once; otherwise ``memo`` keeps each pair's value between calls.
    """
    memo = {} if memo is None else memo
    words = [c.words for c in cands]
    sets = [refs for _, refs in support]
    weights = np.tile(np.array([w for w, _ in support], dtype=float), (len(words), 1))
    if hasattr(sim, "matrix"):
        sims = sim.matrix(words, sets)
    else:
        sims = np.array([[_similarity(memo, sim, c, refs) for refs in sets] for c in words]).reshape(weights.shape)
    first: dict[Tokens, int] = {}
    for j in reversed(range(len(sets))):
        first.update(dict.fromkeys(sets[j], j))  # the earliest set that holds a caption wins
    for i, cand in enumerate(words):
        j = first.get(cand)
        if j is None:
            continue
        if len(sets[j]) == 1:
            weights[i, j] = 0.0  # nothing left to compare with: the set does not count (as in Devlin et al.)
        else:
            others = list(sets[j])
            others.remove(cand)
            sims[i, j] = _similarity(memo, sim, cand, tuple(others))
    total = weights.sum(axis=1)
    return (sims * weights).sum(axis=1) / np.where(total > 0, total, 1.0)


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
    expectation is ``(1 - prior_weight) *`` the weighted mean similarity to the caption sets of
    ``support`` (which stand in for the references; see ``expected_similarity``) ``+ prior_weight *``
    the expected similarity to a random training video's captions (``prior``). Empty candidates
    never win; ties go to the earlier candidate."""
    if not cands:
        return 0
    value = (1 - prior_weight) * expected_similarity(cands, support, sim, memo)
    value += model_weight * np.array([c.model_score for c in cands])
    if prior is not None and prior_weight:
        value += prior_weight * prior.values([c.words for c in cands], sim)
    value[[not c.words for c in cands]] = -np.inf
    return int(np.argmax(value))


class CaptionPrior:
    """What any video's references tend to look like: the expected similarity of a caption to the
    caption set of a random training video (estimated on ``sample`` of them). Mixed into MBR, it
    pulls an uncertain choice towards captions that score on most videos, as the constant caption
    does; ``pool(n)`` offers the training captions that do so best as candidates."""

    def __init__(self, caption_sets: Iterable[Sequence[str]], sample: int = 100, seed: int = 0):
        self.sets = tokenize_sets(caption_sets)
        pick = np.random.default_rng(seed).permutation(len(self.sets))[:sample]
        self.sample = [self.sets[i] for i in sorted(pick)]
        self._memo: dict = {}
        self._ranked: list[Tokens] | None = None

    def values(self, words: Sequence[Tokens], sim) -> np.ndarray:
        """The expected similarity of each caption to a sampled training video's caption set."""
        missing = [w for w in dict.fromkeys(words) if (id(sim), w) not in self._memo]
        if missing and self.sample:
            if hasattr(sim, "matrix"):
                found = sim.matrix(missing, self.sample).mean(axis=1)
            else:
                found = [sum(sim(w, refs) for refs in self.sample) / len(self.sample) for w in missing]
            self._memo.update(((id(sim), w), float(v)) for w, v in zip(missing, found))
        return np.array([self._memo.get((id(sim), w), 0.0) for w in words])

    def __call__(self, words: Tokens, sim) -> float:
        return float(self.values([words], sim)[0])

    def pool(self, n: int) -> list[Candidate]:
        """The ``n`` training captions with the highest mean BLEU@1 against every training video's
        caption set (ties: the caption more videos use first)."""
        if self._ranked is None:
            uses = Counter(c for s in self.sets for c in set(s) if c)
            captions = sorted(uses, key=lambda c: -uses[c])
            mean = Bleu1().matrix(captions, self.sets).mean(axis=1) if self.sets else np.zeros(len(captions))
            self._ranked = [captions[i] for i in np.argsort(-mean, kind="stable")]
        return [Candidate(c) for c in self._ranked[:n]]


def similarity(metric: Metric, cider: CiderD | None):
    """The similarity function of an MBR metric (CIDEr-D needs its corpus statistics)."""
    if metric == "bleu1":
        return Bleu1()
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
