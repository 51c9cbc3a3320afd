"""The three rewards of Li et al. (2016), computed in batches with frozen models.

- ease of answering: ``-mean_s log p_fwd(s | reply) / len(s)`` over a list of dull replies ``s``;
- information flow: ``-log cos(own turn, own previous turn)`` on encoder summaries;
- semantic coherence: ``log p_fwd(reply | query) / len + log p_back(query | reply) / len``.

Additions for short CPU runs (see docs/RESULTS.md, HW4): the backward half of coherence on its
own weight (the forward half favours the most generic reply), a direct dull-reply penalty, a
repeat penalty and a bigram-novelty reward (both over the batch and the recent samples), and a
running per-component standardisation so that no term steers just because its spread is largest.
"""

from __future__ import annotations

from collections import Counter, deque
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


def pair_logprob(
    model: Seq2Seq, sources: list[list[int]], targets: list[list[int]], vocab: Vocab, max_len: int, grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
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
    coherence: float = 0.5  # both halves, as in Li et al.
    backward: float = 0.0  # the backward half alone: log p_back(query | reply) / len
    dull: float = 0.0  # weight of -dull_penalty(reply)
    repeat: float = 0.0  # weight of -RepeatPenalty(replies): a reply that many recent replies repeat
    novelty: float = 0.0  # weight of bigram_novelty(replies): a reply made of bigrams few recent replies use


def dull_penalty(reply: list[int], dull: set[tuple[int, ...]], cores: list[tuple[int, ...]]) -> float:
    """1 for a reply that is a dull reply, 0.5 for one that contains a dull reply's core, else 0.

    A core is a dull reply without its final punctuation, kept only when it has at least 3 tokens
    ("i don't know" inside "well , i don't know , sir ."); shorter cores ("what") would hit ordinary
    replies. Without the partial penalty the policy dodges the list by padding a dull reply.
    """
    if tuple(reply) in dull:
        return 1.0
    for core in cores:
        n = len(core)
        if any(tuple(reply[i : i + n]) == core for i in range(len(reply) - n + 1)):
            return 0.5
    return 0.0


class RepeatPenalty:
    """How common each reply is among the current batch and the last ``window`` sampled replies.

    penalty = (share of that pool equal to the reply + share of it starting with the same first
    ``prefix`` tokens) / 2; the pool counts the reply itself. A catch-all reply ("okay .") is frequent
    whatever its words, so, unlike a fixed dull list, this cannot be dodged by moving to a new one.
    ``__call__`` adds the batch to the window afterwards unless ``remember=False`` (validation).
    """

    def __init__(self, window: int = 256, prefix: int = 3):
        self.prefix = prefix
        self.recent: deque[tuple[int, ...]] = deque(maxlen=window)

    def __call__(self, replies: list[list[int]], remember: bool = True) -> torch.Tensor:
        batch = [tuple(r) for r in replies]
        pool = list(self.recent) + batch
        same = Counter(pool)
        heads = Counter(r[: self.prefix] for r in pool)
        n = len(pool)
        out = torch.tensor([(same[r] + heads[r[: self.prefix]]) / (2 * n) for r in batch])
        if remember:
            self.recent.extend(batch)
        return out


def bigram_novelty(replies: list[list[int]], pool: list[tuple[int, ...]]) -> torch.Tensor:
    """Per reply, the mean of ``1 / count`` over its bigrams, counted in ``pool`` (which holds it).

    Summed over every bigram of the pool these credits give its number of distinct bigrams, so a
    reply whose mean credit beats the pool's distinct-2 raises it: 1 for a reply whose bigrams no
    other reply used, near 0 for one built from the commonest ("i don't", "don't know"). A reply of
    fewer than two tokens has no bigram and gets 0.
    """
    counts = Counter(g for r in pool for g in zip(r, r[1:]))
    out = []
    for r in replies:
        grams = list(zip(r, r[1:]))
        out.append(sum(1 / counts[g] for g in grams) / len(grams) if grams else 0.0)
    return torch.tensor(out)


class RunningNorm:
    """Per-component running mean and variance (exponential moving averages of batch statistics).

    ``__call__`` updates the statistics with the batch, then returns ``(x - mean) / std`` clipped to
    [-5, 5]: every reward component enters the weighted total on the same scale, so the weights mean
    what they say (the clip stops a rare event, e.g. the first dull reply, from swamping a batch).
    """

    def __init__(self, decay: float = 0.95):
        self.decay = decay
        self.stats: dict[str, list[float]] = {}  # name -> [mean, var]

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        mean, var = float(x.mean()), float(x.var()) if x.numel() > 1 else 0.0
        if name in self.stats:
            m, v = self.stats[name]
            mean, var = self.decay * m + (1 - self.decay) * mean, self.decay * v + (1 - self.decay) * var
        self.stats[name] = [mean, var]
        return ((x - mean) / (var**0.5 + 1e-6)).clamp(-5.0, 5.0)


class DialogueRewards:
    """Scores turns of a simulated dialogue with the frozen forward and backward models."""

    def __init__(
        self,
        forward: Seq2Seq,
        backward: Seq2Seq | None,
        vocab: Vocab,
        weights: RewardWeights,
        max_len: int = 20,
        n_dull: int = 8,
        backward_vocab: Vocab | None = None,
        repeat_window: int = 256,
    ):
        self.repeat = RepeatPenalty(repeat_window)
        self.forward, self.backward, self.vocab, self.w, self.max_len = forward, backward, vocab, weights, max_len
        self.back_map = vocab_map(vocab, backward_vocab) if backward_vocab is not None else None
        self.dull = [vocab.encode(normalize(s)) for s in DULL_REPLIES[:n_dull]]
        every = [tuple(vocab.encode(normalize(s))) for s in DULL_REPLIES]
        self.dull_set = set(every)
        self.dull_cores = sorted({d[:-1] if d[-1] in self.punct(vocab) else d for d in every} - {()}, key=len)
        self.dull_cores = [c for c in self.dull_cores if len(c) >= 3]

    @staticmethod
    def punct(vocab: Vocab) -> set[int]:
        return {vocab.id(p) for p in (".", "?", "!", ",")}

    def dull_score(self, replies: list[list[int]]) -> torch.Tensor:
        """Minus :func:`dull_penalty` per reply (higher is better, like the other rewards)."""
        return -torch.tensor([dull_penalty(r, self.dull_set, self.dull_cores) for r in replies])

    @torch.no_grad()
    def ease(self, replies: list[list[int]]) -> torch.Tensor:
        sources = [r for r in replies for _ in self.dull]
        targets = [d for _ in replies for d in self.dull]
        logp, n = pair_logprob(self.forward, sources, targets, self.vocab, self.max_len)
        return -(logp / n).view(len(replies), len(self.dull)).mean(1)

    @torch.no_grad()
    def summaries(self, sentences: list[list[int]]) -> torch.Tensor:
        src, src_len = pad_batch([as_source(s, self.vocab.eos_id, self.max_len) for s in sentences], self.vocab.pad_id)
        return self.forward.summary(src.to(next(self.forward.parameters()).device), src_len)

    @torch.no_grad()
    def flow(self, replies: list[list[int]], previous_own: list[list[int]]) -> torch.Tensor:
        cos = F.cosine_similarity(self.summaries(replies), self.summaries(previous_own), dim=-1)
        return -torch.log(cos.clamp(min=1e-2))

    @torch.no_grad()
    def backward_score(self, queries: list[list[int]], replies: list[list[int]]) -> torch.Tensor:
        """``log p_back(query | reply) / len``: low for generic replies, which fit any query."""
        if self.backward is None:
            return torch.zeros(len(replies))
        back, m = pair_logprob(
            self.backward, remap(replies, self.back_map), remap(queries, self.back_map), self.vocab, self.max_len
        )
        return back / m

    @torch.no_grad()
    def coherence(self, queries: list[list[int]], replies: list[list[int]]) -> torch.Tensor:
        logp, n = pair_logprob(self.forward, queries, replies, self.vocab, self.max_len)
        return logp / n + self.backward_score(queries, replies).to(logp.device)

    def __call__(
        self,
        queries: list[list[int]],
        replies: list[list[int]],
        previous_own: list[list[int]] | None,
        norm: RunningNorm | None = None,
        remember: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Each reward with a nonzero weight and the weighted total, per reply ``(B,)``.

        With ``norm`` every component is standardised by its running statistics before weighting.
        Components with weight 0 are not computed (the ease term alone costs 8 forward passes).
        ``remember=False`` scores without adding the replies to the repeat penalty's window.
        """
        compute = {
            "ease": lambda: self.ease(replies),
            "coherence": lambda: self.coherence(queries, replies),
            "backward": lambda: self.backward_score(queries, replies),
            "dull": lambda: self.dull_score(replies),
            "flow": lambda: self.flow(replies, previous_own),
            # before "repeat", which adds this batch to the window both count in
            "novelty": lambda: bigram_novelty(replies, list(self.repeat.recent) + [tuple(r) for r in replies]),
            "repeat": lambda: -self.repeat(replies, remember),
        }
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros(len(replies))
        for name, fn in compute.items():
            weight = getattr(self.w, name)
            if not weight or (name == "flow" and previous_own is None):
                continue  # the first turn has no own previous turn: no information-flow reward
            parts[name] = fn().float().cpu()
            total = total + weight * (norm(name, parts[name]) if norm is not None else parts[name])
        parts["total"] = total
        return parts
