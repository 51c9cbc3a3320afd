"""Policy-gradient fine-tuning (REINFORCE with a moving-average baseline) on simulated dialogues.

Each episode starts from a real query; two copies of the policy then take ``rl.turns`` turns, each
replying to the previous turn by sampling. Every turn is scored by :class:`DialogueRewards` (each
component standardised by running statistics when ``rl.normalize``); the maximum-likelihood loss on
real pairs and an entropy bonus are mixed in, gradients are clipped. The checkpoint kept as best is
the one with the highest validation score ``distinct-2 - dull rate - top reply share`` of its greedy
replies (the project's goals; the raw reward kept a checkpoint that was duller than the start, and without
the top reply's share a catch-all reply outside the dull list went unnoticed) among those whose
validation perplexity rose by at most ``rl.max_ppl_rise`` over the starting model's.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random

import torch

from common.batching import pad_batch
from common.budget import TimeBudget
from common.checkpoint import make_state
from common.config import config_to_dict
from common.distributed import average_gradients
from common.errors import UserError
from common.setup import Run
from common.vocab import Vocab
from hw4_chatbot.config import HOMEWORK, ChatConfig, load_chatbot
from hw4_chatbot.data import PairBatches, encode_query, load_splits
from hw4_chatbot.decode import DecodeConfig, greedy_or_sample
from hw4_chatbot.evaluate import distinct, dull_rate, perplexity, top_reply_share
from hw4_chatbot.model import Seq2Seq
from hw4_chatbot.rewards import DialogueRewards, RewardWeights, RunningNorm, as_source, as_target
from hw4_chatbot.train import ml_loss


def sample_replies(policy: Seq2Seq, queries: list[list[int]], vocab: Vocab, cfg: DecodeConfig,
                   max_query_len: int) -> list[list[int]]:
    """One sampled reply per query (dropout off, no gradient: the log-probs are recomputed after)."""
    was = policy.training
    policy.eval()
    src, src_len = pad_batch([as_source(q, vocab.eos_id, max_query_len) for q in queries], vocab.pad_id)
    out = greedy_or_sample(policy, src.to(next(policy.parameters()).device), src_len, cfg, vocab.bos_id,
                           vocab.eos_id, sample=cfg.strategy == "sample")
    policy.train(was)
    return out


def reply_logprob_entropy(policy: Seq2Seq, queries: list[list[int]], replies: list[list[int]], vocab: Vocab,
                          max_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per reply: summed log p(reply | query), its token count (``<eos>`` included) and the mean
    entropy of the policy's next-token distribution over those positions."""
    device = next(policy.parameters()).device
    src, src_len = pad_batch([as_source(q, vocab.eos_id, max_len) for q in queries], vocab.pad_id)
    tgt, _ = pad_batch([as_target(r, vocab.bos_id, vocab.eos_id, max_len) for r in replies], vocab.pad_id)
    src, tgt = src.to(device), tgt.to(device)
    logp_all = torch.log_softmax(policy(src, src_len, tgt[:, :-1]).float(), dim=-1)  # (B, T, V)
    mask = (tgt[:, 1:] != vocab.pad_id).float()
    logp = logp_all.gather(-1, tgt[:, 1:].unsqueeze(-1)).squeeze(-1) * mask
    entropy = -(logp_all.exp() * logp_all).sum(-1) * mask
    n = mask.sum(1)
    return logp.sum(1), n, entropy.sum(1) / n


def reinforce_loss(policy: Seq2Seq, queries: list[list[int]], replies: list[list[int]], advantage: torch.Tensor,
                   vocab: Vocab, max_len: int, entropy_weight: float = 0.0) -> torch.Tensor:
    """``-mean(advantage * log p(reply | query) / len) - entropy_weight * mean entropy``: REINFORCE per token.

    Dividing by the length keeps this term on the scale of the per-token maximum-likelihood loss it
    is mixed with (summed log-probs made RL ~12x stronger and collapsed the policy in 30 steps). The
    entropy bonus keeps the sampling distribution from narrowing onto a few replies.
    """
    logp, n, entropy = reply_logprob_entropy(policy, queries, replies, vocab, max_len)
    return -(advantage.detach().to(logp.device) * logp / n).mean() - entropy_weight * entropy.mean()


class MovingBaseline:
    """An exponential moving average of the reward; advantages are scaled by the batch's spread."""

    def __init__(self, decay: float, value: float | None = None):
        self.decay, self.value = decay, value

    def advantage(self, reward: torch.Tensor) -> torch.Tensor:
        mean = float(reward.mean())
        self.value = mean if self.value is None else self.decay * self.value + (1 - self.decay) * mean
        return (reward - self.value) / (reward.std() + 1e-6 if reward.numel() > 1 else 1.0)


def simulate(policy: Seq2Seq, start: list[list[int]], turns: int, vocab: Vocab, cfg: DecodeConfig,
             max_len: int) -> list[tuple[list[list[int]], list[list[int]], list[list[int]] | None]]:
    """``turns`` turns from ``start``: per turn ``(queries, replies, that speaker's previous turn)``."""
    history = [start]
    episode = []
    for _ in range(turns):
        replies = sample_replies(policy, history[-1], vocab, cfg, max_len)
        own = history[-2] if len(history) >= 2 else None  # the same agent spoke two turns ago
        episode.append((history[-1], replies, own))
        history.append(replies)
    return episode


def train_rl(run: Run[ChatConfig]) -> None:
    cfg, device, env = run.cfg, run.device, run.env
    if not cfg.rl.init_checkpoint:
        raise UserError("rl.init_checkpoint is empty: pass the S2S best.pt (--set rl.init_checkpoint=PATH)")
    init = load_chatbot(cfg.rl.init_checkpoint, device)
    if init.kind != "s2s":
        raise UserError(f"{cfg.rl.init_checkpoint}: is a {init.kind} checkpoint, RL starts from an s2s one")
    backward, back_vocab = None, None
    if cfg.rl.backward_checkpoint:
        back = load_chatbot(cfg.rl.backward_checkpoint, device)
        if back.kind != "backward":
            raise UserError(f"{cfg.rl.backward_checkpoint}: is a {back.kind} checkpoint, not a backward model")
        backward, back_vocab = back.model.requires_grad_(False), back.vocab
    # the policy keeps the S2S model's architecture and data split (in its checkpoints; the run's
    # config.yaml keeps what was asked, so --resume compares like with like); the frozen copy scores rewards
    cfg = dataclasses.replace(cfg, model=init.cfg.model, data=init.cfg.data)
    vocab, policy = init.vocab, init.model.train()
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    weights = RewardWeights(cfg.rl.w_ease, cfg.rl.w_flow, cfg.rl.w_coherence, cfg.rl.w_backward, cfg.rl.w_dull,
                            cfg.rl.w_repeat)
    rewards = DialogueRewards(reference, backward, vocab, weights, cfg.data.max_reply_len, backward_vocab=back_vocab,
                              repeat_window=cfg.rl.repeat_window)
    norm = RunningNorm(cfg.rl.baseline_decay) if cfg.rl.normalize else None
    splits = load_splits(cfg.data)
    train, valid = PairBatches(splits.train, vocab, cfg.data.max_query_len), PairBatches(splits.valid, vocab)
    if len(train) < cfg.rl.batch_size:
        raise UserError(f"rl.batch_size={cfg.rl.batch_size} is more than the {len(train)} training pairs")
    valid_queries = [encode_query(vocab, q, cfg.data.max_query_len)[:-1] for q, _ in splits.valid]
    valid_queries = valid_queries[: cfg.rl.valid_queries]
    sampling = DecodeConfig(strategy="sample", max_len=cfg.data.max_reply_len, no_repeat_ngram=0,
                            temperature=cfg.rl.temperature, top_k=cfg.rl.top_k)
    greedy = DecodeConfig(strategy="greedy", max_len=cfg.data.max_reply_len)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.train.lr)
    baseline = MovingBaseline(cfg.rl.baseline_decay)
    step, best, ppl0 = 0, -math.inf, perplexity(policy, valid, device)
    rng = random.Random(cfg.seed + env.rank)  # which training pairs start each episode; its state is saved
    if run.resume_state:
        st = run.restore(models={"model": policy}, optimizers={"opt": opt})
        step, best, ppl0 = st["step"], st["extra"]["best_score"], st["extra"]["start_ppl"]
        rng.setstate(_random_state(st["extra"]["episode_rng"]))  # rank 0's: the one saved
        if env.rank > 0:  # the other ranks' states were not saved; they must still draw other episodes
            rng = random.Random(f"{cfg.seed}-{env.rank}-{step}")
        baseline.value = st["extra"]["baseline"]
        if norm is not None:
            norm.stats = st["extra"].get("reward_stats", {})
        rewards.repeat.recent.extend(tuple(r) for r in st["extra"].get("recent_replies", []))
    run.say(f"RL from {cfg.rl.init_checkpoint}: start valid perplexity {ppl0:.2f}, "
            f"backward model {'yes' if backward is not None else 'no (coherence uses the forward term only)'}")
    budget = TimeBudget(cfg.train.max_minutes, env)
    eval_every = cfg.train.eval_every or 50

    def validate() -> None:
        nonlocal best
        ppl = perplexity(policy, valid, device)
        replies = sample_replies(policy, valid_queries, vocab, greedy, cfg.data.max_query_len)
        parts = rewards(valid_queries, replies, None, remember=False)  # raw components, for the log
        words = [vocab.decode(r) for r in replies]
        d2, dull, top = distinct(words, 2), dull_rate(words), top_reply_share(words)
        score = d2 - dull - top  # the top reply's share catches a catch-all reply missing from the dull list
        ok = ppl <= ppl0 * (1 + cfg.rl.max_ppl_rise)
        is_best = ok and score > best
        best = max(best, score) if ok else best
        run.log.log(step, valid_ppl=ppl, valid_score=score, valid_reward=float(parts["total"].mean()), distinct2=d2,
                    dull=dull, top_share=top,
                    **{f"valid_{k}": float(v.mean()) for k, v in parts.items() if k != "total"})
        run.say(f"step {step}: valid ppl {ppl:.2f} (start {ppl0:.2f}), greedy distinct-2 {d2:.3f}, dull {dull:.1%}, "
                f"top reply {top:.1%}, score {score:.3f}{' *best*' if is_best else ''}")
        if not env.is_main:
            return
        extra = {"vocab": vocab.itos, "kind": "rl", "best_score": best, "start_ppl": ppl0, "valid_ppl": ppl,
                 "baseline": baseline.value, "reward_stats": norm.stats if norm is not None else {},
                 "recent_replies": [list(r) for r in rewards.repeat.recent], "episode_rng": rng.getstate()}
        if backward is not None:  # embedded so predict's MMI reranking needs only this file
            extra |= {"backward_model": config_to_dict(backward.cfg), "backward_vocab": back_vocab.itos}
        models = {"model": policy} | ({"backward": backward} if backward is not None else {})
        run.ckpt.save(make_state(HOMEWORK, models=models, optimizers={"opt": opt}, step=step,
                                 config=config_to_dict(cfg), extra=extra), is_best)

    if not run.resume_state:
        validate()  # the starting point is a candidate too: RL must beat it to be kept
    while not budget.spent() and not (cfg.train.max_steps and step >= cfg.train.max_steps):
        idx = rng.sample(range(len(train)), cfg.rl.batch_size)
        start = [train.src[i][:-1] for i in idx]
        episode = simulate(policy, start, cfg.rl.turns, vocab, sampling, cfg.data.max_query_len)
        queries = [q for turn in episode for q in turn[0]]
        replies = [r for turn in episode for r in turn[1]]
        parts = [rewards(q, r, own, norm) for q, r, own in episode]
        total = torch.cat([p["total"] for p in parts])
        loss = reinforce_loss(policy, queries, replies, baseline.advantage(total), vocab, cfg.data.max_reply_len,
                              cfg.rl.entropy)
        if cfg.rl.ml_weight:
            ml, _ = ml_loss(policy, train.batch(idx, device), vocab.pad_id)
            loss = loss + cfg.rl.ml_weight * ml
        opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(policy, env)  # episodes differ per process; the update must not
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.train.clip)
        opt.step()
        step += 1
        if step % 10 == 0:
            names = {k for p in parts for k in p if k != "total"}
            run.log.log(step, loss=loss.item(), reward=float(total.mean()),
                        **{k: float(torch.cat([p[k] for p in parts if k in p]).mean()) for k in sorted(names)})
        if step % eval_every == 0:
            validate()
    if step % eval_every:
        validate()
    run.say(f"done: best validation score (distinct-2 - dull - top reply share) {best:.3f}; "
            f"checkpoints in {run.run_dir}")


def _random_state(saved: tuple) -> tuple:
    """``random.Random.getstate()`` as it was saved (a checkpoint may turn its tuples into lists)."""
    version, internal, gauss = saved
    return version, tuple(internal), gauss
