"""The policy-gradient pieces of RL fine-tuning: sampled dialogues, the REINFORCE loss with its
entropy bonus and KL penalty to a reference model, and the moving-average reward baseline.

``rl.py`` runs the training loop around them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from common.batching import pad_batch
from common.vocab import Vocab
from hw4_chatbot.decode import DecodeConfig, greedy_or_sample
from hw4_chatbot.model import Seq2Seq
from hw4_chatbot.rewards import as_source, as_target


def sample_replies(
    policy: Seq2Seq, queries: list[list[int]], vocab: Vocab, cfg: DecodeConfig, max_query_len: int
) -> list[list[int]]:
    """One sampled reply per query (dropout off, no gradient: the log-probs are recomputed after)."""
    was = policy.training
    policy.eval()
    src, src_len = pad_batch([as_source(q, vocab.eos_id, max_query_len) for q in queries], vocab.pad_id)
    out = greedy_or_sample(
        policy,
        src.to(next(policy.parameters()).device),
        src_len,
        cfg,
        vocab.bos_id,
        vocab.eos_id,
        sample=cfg.strategy == "sample",
    )
    policy.train(was)
    return out


@contextmanager
def dropout_off(model: torch.nn.Module) -> Iterator[None]:
    """The model's ``nn.Dropout`` layers in eval mode, the rest as it is (a cuDNN RNN must stay in
    training mode for its backward pass): the policy scored as it sampled, and on the frozen
    reference's footing for the KL term."""
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.training]
    for m in drops:
        m.eval()
    try:
        yield
    finally:
        for m in drops:
            m.train()


def reply_logprob_entropy(
    policy: Seq2Seq,
    queries: list[list[int]],
    replies: list[list[int]],
    vocab: Vocab,
    max_len: int,
    reference: Seq2Seq | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per reply: summed log p(reply | query), its token count (``<eos>`` included), the mean entropy
    of the policy's next-token distribution over those positions, and the mean KL divergence per
    token from it to ``reference``'s over the whole vocabulary (zeros without a reference)."""
    device = next(policy.parameters()).device
    src, src_len = pad_batch([as_source(q, vocab.eos_id, max_len) for q in queries], vocab.pad_id)
    tgt, _ = pad_batch([as_target(r, vocab.bos_id, vocab.eos_id, max_len) for r in replies], vocab.pad_id)
    src, tgt = src.to(device), tgt.to(device)
    logp_all = torch.log_softmax(policy(src, src_len, tgt[:, :-1]).float(), dim=-1)  # (B, T, V)
    mask = (tgt[:, 1:] != vocab.pad_id).float()
    logp = logp_all.gather(-1, tgt[:, 1:].unsqueeze(-1)).squeeze(-1) * mask
    p = logp_all.exp()
    entropy = -(p * logp_all).sum(-1) * mask
    kl = torch.zeros_like(entropy)
    if reference is not None:
        with torch.no_grad():
            ref_logp = torch.log_softmax(reference(src, src_len, tgt[:, :-1]).float(), dim=-1)
        kl = (p * (logp_all - ref_logp)).sum(-1) * mask
    n = mask.sum(1)
    return logp.sum(1), n, entropy.sum(1) / n, kl.sum(1) / n


def reinforce_loss(
    policy: Seq2Seq,
    queries: list[list[int]],
    replies: list[list[int]],
    advantage: torch.Tensor,
    vocab: Vocab,
    max_len: int,
    entropy_weight: float = 0.0,
    reference: Seq2Seq | None = None,
    kl_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE per token with an entropy bonus and a KL penalty; the loss and each reply's KL.

    ``-mean(advantage * log p(reply | query) / len) - entropy_weight * mean entropy
    + kl_weight * mean KL(policy || reference)``, the KL per token over the vocabulary at every
    position of the sampled replies (Jaques et al. 2017; Ziegler et al. 2019 subtract its sampled
    estimate from the reward; the exact sum has no sampling noise and its own gradient).

    Dividing by the length keeps this term on the scale of the per-token maximum-likelihood loss it
    is mixed with (summed log-probs made RL ~12x stronger and collapsed the policy in 30 steps). The
    entropy bonus keeps the sampling distribution from narrowing onto a few replies; the KL penalty
    keeps the policy near the maximum-likelihood model, whose replies are fluent but dull.
    """
    with dropout_off(policy):
        ref = reference if kl_weight else None
        logp, n, entropy, kl = reply_logprob_entropy(policy, queries, replies, vocab, max_len, ref)
    pg = -(advantage.detach().to(logp.device) * logp / n).mean()
    return pg - entropy_weight * entropy.mean() + kl_weight * kl.mean(), kl.detach()


class MovingBaseline:
    """An exponential moving average of the reward; advantages are scaled by the batch's spread."""

    def __init__(self, decay: float, value: float | None = None):
        self.decay, self.value = decay, value

    def advantage(self, reward: torch.Tensor) -> torch.Tensor:
        mean = float(reward.mean())
        self.value = mean if self.value is None else self.decay * self.value + (1 - self.decay) * mean
        return (reward - self.value) / (reward.std() + 1e-6 if reward.numel() > 1 else 1.0)


def simulate(
    policy: Seq2Seq, start: list[list[int]], turns: int, vocab: Vocab, cfg: DecodeConfig, max_len: int
) -> list[tuple[list[list[int]], list[list[int]], list[list[int]] | None]]:
    """``turns`` turns from ``start``: per turn ``(queries, replies, that speaker's previous turn)``."""
    history = [start]
    episode = []
    for _ in range(turns):
        replies = sample_replies(policy, history[-1], vocab, cfg, max_len)
        own = history[-2] if len(history) >= 2 else None  # the same agent spoke two turns ago
        episode.append((history[-1], replies, own))
        history.append(replies)
    return episode
