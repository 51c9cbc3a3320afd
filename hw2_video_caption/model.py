"""S2VT-style encoder-decoder with attention over the 80 frames, plus greedy and beam decoding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.config import param


@dataclass
class ModelConfig:
    feat_dim: int = param(4096, gt=0)
    proj: int = param(256, gt=0)  # frame features are projected to this before the encoder RNN
    hidden: int = param(256, gt=0)
    embed: int = param(256, gt=0)
    rnn: Literal["lstm", "gru"] = "lstm"
    attention: Literal["bahdanau", "luong"] = "bahdanau"
    feat_dropout: float = param(0.3, ge=0, lt=1)  # on the 4096-d input and its projection: 40-1,450 videos overfit fast
    dropout: float = param(0.3, ge=0, lt=1)
    frame_stride: int = param(1, gt=0)  # keep every n-th frame (2 halves encoder time; consecutive frames are alike)


class Attention(nn.Module):
    """Bahdanau (additive, query = previous state) or Luong "general" (bilinear, query = new state)."""

    def __init__(self, kind: str, hidden: int):
        super().__init__()
        self.kind = kind
        self.keys = nn.Linear(hidden, hidden, bias=False)
        if kind == "bahdanau":
            self.query = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, 1, bias=False)

    def precompute(self, enc: torch.Tensor) -> torch.Tensor:
        return self.keys(enc)  # (B, T, H): done once per video, not per decoding step

    def forward(self, query: torch.Tensor, enc: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(keys + self.query(query)[:, None, :])).squeeze(-1)  # (B, T)
        else:
            scores = torch.bmm(keys, query[:, :, None]).squeeze(-1)  # (B, T)
        weights = F.softmax(scores, dim=-1)
        self.last_weights = weights.detach()  # kept for plotting only (see attention_map)
        return torch.bmm(weights[:, None, :], enc).squeeze(1)  # (B, H)


class VideoCaptioner(nn.Module):
    """Frames -> projection -> RNN encoder; an attention RNN decoder writes the caption."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        rnn_cls = nn.LSTM if cfg.rnn == "lstm" else nn.GRU
        cell_cls = nn.LSTMCell if cfg.rnn == "lstm" else nn.GRUCell
        self.feat_drop = nn.Dropout(cfg.feat_dropout)
        self.proj = nn.Linear(cfg.feat_dim, cfg.proj)
        self.encoder = rnn_cls(cfg.proj, cfg.hidden, batch_first=True)
        self.embed = nn.Embedding(vocab_size, cfg.embed)
        self.cell = cell_cls(cfg.embed + cfg.hidden, cfg.hidden)
        self.attn = Attention(cfg.attention, cfg.hidden)
        self.combine = nn.Linear(2 * cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden, vocab_size)

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """(B, 80, D) -> encoder outputs (B, T, H), attention keys and the decoder's first state."""
        feats = feats[:, :: self.cfg.frame_stride]
        x = self.feat_drop(torch.relu(self.proj(self.feat_drop(feats))))  # (B, T, P)
        enc, last = self.encoder(x)
        state = (last[0][0], last[1][0]) if self.cfg.rnn == "lstm" else (last[0],)
        return enc, self.attn.precompute(enc), state

    def empty_memory(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """A zero "video" (one frame of zeros) for pre-training the decoder as a caption LM."""
        h = self.cfg.hidden
        enc = torch.zeros(batch, 1, h, device=device)
        zeros = torch.zeros(batch, h, device=device)
        state = (zeros, zeros.clone()) if self.cfg.rnn == "lstm" else (zeros,)
        return enc, self.attn.precompute(enc), state

    # -- decoder ------------------------------------------------------------------------------
    def init_feed(self, state: tuple) -> torch.Tensor:
        return torch.zeros_like(state[0])

    def step(
        self, tokens: torch.Tensor, feed: torch.Tensor, state: tuple, enc: torch.Tensor, keys: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """One word: returns logits (B, V), the attentional vector fed to the next step, new state.

        Bahdanau attends with the previous state before the RNN step; Luong attends with the new
        state after it. Both feed the attentional vector back in ("input feeding").
        """
        emb = self.drop(self.embed(tokens))
        if self.cfg.attention == "bahdanau":
            ctx = self.attn(state[0], enc, keys)
            inp = torch.cat([emb, ctx], dim=-1)
        else:
            inp = torch.cat([emb, feed], dim=-1)
        new = self.cell(inp, state if self.cfg.rnn == "lstm" else state[0])
        new_state = tuple(new) if self.cfg.rnn == "lstm" else (new,)
        h = new_state[0]
        if self.cfg.attention == "luong":
            ctx = self.attn(h, enc, keys)
        att = torch.tanh(self.combine(torch.cat([h, ctx], dim=-1)))
        return self.out(self.drop(att)), att, new_state

    def forward(
        self, feats: torch.Tensor | None, inputs: torch.Tensor, teacher_p: float = 1.0, memory: tuple | None = None
    ) -> torch.Tensor:
        """Logits (B, L, V) for decoder ``inputs`` (B, L) (``<bos>`` + caption).

        With ``teacher_p < 1`` each position takes, with probability ``1 - teacher_p``, the model's
        own sampled previous word instead of the true one (scheduled sampling). ``feats=None``
        trains the decoder alone as a language model; ``memory`` is an :meth:`encode` result to reuse
        (scoring many captions of one video encodes the video once).
        """
        b, length = inputs.shape
        if memory is None:
            memory = self.encode(feats) if feats is not None else self.empty_memory(b, inputs.device)
        enc, keys, state = memory
        feed = self.init_feed(state)
        logits, tokens = [], inputs[:, 0]
        for t in range(length):
            if t > 0 and teacher_p < 1.0:
                own = torch.multinomial(F.softmax(logits[-1].detach().float(), -1), 1).squeeze(1)
                use_own = torch.rand(b, device=inputs.device) >= teacher_p
                tokens = torch.where(use_own, own, inputs[:, t])
            elif t > 0:
                tokens = inputs[:, t]
            step_logits, feed, state = self.step(tokens, feed, state, enc, keys)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    # -- decoding -----------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(
        self, feats: torch.Tensor, bos: int, eos: int, max_len: int, banned: Sequence[int] = ()
    ) -> list[list[int]]:
        """Most likely word at each step; ``banned`` ids (``<pad> <bos> <unk>``) are never written."""
        enc, keys, state = self.encode(feats)
        feed, b = self.init_feed(state), feats.size(0)
        tokens = torch.full((b,), bos, dtype=torch.long, device=feats.device)
        out, done = [], torch.zeros(b, dtype=torch.bool, device=feats.device)
        for _ in range(max_len):
            logits, feed, state = self.step(tokens, feed, state, enc, keys)
            logits[:, list(banned)] = -math.inf
            tokens = logits.argmax(-1)
            out.append(tokens)
            done |= tokens == eos
            if done.all():
                break
        seqs = torch.stack(out, 1).tolist()
        return [s[: s.index(eos)] if eos in s else s for s in seqs]

    @torch.no_grad()
    def beam_search(
        self,
        feats: torch.Tensor,
        bos: int,
        eos: int,
        max_len: int,
        width: int = 5,
        alpha: float = 0.7,
        banned: Sequence[int] = (),
    ) -> list[list[int]]:
        """The best caption of each video by :meth:`beam_nbest` (``width`` 1: greedy)."""
        if width <= 1:
            return self.greedy(feats, bos, eos, max_len, banned)
        return [hyps[0][1] for hyps in self.beam_nbest(feats, bos, eos, max_len, width, alpha, banned)]

    @torch.no_grad()
    def beam_nbest(
        self,
        feats: torch.Tensor,
        bos: int,
        eos: int,
        max_len: int,
        width: int = 5,
        alpha: float = 0.7,
        banned: Sequence[int] = (),
    ) -> list[list[tuple[float, list[int]]]]:
        """The ``width`` best distinct captions of every video, best first, as ``(score, ids)`` with
        score ``log p / length ** alpha`` (length counts ``<eos>``); all videos at once (B * width rows).

        Finished captions are kept until no live beam can beat the ``width``-th of them: a live
        beam's log-probability only falls and its length is at most ``max_len``, so
        ``log p / max_len ** alpha`` bounds its final score. (Stopping as soon as ``width`` captions
        have ended would return the short ones, which end first.)
        """
        if width <= 1:
            return [[(0.0, s)] for s in self.greedy(feats, bos, eos, max_len, banned)]
        enc, keys, state = self.encode(feats)
        b, k, dev = feats.size(0), width, feats.device
        rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731  (B, ...) -> (B*K, ...)
        enc, keys, state = rep(enc), rep(keys), tuple(rep(s) for s in state)
        feed = self.init_feed(state)
        tokens = torch.full((b * k,), bos, dtype=torch.long, device=dev)
        scores = torch.full((b, k), -math.inf, device=dev)
        scores[:, 0] = 0.0  # all beams start identical: keep one so the first step is not k copies
        history = torch.zeros(b * k, 0, dtype=torch.long, device=dev)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
        bound = lambda s: s / max_len**alpha if alpha > 0 else s  # noqa: E731  best a live beam may reach
        for _ in range(max_len):
            logits, feed, state = self.step(tokens, feed, state, enc, keys)
            logits[:, list(banned)] = -math.inf
            logp = F.log_softmax(logits.float(), -1)  # (B*K, V)
            vocab = logp.size(-1)
            total = (scores.view(-1, 1) + logp).view(b, k * vocab)
            top, idx = total.topk(2 * k, dim=-1)  # 2k so that k live beams survive k finishing ones
            new_scores = torch.full((b, k), -math.inf, device=dev)
            new_src = torch.zeros(b, k, dtype=torch.long, device=dev)
            new_word = torch.full((b, k), eos, dtype=torch.long, device=dev)
            top_l, beam_l, word_l = top.tolist(), (idx // vocab).tolist(), (idx % vocab).tolist()
            for i in range(b):
                live = 0
                for s, bm, w in zip(top_l[i], beam_l[i], word_l[i]):
                    if s == -math.inf or live == k:
                        break
                    if w == eos:
                        seq = history[i * k + bm].tolist()
                        finished[i].append((s / (len(seq) + 1) ** alpha, seq))
                    else:
                        new_scores[i, live], new_src[i, live], new_word[i, live] = s, bm, w
                        live += 1
                finished[i].sort(key=lambda c: -c[0])
                del finished[i][k:]
                if len(finished[i]) == k and bound(float(new_scores[i].max())) <= finished[i][-1][0]:
                    new_scores[i] = -math.inf  # settled: no live beam can enter its n-best any more
            src = (new_src + torch.arange(b, device=dev)[:, None] * k).view(-1)
            history = torch.cat([history[src], new_word.view(-1, 1)], dim=1)
            state = tuple(s[src] for s in state)
            feed, scores, tokens = feed[src], new_scores, new_word.view(-1)
            if bool((scores == -math.inf).all()):
                break
        results = []
        for i in range(b):
            live = [
                (float(scores[i, j]) / history.size(1) ** alpha, history[i * k + j].tolist())
                for j in range(k)
                if scores[i, j] > -math.inf
            ]  # ran out of max_len before <eos>
            results.append(sorted(finished[i] + live, key=lambda c: -c[0])[:k])
        return results

    @torch.no_grad()
    def attention_map(self, feats: torch.Tensor, caption: Sequence[int], bos: int, eos: int) -> torch.Tensor:
        """Attention weights (len(caption) + 1, T) over the encoder steps while writing ``caption``
        + ``<eos>`` for one video ``feats`` (1, 80, D); row ``i`` is the step that writes word ``i``."""
        enc, keys, state = self.encode(feats)
        feed, rows = self.init_feed(state), []
        for w in [bos, *caption]:
            _, feed, state = self.step(torch.tensor([w], device=feats.device), feed, state, enc, keys)
            rows.append(self.attn.last_weights[0])
        return torch.stack(rows)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
