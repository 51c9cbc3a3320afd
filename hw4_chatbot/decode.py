"""Batched decoding: greedy, sampling (temperature / top-k) and beam search, with n-gram blocking.

Beam search scores finished hypotheses by ``logp / len**alpha`` (length normalisation) and can
rerank its n-best list MMI-style with a backward model p(query | reply) (Li et al. 2016a). Its k
hypotheses per query are rows of one batch, so a beam-5 reply costs a few greedy ones, not five
Python loops; it stops a query early (a longer search finds the generic high-probability replies)
and can push replies on the dull list down its n-best list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from common.batching import pad_batch
from common.config import param
from common.vocab import Vocab
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
    dull_penalty: float = param(0.0, ge=0)  # beam: taken off the normalised score of a reply on the dull list
    early_stop: bool = True  # beam: a query is done once its best candidate ends (else: once none can win)
    no_unk: bool = False  # never emit <unk>: a reply that names no word is no answer


def block_repeats(logp: torch.Tensor, seqs: torch.Tensor, n: int) -> torch.Tensor:
    """``logp (R, V)`` with -inf on each token that would repeat an n-gram of its row of ``seqs (R, t)``."""
    t = seqs.size(1)
    if n <= 0 or t < n:
        return logp
    if n == 1:
        return logp.scatter(1, seqs, float("-inf"))
    windows = seqs.unfold(1, n - 1, 1)[:, : t - n + 1]  # (R, t-n+1, n-1): every earlier (n-1)-gram
    match = (windows == seqs[:, t - n + 1 :].unsqueeze(1)).all(-1)  # ... equal to the last n-1 tokens
    rows, cols = match.nonzero(as_tuple=True)
    logp = logp.clone()
    logp[rows, seqs[:, n - 1 :][rows, cols]] = float("-inf")
    return logp


def _apply_rules(logp: torch.Tensor, seqs: torch.Tensor, cfg: DecodeConfig, eos_id: int) -> torch.Tensor:
    logp = block_repeats(logp, seqs, cfg.no_repeat_ngram)
    banned = ([eos_id] if seqs.size(1) < cfg.min_len else []) + ([Vocab.unk_id] if cfg.no_unk else [])
    if banned:
        logp = logp.clone()
        logp[:, banned] = float("-inf")
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
    seqs = torch.empty((batch, 0), dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
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
        tokens = tokens.masked_fill(done, eos_id)
        seqs = torch.cat([seqs, tokens.unsqueeze(1)], 1)
        done |= tokens == eos_id
        if bool(done.all()):
            break
    return [row[: row.index(eos_id)] if eos_id in row else row for row in seqs.tolist()]


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    cfg: DecodeConfig,
    bos_id: int = 1,
    eos_id: int = 2,
    dull: Sequence[list[int]] = (),
) -> list[list[tuple[float, float, list[int]]]]:
    """Per row of ``src`` its k best finished hypotheses ``(normalised score, logp, ids)``, best first.

    The ``B*k`` live hypotheses are one batch: the query is encoded once and each step is a handful
    of tensor operations, whatever ``B`` and ``k``. A hypothesis ending in ``<eos>`` is kept when it
    ranks among the 2k best candidates of its row, as it would in a plain beam. A row is done once
    no live hypothesis, at its present length, scores above the worst of the k kept, or, with
    ``cfg.early_stop``, as soon as its best candidate is an ending (OpenNMT's rule). A finished
    reply equal to one of ``dull`` (id lists) loses ``cfg.dull_penalty`` from its normalised score.
    """
    k, batch, dev = cfg.beam, src.size(0), src.device
    memory, state = model.encode(src, src_len)
    # the first step runs once per query (its k beams would be identical), then fans out to k
    tokens = torch.full((batch,), bos_id, dtype=torch.long, device=dev)
    logp, state = model.step(tokens, state, memory)
    memory, state, logp = memory.repeat(k), repeat_state(state, k), logp.repeat_interleave(k, 0)
    seqs = torch.empty((batch * k, 0), dtype=torch.long, device=dev)
    # only the first beam of each row is live at the start, so the k beams do not start identical
    scores = torch.full((batch, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0
    first_row = torch.arange(batch, device=dev).unsqueeze(1) * k  # (B, 1)
    kept = _Finished(batch, k, cfg.max_len, dev, dull if cfg.dull_penalty else (), cfg.dull_penalty)
    done = torch.zeros(batch, 1, dtype=torch.bool, device=dev)
    for t in range(cfg.max_len):
        if t:
            logp, state = model.step(tokens, state, memory)
        logp = _apply_rules(logp, seqs, cfg, eos_id)
        vocab = logp.size(-1)
        top, idx = (scores.view(-1, 1) + logp).view(batch, k * vocab).topk(2 * k, dim=-1)  # (B, 2k)
        rows, tok = first_row + idx // vocab, idx % vocab
        ended = tok == eos_id  # at most k of the 2k, so k live ones remain
        norm = top / (t + 1) ** cfg.length_alpha  # reply length t plus <eos>
        kept.add(norm.masked_fill(~ended | done, float("-inf")), top, seqs[rows.view(-1)].view(batch, 2 * k, t))
        if cfg.early_stop:
            done |= ended[:, :1]
        live = torch.sort(ended.to(torch.uint8), dim=1, stable=True).indices[:, :k]  # the k best not ended
        scores, rows, tok = top.gather(1, live), rows.gather(1, live).view(-1), tok.gather(1, live)
        state = select_state(state, rows)
        seqs = torch.cat([seqs[rows], tok.view(-1, 1)], 1)
        tokens = tok.view(-1)
        if t == cfg.max_len - 1:  # out of room: the live ones end here, cut
            kept.add(
                (scores / (t + 2) ** cfg.length_alpha).masked_fill(done, float("-inf")),
                scores,
                seqs.view(batch, k, t + 1),
            )
        done |= scores.max(1, keepdim=True).values / (t + 2) ** cfg.length_alpha <= kept.norm[:, -1:]
        if bool(done.all()):
            break
    return kept.lists()


class _Finished:
    """The k best finished hypotheses of each row, as tensors padded to ``max_len`` (-1 after the end)."""

    def __init__(
        self, batch: int, k: int, max_len: int, device: torch.device, dull: Sequence[list[int]] = (), penalty: float = 0
    ):
        self.k, self.max_len, self.penalty = k, max_len, penalty
        by_len: dict[int, list[list[int]]] = {}
        for ids in dull:
            by_len.setdefault(len(ids), []).append(ids)
        self.dull = {n: torch.tensor(rows, device=device) for n, rows in by_len.items()}  # length -> (D, n)
        self.norm = torch.full((batch, k), float("-inf"), device=device)
        self.logp = torch.full((batch, k), float("-inf"), device=device)
        self.ids = torch.full((batch, k, max_len), -1, dtype=torch.long, device=device)

    def add(self, norm: torch.Tensor, logp: torch.Tensor, ids: torch.Tensor) -> None:
        """Merge candidates ``norm, logp (B, n)`` with ids ``(B, n, t)``; -inf ``norm`` means none."""
        if ids.size(2) in self.dull:
            hit = (ids.unsqueeze(2) == self.dull[ids.size(2)].unsqueeze(0).unsqueeze(0)).all(-1).any(-1)  # (B, n)
            norm = norm - self.penalty * hit
        ids = torch.nn.functional.pad(ids, (0, self.max_len - ids.size(2)), value=-1)
        norm, logp, ids = (
            torch.cat([self.norm, norm], 1),
            torch.cat([self.logp, logp], 1),
            torch.cat([self.ids, ids], 1),
        )
        best = norm.topk(self.k, dim=1).indices  # sorted, best first
        self.norm, self.logp = norm.gather(1, best), logp.gather(1, best)
        self.ids = ids.gather(1, best.unsqueeze(2).expand(-1, -1, self.max_len))

    def lists(self) -> list[list[tuple[float, float, list[int]]]]:
        out = []
        for norms, logps, rows in zip(self.norm.tolist(), self.logp.tolist(), self.ids.tolist()):
            out.append(
                [(n, lp, [i for i in ids if i >= 0]) for n, lp, ids in zip(norms, logps, rows) if n > float("-inf")]
            )
        return out


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
    generator: torch.Generator | None = None,
    dull: Sequence[list[int]] = (),
) -> list[list[int]]:
    """Replies for a batch under ``cfg.strategy``; sampling draws from ``generator`` (default: torch's own)."""
    if cfg.strategy == "beam":
        hyps = beam_search(model, src, src_len, cfg, bos_id, eos_id, dull)
        if cfg.mmi_weight and backward is not None:
            queries = [row[: int(n)].tolist() for row, n in zip(src, src_len)]
            return mmi_rerank(backward, queries, hyps, cfg.mmi_weight, bos_id, eos_id, mapping=mapping)
        return [h[0][2] if h else [] for h in hyps]
    sample = cfg.strategy == "sample"
    return greedy_or_sample(model, src, src_len, cfg, bos_id, eos_id, sample=sample, generator=generator)
