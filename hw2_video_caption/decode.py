"""Caption choice: the model's n-best list, the nearest training videos' captions, and MBR among them.

``Decoding`` names one strategy; ``caption_videos`` applies it. The steps are separate functions so
the benchmark can compute the expensive parts (n-best lists, neighbours, model scores) once and
try many strategies on them. ``decode_captions`` is the plain top beam that validation uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from common.vocab import Vocab
from hw2_video_caption.consensus import (
    Candidate,
    CaptionPrior,
    CiderD,
    NeighbourCaptioner,
    mbr_choose,
    similarity,
)
from hw2_video_caption.data import mean_frames
from hw2_video_caption.model import VideoCaptioner


@dataclass
class Decoding:
    beam: int = 5  # beam width = size of the model's n-best list
    alpha: float = 0.7  # length normalisation: log p / length ** alpha
    rerank: Literal["none", "bleu1", "cider"] = "none"  # MBR similarity ("none": the top beam)
    model_weight: float = 0.0  # MBR value + model_weight * model score
    neighbours: int = 0  # nearest training videos: their captions join the candidates and the support
    prior: float = 0.0  # weight of the training-set prior in MBR
    pool: int = 0  # the training captions with the best prior BLEU@1 that join the candidates (MBR only)
    use_model: bool = True  # False: the neighbours' consensus caption alone

    @property
    def uses_prior(self) -> bool:
        """Whether the training captions' prior or pool take part (only MBR reads them)."""
        return self.rerank != "none" and bool(self.prior or self.pool)


def decode_captions(
    model: VideoCaptioner,
    feats: np.ndarray,
    vocab: Vocab,
    device: torch.device,
    beam: int = 5,
    alpha: float = 0.7,
    max_len: int = 20,
    batch_size: int = 100,
) -> list[str]:
    """The top beam for ``(N, 80, D)`` features, ``batch_size`` videos at a time (training's validation)."""
    was_training = model.training
    model.eval()
    banned = [vocab.pad_id, vocab.bos_id, vocab.unk_id]
    out: list[str] = []
    for start in range(0, len(feats), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(feats[start : start + batch_size])).to(device)
        seqs = model.beam_search(x, vocab.bos_id, vocab.eos_id, max_len, beam, alpha, banned)
        out.extend(" ".join(vocab.decode(s)) for s in seqs)
    model.train(was_training)
    return out


@torch.no_grad()
def model_nbest(
    model: VideoCaptioner,
    feats,
    vocab: Vocab,
    device: torch.device,
    beam: int,
    alpha: float,
    max_len: int,
    batch_size: int = 100,
) -> list[list[Candidate]]:
    """The n-best list of every video (best first), decoded ``batch_size`` videos at a time."""
    banned = [vocab.pad_id, vocab.bos_id, vocab.unk_id]
    out: list[list[Candidate]] = []
    for start in range(0, len(feats), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(feats[start : start + batch_size])).to(device)
        for hyps in model.beam_nbest(x, vocab.bos_id, vocab.eos_id, max_len, beam, alpha, banned):
            out.append([Candidate(tuple(vocab.decode(ids)), score) for score, ids in hyps])
    return out


@torch.no_grad()
def score_candidates(
    model: VideoCaptioner, x: torch.Tensor, cands: Sequence[Candidate], vocab: Vocab, alpha: float, chunk: int = 512
) -> list[Candidate]:
    """``cands`` of one video ``x`` (1, 80, D) with their length-normalised model log-probability."""
    if not cands:
        return []
    memory = model.encode(x)
    out = []
    for start in range(0, len(cands), chunk):
        part = cands[start : start + chunk]
        ids = [vocab.encode(list(c.words)) for c in part]
        width = max(map(len, ids)) + 1
        inputs = torch.full((len(ids), width), vocab.pad_id, dtype=torch.long, device=x.device)
        targets = torch.full((len(ids), width), -100, dtype=torch.long, device=x.device)
        for i, seq in enumerate(ids):
            inputs[i, : len(seq) + 1] = torch.tensor([vocab.bos_id, *seq])
            targets[i, : len(seq) + 1] = torch.tensor([*seq, vocab.eos_id])
        enc, keys = (m.expand(len(ids), *m.shape[1:]) for m in memory[:2])  # one encoding for every candidate
        state = tuple(s.expand(len(ids), *s.shape[1:]) for s in memory[2])
        logits = model(None, inputs, memory=(enc, keys, state))
        logp = -F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="none")
        lengths = torch.tensor([len(s) + 1 for s in ids], dtype=torch.float, device=x.device)
        scores = (logp.sum(1) / lengths**alpha).tolist()
        out.extend(Candidate(c.words, s) for c, s in zip(part, scores))
    return out


def choose(
    nbest: Sequence[Candidate],
    neigh: Sequence[tuple[float, int]],
    nn: NeighbourCaptioner | None,
    dec: Decoding,
    sim,
    scored_nn: Sequence[Candidate] = (),
    memo: dict | None = None,
    prior: CaptionPrior | None = None,
) -> str:
    """One caption from a video's n-best list and neighbours under ``dec``.

    ``scored_nn``: the neighbours' captions and the prior's pool with model scores (needed when
    ``model_weight`` != 0).
    """
    neigh = list(neigh[: dec.neighbours])
    cands: list[Candidate] = list(nbest) if dec.use_model else []
    extra: list[Candidate] = []
    if nn is not None and neigh:
        support = nn.support(neigh)
        extra += nn.candidates(neigh)
    else:
        support = [(1.0, (c.words,)) for c in nbest]  # the n-best list stands in for the references
    if prior is not None and dec.pool and dec.uses_prior:
        extra += prior.pool(dec.pool)
    have, scored = {c.words for c in cands}, {c.words: c for c in scored_nn} if dec.use_model else {}
    for c in extra:  # each caption once, with its model score when it has one
        if c.words not in have:
            have.add(c.words)
            cands.append(scored.get(c.words, c))
    if dec.rerank == "none" or len(cands) < 2:
        return " ".join(cands[0].words) if cands else ""
    weight = dec.model_weight if dec.use_model else 0.0
    return " ".join(cands[mbr_choose(cands, support, sim, weight, memo, prior, dec.prior)].words)


def extra_candidates(
    near: Sequence[tuple[float, int]], nn: NeighbourCaptioner | None, prior: CaptionPrior | None, pool: int
) -> list[Candidate]:
    """The captions that join a video's n-best list: its neighbours' and the prior's ``pool`` best."""
    return (nn.candidates(near) if nn is not None else []) + (prior.pool(pool) if prior is not None else [])


def caption_videos(
    model: VideoCaptioner | None,
    feats,
    vocab: Vocab | None,
    device: torch.device,
    dec: Decoding,
    max_len: int,
    nn: NeighbourCaptioner | None = None,
    cider: CiderD | None = None,
    prior: CaptionPrior | None = None,
    batch_size: int = 100,
) -> list[str]:
    """One caption per video of ``feats`` (N, 80, D) under ``dec``."""
    sim = similarity(dec.rerank, cider) if dec.rerank != "none" else None
    use_model = dec.use_model and model is not None
    nbest = (
        model_nbest(model.eval(), feats, vocab, device, dec.beam, dec.alpha, max_len, batch_size)
        if use_model
        else [[] for _ in range(len(feats))]
    )
    nn = nn if dec.neighbours > 0 else None
    neigh = nn.neighbours(mean_frames(feats), dec.neighbours) if nn is not None else [[] for _ in nbest]
    prior = prior if dec.uses_prior else None
    out = []
    for i, (cands, near) in enumerate(zip(nbest, neigh)):
        scored: list[Candidate] = []
        if use_model and dec.model_weight:
            x = torch.from_numpy(np.ascontiguousarray(feats[i : i + 1])).to(device)
            scored = score_candidates(model, x, extra_candidates(near, nn, prior, dec.pool), vocab, dec.alpha)
        out.append(choose(cands, near, nn, dec, sim, scored, prior=prior))
    return out
