"""LSTM language model with tied embeddings and a tied adaptive softmax."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from common.config import param

EMB_STD = 0.05  # the embedding's initial scale (also the scale pretrained vectors are brought to)


@dataclass
class ModelConfig:
    emb: int = param(256, gt=0)
    hidden: int = param(256, gt=0)
    layers: int = param(2, gt=0)
    dropout: float = param(0.0, ge=0, lt=1)
    cutoffs: list[int] = field(default_factory=lambda: [2000, 10000])  # adaptive softmax clusters
    tail_div: float = param(4.0, gt=0)  # each tail cluster's projection is this much narrower than the last


class TiedAdaptiveSoftmax(nn.Module):
    """Adaptive softmax (Grave et al. 2017) whose output vectors are the input embeddings.

    The head scores the ``cutoffs[0]`` most frequent words plus one logit per tail cluster. A tail
    cluster scores its words through a narrow projection ``P_i``: logits ``(h P_i) . (E_w P_i)``,
    so rare words cost little and every word still shares its embedding between input and output.
    Training loss needs only each target's cluster; exact log-probabilities are available too.
    """

    def __init__(self, embedding: nn.Embedding, cutoffs: list[int], div: float = 4.0):
        super().__init__()
        vocab, dim = embedding.weight.shape
        self.embedding = embedding
        self.bounds = [0] + [c for c in cutoffs if c < vocab] + [vocab]
        n_tails = len(self.bounds) - 2
        self.head_bias = nn.Parameter(torch.zeros(self.bounds[1]))
        self.cluster = nn.Linear(dim, n_tails) if n_tails else None
        self.proj = nn.ModuleList(nn.Linear(dim, max(8, int(dim / div ** (i + 1))), bias=False) for i in range(n_tails))

    def _weights(self) -> list[torch.Tensor]:
        # One split per call: its backward writes the embedding gradient once, where separate
        # slices would each zero-fill and add a full-size gradient.
        sizes = [hi - lo for lo, hi in zip(self.bounds, self.bounds[1:])]
        return list(self.embedding.weight.split(sizes))

    def _head_logprobs(self, h: torch.Tensor, w: list[torch.Tensor]) -> torch.Tensor:
        head = F.linear(h, w[0], self.head_bias)
        if self.cluster is not None:
            head = torch.cat([head, self.cluster(h)], dim=-1)
        return head.log_softmax(-1)  # (N, c0 + n_tails)

    def _tail_logprobs(self, i: int, h: torch.Tensor, w: list[torch.Tensor]) -> torch.Tensor:
        proj = self.proj[i]
        return F.linear(proj(h), proj(w[i + 1])).log_softmax(-1)  # (n, cluster size)

    def target_logprob(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(target | h)`` for ``h`` (N, D) and ``target`` (N,)."""
        w = self._weights()
        head = self._head_logprobs(h, w)
        c0 = self.bounds[1]
        out = head.gather(1, target.clamp(max=c0 - 1)[:, None]).squeeze(1)
        for i in range(len(self.bounds) - 2):
            lo, hi = self.bounds[i + 1], self.bounds[i + 2]
            rows = ((target >= lo) & (target < hi)).nonzero().squeeze(1)
            if rows.numel():
                tail = self._tail_logprobs(i, h[rows], w).gather(1, (target[rows] - lo)[:, None]).squeeze(1)
                out = out.index_copy(0, rows, head[rows, c0 + i] + tail)
        return out

    def full_logprobs(self, h: torch.Tensor) -> torch.Tensor:
        """``(N, V)`` log-probabilities of every word (for tests and sampling)."""
        w = self._weights()
        head = self._head_logprobs(h, w)
        c0 = self.bounds[1]
        parts = [head[:, :c0]]
        for i in range(len(self.bounds) - 2):
            parts.append(head[:, c0 + i : c0 + i + 1] + self._tail_logprobs(i, h, w))
        return torch.cat(parts, dim=1)


class LSTMLanguageModel(nn.Module):
    """Embedding -> LSTM -> projection to the embedding size -> tied adaptive softmax."""

    def __init__(self, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(vocab_size, cfg.emb)
        nn.init.normal_(self.embedding.weight, std=EMB_STD)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.emb, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.out_proj = nn.Linear(cfg.hidden, cfg.emb) if cfg.hidden != cfg.emb else nn.Identity()
        self.softmax = TiedAdaptiveSoftmax(self.embedding, cfg.cutoffs, cfg.tail_div)

    def hidden_states(self, x: torch.Tensor, state=None):
        """``x`` (B, T) ids -> features (B, T, emb) and the final LSTM state."""
        out, state = self.lstm(self.drop(self.embedding(x)), state)
        return self.out_proj(self.drop(out)), state

    def forward(self, x: torch.Tensor, targets: torch.Tensor, state=None):
        """Mean negative log-likelihood of ``targets`` (B, T), and the state to carry on."""
        h, state = self.hidden_states(x, state)
        logp = self.softmax.target_logprob(h.reshape(-1, h.size(-1)), targets.reshape(-1))
        return -logp.mean(), state

    @torch.no_grad()
    def sequence_logprob(self, x: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sum of ``log p(targets)`` over positions where ``mask`` is True, per row: (B,)."""
        h, _ = self.hidden_states(x)
        logp = self.softmax.target_logprob(h.reshape(-1, h.size(-1)), targets.reshape(-1)).view_as(targets)
        return (logp * mask).sum(1)

    def flops_per_token(self, cluster_share: list[float]) -> float:
        """Multiply-adds x2 of one training token, forward + backward (x3), for the FLOP/s ratio.

        ``cluster_share[i]`` is the fraction of tokens that fall in tail cluster ``i``.
        """
        c = self.cfg
        lstm = sum(2 * 4 * c.hidden * ((c.emb if i == 0 else c.hidden) + c.hidden) for i in range(c.layers))
        proj = 2 * c.hidden * c.emb if c.hidden != c.emb else 0
        b = self.softmax.bounds
        head = 2 * c.emb * (b[1] + len(b) - 2)
        tails = sum(
            share * 2 * (c.emb * p.out_features + (b[i + 2] - b[i + 1]) * p.out_features)
            for i, (share, p) in enumerate(zip(cluster_share, self.softmax.proj))
        )
        return 3.0 * (lstm + proj + head + tails)
