"""The three rewards of Li et al. (2016), computed in batches with frozen models.

- ease of answering: ``-mean_s log p_fwd(s | reply) / len(s)`` over a list of dull replies ``s``;
- information flow: ``-log cos(own turn, own previous turn)`` on encoder summaries;
- semantic coherence: ``log p_fwd(reply | query) / len + log p_back(query | reply) / len``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.batching import pad_batch
from common.vocab import Vocab
from hw4_chatbot.data import DULL_REPLIES, normalize
from hw4_chatbot.model import Seq2Seq


def vocab_map(source: Vocab, target: Vocab) -> list[int] | None:
    """Ids of ``source`` translated to ``target`` (``<unk>`` where missing); None when they are equal.

    Lets a backward model trained with its own vocabulary score the policy's replies.
    """
    if source == target:
        return None
    return [target.id(token) for token in source.itos]


def remap(seqs: list[list[int]], mapping: list[int] | None) -> list[list[int]]:
    return seqs if mapping is None else [[mapping[i] for i in s] for s in seqs]


def as_source(ids: list[int], eos_id: int, max_len: int) -> list[int]:
    """A reply used as the next query: cut to its last ``max_len`` tokens, ending in ``<eos>``."""
    return ids[-max_len:] + [eos_id]


def as_target(ids: list[int], bos_id: int, eos_id: int, max_len: int) -> list[int]:
    return [bos_id] + ids[:max_len] + [eos_id]


def pair_logprob(model: Seq2Seq, sources: list[list[int]], targets: list[list[int]], vocab: Vocab,
                 max_len: int, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log p(target | source) per pair and target lengths (tokens incl. ``<eos>``)."""
    device = next(model.parameters()).device
    src, src_len = pad_batch([as_source(s, vocab.eos_id, max_len) for s in sources], vocab.pad_id)
    tgt, _ = pad_batch([as_target(t, vocab.bos_id, vocab.eos_id, max_len) for t in targets], vocab.pad_id)
    src, tgt = src.to(device), tgt.to(device)
    with torch.set_grad_enabled(grad):
        return model.sequence_logprob(src, src_len, tgt[:, :-1], tgt[:, 1:])


@dataclass
class RewardWeights:
    ease: float = 0.25
    flow: float = 0.25
    coherence: float = 0.5


class DialogueRewards:
    """Scores turns of a simulated dialogue with the frozen forward and backward models."""

    def __init__(self, forward: Seq2Seq, backward: Seq2Seq | None, vocab: Vocab, weights: RewardWeights,
                 max_len: int = 20, n_dull: int = 8, backward_vocab: Vocab | None = None):
        self.forward, self.backward, self.vocab, self.w, self.max_len = forward, backward, vocab, weights, max_len
        self.back_map = vocab_map(vocab, backward_vocab) if backward_vocab is not None else None
        self.dull = [vocab.encode(normalize(s)) for s in DULL_REPLIES[:n_dull]]

    @torch.no_grad()
    def ease(self, replies: list[list[int]]) -> torch.Tensor:
        sources = [r for r in replies for _ in self.dull]
        targets = [d for _ in replies for d in self.dull]
        logp, n = pair_logprob(self.forward, sources, targets, self.vocab, self.max_len)
        return -(logp / n).view(len(replies), len(self.dull)).mean(1)

    @torch.no_grad()
    def summaries(self, sentences: list[list[int]]) -> torch.Tensor:
        src, src_len = pad_batch([as_source(s, self.vocab.eos_id, self.max_len) for s in sentences],
                                 self.vocab.pad_id)
        return self.forward.summary(src.to(next(self.forward.parameters()).device), src_len)

    @torch.no_grad()
    def flow(self, replies: list[list[int]], previous_own: list[list[int]]) -> torch.Tensor:
        cos = F.cosine_similarity(self.summaries(replies), self.summaries(previous_own), dim=-1)
        return -torch.log(cos.clamp(min=1e-2))

    @torch.no_grad()
    def coherence(self, queries: list[list[int]], replies: list[list[int]]) -> torch.Tensor:
        logp, n = pair_logprob(self.forward, queries, replies, self.vocab, self.max_len)
        score = logp / n
        if self.backward is not None:
            back, m = pair_logprob(self.backward, remap(replies, self.back_map), remap(queries, self.back_map),
                                   self.vocab, self.max_len)
            score = score + back / m
        return score

    def __call__(self, queries: list[list[int]], replies: list[list[int]],
                 previous_own: list[list[int]] | None) -> dict[str, torch.Tensor]:
        """Each reward and the weighted total, per reply ``(B,)``."""
        parts = {"ease": self.ease(replies), "coherence": self.coherence(queries, replies)}
        parts["flow"] = (self.flow(replies, previous_own) if previous_own is not None
                         else torch.zeros_like(parts["ease"]))
        parts["total"] = self.w.ease * parts["ease"] + self.w.flow * parts["flow"] + self.w.coherence * parts[
            "coherence"]
        return parts
