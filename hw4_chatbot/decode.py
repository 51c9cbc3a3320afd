"""Batched decoding: greedy, sampling (temperature / top-k) and beam search, with n-gram blocking.

Beam search scores finished hypotheses by ``logp / len**alpha`` (length normalisation) and can
rerank its n-best list MMI-style with a backward model p(query | reply) (Li et al. 2016a).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from common.batching import pad_batch
from common.config import param
from hw4_chatbot.model import Seq2Seq, repeat_state, select_state


@dataclass
class DecodeConfig:
    strategy: Literal["greedy", "beam", "sample"] = "greedy"
    max_len: int = param(20, gt=0)
    beam: int = param(5, gt=0)
    length_alpha: float = param(1.0, ge=0)  # 0: raw log-prob (favours short replies), 1: per-token average
    no_repeat_ngram: int = param(3, ge=0)  # block a token that would repeat an n-gram of the reply (0: off)
    temperature: float = param(1.0, gt=0)
    top_k: int = param(0, ge=0)  # sample only among the k most likely tokens (0: all)
    mmi_weight: float = param(0.0, ge=0)  # beam: rerank by + weight * log p(query | reply) / len (needs backward)
    min_len: int = param(1, ge=0)  # forbid <eos> before this many tokens


def _blocked(seq: list[int], n: int) -> set[int]:
    """Tokens that would complete an n-gram already in ``seq``."""
    if n <= 0 or len(seq) < n:
        return set()
    prefix = tuple(seq[len(seq) - n + 1 :])
    return {seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i : i + n - 1]) == prefix}


def _apply_rules(logp: torch.Tensor, seqs: list[list[int]], cfg: DecodeConfig, eos_id: int) -> torch.Tensor:
    if cfg.no_repeat_ngram > 0:
        for row, seq in enumerate(seqs):
            banned = _blocked(seq, cfg.no_repeat_ngram)
            if banned:
                logp[row, list(banned)] = float("-inf")
    if seqs and len(seqs[0]) < cfg.min_len:
        logp[:, eos_id] = float("-inf")
    return logp


@torch.no_grad()
def greedy_or_sample(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    cfg: DecodeConfig,
    bos_id: int = 1,
    eos_id: int = 2,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """One reply (ids, without ``<eos>``) per row of ``src``."""
    memory, state = model.encode(src, src_len)
    batch = src.size(0)
    tokens = torch.full((batch,), bos_id, dtype=torch.long, device=src.device)
    seqs: list[list[int]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool)
    for _ in range(cfg.max_len):
        logp, state = model.step(tokens, state, memory)
        logp = _apply_rules(logp, seqs, cfg, eos_id)
        if sample:
            logits = logp / max(cfg.temperature, 1e-6)
            if cfg.top_k > 0:
                kth = logits.topk(min(cfg.top_k, logits.size(-1)), dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            tokens = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
        else:
            tokens = logp.argmax(-1)
        for i, t in enumerate(tokens.tolist()):
            if not done[i]:
                if t == eos_id:
                    done[i] = True
                else:
                    seqs[i].append(t)
        if bool(done.all()):
            break
    return seqs


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: torch.Tensor, src_len: torch.Tensor, cfg: DecodeConfig, bos_id: int = 1, eos_id: int = 2
) -> list[list[tuple[float, float, list[int]]]]:
    """Per row of ``src`` its finished hypotheses ``(normalised score, logp, ids)``, best first."""
    k, batch = cfg.beam, src.size(0)
    memory, state = model.encode(src, src_len)
    memory, state = memory.repeat(k), repeat_state(state, k)
    tokens = torch.full((batch * k,), bos_id, dtype=torch.long, device=src.device)
    # only the first beam of each row is live at the start, so the k beams do not start identical
    scores = torch.full((batch, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0
    seqs: list[list[int]] = [[] for _ in range(batch * k)]
    finished: list[list[tuple[float, float, list[int]]]] = [[] for _ in range(batch)]
    for t in range(cfg.max_len):
        logp, state = model.step(tokens, state, memory)
        logp = _apply_rules(logp, seqs, cfg, eos_id)
        vocab = logp.size(-1)
        total = (scores.view(-1, 1) + logp).view(batch, k * vocab)
        top, idx = total.topk(2 * k, dim=-1)  # 2k: room for k live beams after some finish
        beam_of, tok_of = (idx // vocab).tolist(), (idx % vocab).tolist()
        new_rows, new_tokens, new_scores = [], [], []
        for b in range(batch):
            kept = []
            for j in range(2 * k):
                s = float(top[b, j])
                if s == float("-inf"):
                    break
                row, tok = b * k + beam_of[b][j], tok_of[b][j]
                if tok == eos_id or t == cfg.max_len - 1:
                    seq = seqs[row] + ([] if tok == eos_id else [tok])
                    finished[b].append((s / (len(seq) + 1) ** cfg.length_alpha, s, seq))
                else:
                    kept.append((s, row, tok))
                if len(kept) == k:
                    break
            kept += [(float("-inf"), b * k, eos_id)] * (k - len(kept))
            for s, row, tok in kept:
                new_rows.append(row)
                new_tokens.append(tok)
                new_scores.append(s)
        # keep the k best finished by normalised score; no early stop on the first k to finish, which
        # would fill the list with the shortest (most generic) replies
        finished = [sorted(f, key=lambda h: -h[0])[:k] for f in finished]
        if all(s == float("-inf") for s in new_scores):
            break
        rows = torch.tensor(new_rows, device=src.device)
        state = select_state(state, rows)
        seqs = [seqs[r] + [tok] for r, tok in zip(new_rows, new_tokens)]
        tokens = torch.tensor(new_tokens, device=src.device)
        scores = torch.tensor(new_scores, device=src.device).view(batch, k)
    return [sorted(f, key=lambda h: -h[0]) for f in finished]


@torch.no_grad()
def mmi_rerank(
    backward: Seq2Seq,
    queries: list[list[int]],
    hyps: list[list[tuple[float, float, list[int]]]],
    weight: float,
    bos_id: int = 1,
    eos_id: int = 2,
    max_query_len: int = 20,
    mapping: list[int] | None = None,
) -> list[list[int]]:
    """Pick from each n-best list by ``score + weight * log p(query | reply) / len(query)``.

    ``mapping`` translates ids into the backward model's vocabulary when it has its own.
    """
    tr = (lambda ids: ids) if mapping is None else (lambda ids: [mapping[i] for i in ids])
    src, tgt, owner = [], [], []
    for i, (query, options) in enumerate(zip(queries, hyps)):
        q = tr([t for t in query if t != eos_id][-max_query_len:])
        for _, _, ids in options:
            ids = tr(ids)
            src.append((ids or [eos_id])[:max_query_len] + [eos_id])
            tgt.append([bos_id] + q + [eos_id])
            owner.append(i)
    if not src:
        return [[] for _ in hyps]
    s, s_len = pad_batch(src, backward.pad_id)
    t, _ = pad_batch(tgt, backward.pad_id)
    s, t = s.to(next(backward.parameters()).device), t.to(next(backward.parameters()).device)
    logp, n = backward.sequence_logprob(s, s_len, t[:, :-1], t[:, 1:])
    back = (logp / n.clamp(min=1)).tolist()
    best: list[tuple[float, list[int]]] = [(float("-inf"), []) for _ in hyps]
    flat = [h for options in hyps for h in options]
    for i, (score, _, ids), b in zip(owner, flat, back):
        total = score + weight * b
        if total > best[i][0]:
            best[i] = (total, ids)
    return [ids for _, ids in best]


def decode_batch(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    cfg: DecodeConfig,
    backward: Seq2Seq | None = None,
    bos_id: int = 1,
    eos_id: int = 2,
    mapping: list[int] | None = None,
) -> list[list[int]]:
    """Replies for a batch under ``cfg.strategy``."""
    if cfg.strategy == "beam":
        hyps = beam_search(model, src, src_len, cfg, bos_id, eos_id)
        if cfg.mmi_weight and backward is not None:
            queries = [row[: int(n)].tolist() for row, n in zip(src, src_len)]
            return mmi_rerank(backward, queries, hyps, cfg.mmi_weight, bos_id, eos_id, mapping=mapping)
        return [h[0][2] if h else [] for h in hyps]
    return greedy_or_sample(model, src, src_len, cfg, bos_id, eos_id, sample=cfg.strategy == "sample")
