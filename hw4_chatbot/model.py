"""Encoder-decoder with Luong attention (GRU or LSTM), one embedding shared by encoder, decoder and output.

Luong-style attention (the decoder's own state attends over the encoder outputs, no input feeding)
lets training run the decoder RNN over the whole reply in one call, which is several times faster
on a CPU than a Python loop over time steps; decoding still steps one token at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@dataclass
class ModelConfig:
    cell: Literal["gru", "lstm"] = "gru"
    emb: int = 256
    hidden: int = 256  # decoder size; the bidirectional encoder has hidden/2 per direction
    layers: int = 1
    dropout: float = 0.2


@dataclass
class Memory:
    """What the decoder attends to: encoder outputs ``(B, S, H)`` and their mask ``(B, S)``."""

    outputs: torch.Tensor
    mask: torch.Tensor

    def repeat(self, k: int) -> Memory:
        """Each row ``k`` times in a row (beam search expands ``B`` into ``B*k``)."""
        return Memory(self.outputs.repeat_interleave(k, 0), self.mask.repeat_interleave(k, 0))


class Seq2Seq(nn.Module):
    def __init__(self, vocab_size: int, cfg: ModelConfig, pad_id: int = 0):
        super().__init__()
        if cfg.hidden % 2:
            raise ValueError("model.hidden must be even (two encoder directions of hidden/2)")
        self.cfg, self.pad_id = cfg, pad_id
        rnn = nn.GRU if cfg.cell == "gru" else nn.LSTM
        drop = cfg.dropout if cfg.layers > 1 else 0.0
        self.embed = nn.Embedding(vocab_size, cfg.emb, padding_idx=pad_id)
        self.encoder = rnn(cfg.emb, cfg.hidden // 2, cfg.layers, batch_first=True, bidirectional=True, dropout=drop)
        self.decoder = rnn(cfg.emb, cfg.hidden, cfg.layers, batch_first=True, dropout=drop)
        self.attn = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.combine = nn.Linear(2 * cfg.hidden, cfg.hidden)
        self.to_emb = nn.Linear(cfg.hidden, cfg.emb)  # output layer is tied to the embedding
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.drop = nn.Dropout(cfg.dropout)

    # -- encoder ---------------------------------------------------------------------------------
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Memory, State]:
        """``src (B, S)`` → memory and the decoder's initial state (both directions' final states)."""
        x = self.drop(self.embed(src))
        packed = pack_padded_sequence(x, src_len.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, H)
        mask = src != self.pad_id

        def merge(h: torch.Tensor) -> torch.Tensor:  # (L*2, B, H/2) -> (L, B, H)
            h = h.view(self.cfg.layers, 2, h.size(1), h.size(2))
            return torch.cat([h[:, 0], h[:, 1]], dim=-1).contiguous()

        state = (merge(state[0]), merge(state[1])) if isinstance(state, tuple) else merge(state)
        return Memory(out, mask), state

    def summary(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        """A fixed vector per sentence (mean of encoder outputs), for the information-flow reward."""
        memory, _ = self.encode(src, src_len)
        m = memory.mask.unsqueeze(-1).float()
        return (memory.outputs * m).sum(1) / m.sum(1).clamp(min=1)

    # -- decoder ---------------------------------------------------------------------------------
    def _attend(self, h: torch.Tensor, memory: Memory) -> torch.Tensor:
        """``h (B, T, H)`` → logits ``(B, T, V)`` through attention over ``memory``."""
        scores = torch.bmm(self.attn(h), memory.outputs.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))
        context = torch.bmm(torch.softmax(scores, dim=-1), memory.outputs)  # (B, T, H)
        out = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        out = self.to_emb(self.drop(out))
        return F.linear(out, self.embed.weight, self.out_bias)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``(B, T, V)`` for every position of ``tgt_in (B, T)``."""
        memory, state = self.encode(src, src_len)
        h, _ = self.decoder(self.drop(self.embed(tgt_in)), state)
        return self._attend(h, memory)

    def step(self, tokens: torch.Tensor, state: State, memory: Memory) -> tuple[torch.Tensor, State]:
        """One decoding step: ``tokens (B,)`` → log-probabilities ``(B, V)`` and the new state."""
        h, state = self.decoder(self.embed(tokens).unsqueeze(1), state)
        return torch.log_softmax(self._attend(h, memory).squeeze(1).float(), dim=-1), state

    def sequence_logprob(
        self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log p(tgt | src) per row ``(B,)`` and the number of target tokens ``(B,)``."""
        logits = self(src, src_len, tgt_in).float()
        logp = -F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=self.pad_id, reduction="none")
        return logp.view_as(tgt_out).sum(1), (tgt_out != self.pad_id).sum(1)


def reply_nll(model: nn.Module, batch: dict[str, torch.Tensor], pad_id: int) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy of the reply given the query, and the token count.

    ``model`` is a :class:`Seq2Seq` or its DDP wrapper (called, never reached into, so gradients sync).
    """
    logits = model(batch["src"], batch["src_len"], batch["tgt_in"])
    loss = F.cross_entropy(logits.float().flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=pad_id)
    return loss, int((batch["tgt_out"] != pad_id).sum())


def select_state(state: State, index: torch.Tensor) -> State:
    """Rows ``index`` of a recurrent state (reordering beams)."""
    if isinstance(state, tuple):
        return state[0][:, index], state[1][:, index]
    return state[:, index]


def repeat_state(state: State, k: int) -> State:
    if isinstance(state, tuple):
        return state[0].repeat_interleave(k, 1), state[1].repeat_interleave(k, 1)
    return state.repeat_interleave(k, 1)
