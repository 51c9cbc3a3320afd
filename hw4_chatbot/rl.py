"""Policy-gradient fine-tuning (REINFORCE with a moving-average baseline) on simulated dialogues.

Each episode starts from a real query; two copies of the policy then take ``rl.turns`` turns, each
replying to the previous turn by sampling. Every turn is scored by :class:`DialogueRewards` (each
component standardised by running statistics when ``rl.normalize``); the maximum-likelihood loss on
real pairs, an entropy bonus and a KL penalty to the initial model (``rl.kl_weight``) are mixed in,
gradients are clipped, and the learning rate follows ``train.lr_schedule``. The checkpoint kept as best is
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
from dataclasses import dataclass

import torch

from common.budget import TimeBudget
from common.checkpoint import make_state
from common.config import config_to_dict
from common.distributed import DistEnv, all_reduce_mean, average_gradients
from common.errors import UserError
from common.setup import Run
from common.vocab import Vocab
from hw4_chatbot import HOMEWORK
from hw4_chatbot.config import Config, load_chatbot
from hw4_chatbot.data import PairBatches, encode_query, load_splits
from hw4_chatbot.decode import DecodeConfig
from hw4_chatbot.evaluate import distinct, dull_rate, perplexity, top_reply_share
from hw4_chatbot.model import Seq2Seq, reply_nll
from hw4_chatbot.policy import (
    MovingBaseline,
    dropout_off,
    reinforce_loss,
    reply_logprob_entropy,
    sample_replies,
    simulate,
)
from hw4_chatbot.rewards import DialogueRewards, RewardWeights, RunningNorm
from hw4_chatbot.s2s import schedule_lr


@dataclass
class Policy:
    """The models of an RL run: the policy (the initial S2S model, trained) and its vocabulary; the
    optional frozen backward model p(query | reply) with its own vocabulary."""

    model: Seq2Seq
    vocab: Vocab
    backward: Seq2Seq | None = None
    backward_vocab: Vocab | None = None


@dataclass
class LoopState:
    """What changes as RL runs and a checkpoint records, so a resumed run continues bit-exact."""

    rng: random.Random  # which training pairs start each episode
    baseline: MovingBaseline
    norm: RunningNorm | None  # running statistics of the reward components (rl.normalize)
    step: int = 0
    best: float = -math.inf  # best validation score
    start_ppl: float = math.inf  # the initial model's validation perplexity
    seconds: float = 0.0  # training time of the runs this one resumes (the learning-rate schedule's clock)


def load_policy(cfg: Config, device: torch.device) -> tuple[Policy, Config]:
    """The initial S2S model (and the backward model), and ``cfg`` with that model's ``model`` and
    ``data`` sections: the policy keeps its architecture and data split, and the run records them."""
    if not cfg.rl.init_checkpoint:
        raise UserError("rl.init_checkpoint is empty: pass the S2S best.pt (--set rl.init_checkpoint=PATH)")
    init = load_chatbot(cfg.rl.init_checkpoint, device)
    if init.kind != "s2s":
        raise UserError(f"{cfg.rl.init_checkpoint}: is a {init.kind} checkpoint, RL starts from an s2s one")
    policy = Policy(init.model, init.vocab)
    if cfg.rl.w_backward and not cfg.rl.backward_checkpoint:
        raise UserError("rl.w_backward > 0 needs a backward model: set rl.backward_checkpoint=PATH or rl.w_backward=0")
    if cfg.rl.backward_checkpoint:
        back = load_chatbot(cfg.rl.backward_checkpoint, device)
        if back.kind != "backward":
            raise UserError(f"{cfg.rl.backward_checkpoint}: is a {back.kind} checkpoint, not a backward model")
        policy.backward, policy.backward_vocab = back.model.requires_grad_(False), back.vocab
    return policy, dataclasses.replace(cfg, model=init.cfg.model, data=init.cfg.data)


def build_rewards(cfg: Config, policy: Policy) -> DialogueRewards:
    """Rewards scored by a frozen copy of the initial model (and the backward model)."""
    reference = copy.deepcopy(policy.model).eval().requires_grad_(False)
    rl = cfg.rl
    weights = RewardWeights(rl.w_ease, rl.w_flow, rl.w_coherence, rl.w_backward, rl.w_dull, rl.w_repeat, rl.w_novelty)
    return DialogueRewards(
        reference,
        policy.backward,
        policy.vocab,
        weights,
        cfg.data.max_reply_len,
        backward_vocab=policy.backward_vocab,
        repeat_window=rl.repeat_window,
    )


def restore(
    run: Run[Config], policy: Policy, opt: torch.optim.Optimizer, rewards: DialogueRewards, valid: PairBatches
) -> LoopState:
    """A fresh loop state, or the resumed run's (weights, optimizer, episode RNG, baseline, reward
    statistics and the repeat penalty's memory)."""
    cfg, rank = run.cfg, run.env.rank
    loop = LoopState(
        random.Random(cfg.seed + rank),
        MovingBaseline(cfg.rl.baseline_decay),
        RunningNorm(cfg.rl.baseline_decay) if cfg.rl.normalize else None,
    )
    if run.resume_state is None:
        loop.start_ppl = perplexity(policy.model, valid, run.device)
        return loop
    saved = run.restore(models={"model": policy.model}, optimizers={"opt": opt})
    extra = saved["extra"]
    loop.step, loop.best, loop.start_ppl = saved["step"], extra["best_score"], extra["start_ppl"]
    loop.seconds = extra.get("train_seconds", 0.0)
    loop.rng.setstate(_random_state(extra["episode_rng"]))  # rank 0's: the one saved
    if rank > 0:  # the other ranks' states were not saved; they must still draw other episodes
        loop.rng = random.Random(f"{cfg.seed}-{rank}-{loop.step}")
    loop.baseline.value = extra["baseline"]
    if loop.norm is not None:
        loop.norm.stats = extra.get("reward_stats", {})
    rewards.repeat.recent.extend(tuple(r) for r in extra.get("recent_replies", []))
    return loop


def rl_step(
    cfg: Config,
    policy: Policy,
    opt: torch.optim.Optimizer,
    rewards: DialogueRewards,
    train: PairBatches,
    loop: LoopState,
    env: DistEnv,
) -> tuple[float, list[dict[str, torch.Tensor]], float]:
    """One policy-gradient step on a batch of simulated episodes: the loss, each turn's rewards and
    the mean KL per token from the policy to the initial model on the sampled replies."""
    vocab, device = policy.vocab, next(policy.model.parameters()).device
    sampling = DecodeConfig(
        strategy="sample",
        max_len=cfg.data.max_reply_len,
        no_repeat_ngram=0,
        temperature=cfg.rl.temperature,
        top_k=cfg.rl.top_k,
    )
    idx = loop.rng.sample(range(len(train)), cfg.rl.batch_size)
    start = [train.src[i][:-1] for i in idx]
    episode = simulate(policy.model, start, cfg.rl.turns, vocab, sampling, cfg.data.max_query_len)
    queries = [q for turn in episode for q in turn[0]]
    replies = [r for turn in episode for r in turn[1]]
    parts = [rewards(q, r, own, loop.norm) for q, r, own in episode]
    total = torch.cat([p["total"] for p in parts])
    advantage = loop.baseline.advantage(total)
    rl, max_len = cfg.rl, cfg.data.max_reply_len
    loss, kl = reinforce_loss(
        policy.model, queries, replies, advantage, vocab, max_len, rl.entropy, rewards.forward, rl.kl_weight
    )
    if cfg.rl.ml_weight:
        ml, _ = reply_nll(policy.model, train.batch(idx, device), vocab.pad_id)
        loss = loss + cfg.rl.ml_weight * ml
    opt.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(policy.model, env)  # episodes differ per process; the update must not
    torch.nn.utils.clip_grad_norm_(policy.model.parameters(), cfg.train.clip)
    opt.step()
    loop.step += 1
    return loss.item(), parts, float(kl.mean())


def evaluate_and_save(
    run: Run[Config],
    policy: Policy,
    opt: torch.optim.Optimizer,
    rewards: DialogueRewards,
    valid: PairBatches,
    valid_queries: list[list[int]],
    loop: LoopState,
    budget: TimeBudget,
) -> None:
    """Score the greedy replies to the validation queries; save a checkpoint, kept as best if its score
    is the best so far among those whose perplexity rose at most ``rl.max_ppl_rise``."""
    cfg, vocab = run.cfg, policy.vocab
    ppl = perplexity(policy.model, valid, run.device)
    greedy = DecodeConfig(strategy="greedy", max_len=cfg.data.max_reply_len)
    replies = sample_replies(policy.model, valid_queries, vocab, greedy, cfg.data.max_query_len)
    parts = rewards(valid_queries, replies, None, remember=False)  # raw components, for the log
    with torch.no_grad(), dropout_off(policy.model):
        kl = reply_logprob_entropy(
            policy.model, valid_queries, replies, vocab, cfg.data.max_reply_len, rewards.forward
        )[3]
    words = [vocab.decode(r) for r in replies]
    d2, dull, top = distinct(words, 2), dull_rate(words), top_reply_share(words)
    score = d2 - dull - top  # the top reply's share catches a catch-all reply missing from the dull list
    ok = ppl <= loop.start_ppl * (1 + cfg.rl.max_ppl_rise)
    is_best = ok and score > loop.best
    loop.best = max(loop.best, score) if ok else loop.best
    run.log.log(
        loop.step,
        valid_ppl=ppl,
        valid_score=score,
        valid_reward=float(parts["total"].mean()),
        distinct2=d2,
        dull=dull,
        top_share=top,
        valid_kl=float(kl.mean()),
        **{f"valid_{k}": float(v.mean()) for k, v in parts.items() if k != "total"},
    )
    run.say(
        f"step {loop.step}: valid ppl {ppl:.2f} (start {loop.start_ppl:.2f}), greedy distinct-2 {d2:.3f}, "
        f"dull {dull:.1%}, top reply {top:.1%}, score {score:.3f}{' *best*' if is_best else ''}"
    )
    if not run.env.is_main:
        return
    extra = {
        "vocab": vocab.itos,
        "kind": "rl",
        "best_score": loop.best,
        "start_ppl": loop.start_ppl,
        "valid_ppl": ppl,
        "baseline": loop.baseline.value,
        "reward_stats": loop.norm.stats if loop.norm is not None else {},
        "recent_replies": [list(r) for r in rewards.repeat.recent],
        "episode_rng": loop.rng.getstate(),
        "train_seconds": loop.seconds + budget.elapsed,
    }
    models = {"model": policy.model}
    if policy.backward is not None:  # embedded so predict's MMI reranking needs only this file
        extra |= {"backward_model": config_to_dict(policy.backward.cfg), "backward_vocab": policy.backward_vocab.itos}
        models["backward"] = policy.backward
    run.ckpt.save(
        make_state(
            HOMEWORK, models=models, optimizers={"opt": opt}, step=loop.step, config=config_to_dict(cfg), extra=extra
        ),
        is_best,
    )


def train_rl(run: Run[Config]) -> None:
    policy, run.cfg = load_policy(run.cfg, run.device)  # before the run records its config
    cfg = run.cfg
    policy.model.train()
    rewards = build_rewards(cfg, policy)
    splits = load_splits(cfg.data)
    train = PairBatches(splits.train, policy.vocab, cfg.data.max_query_len)
    valid = PairBatches(splits.valid, policy.vocab)
    if len(train) < cfg.rl.batch_size:
        raise UserError(f"rl.batch_size={cfg.rl.batch_size} is more than the {len(train)} training pairs")
    valid_queries = [encode_query(policy.vocab, q, cfg.data.max_query_len)[:-1] for q, _ in splits.valid]
    valid_queries = valid_queries[: cfg.rl.valid_queries]
    opt = torch.optim.Adam(policy.model.parameters(), lr=cfg.train.lr)
    loop = restore(run, policy, opt, rewards, valid)
    run.say(
        f"RL from {cfg.rl.init_checkpoint}: start valid perplexity {loop.start_ppl:.2f}, backward model "
        f"{'yes' if policy.backward is not None else 'none'}"
    )
    budget = TimeBudget(cfg.train.max_minutes, run.env)
    eval_every = cfg.train.eval_every or 50
    if run.resume_state is None:
        evaluate_and_save(run, policy, opt, rewards, valid, valid_queries, loop, budget)  # RL must beat the start
    while not budget.spent() and not (cfg.train.max_steps and loop.step >= cfg.train.max_steps):
        lr = schedule_lr(opt, cfg.train, loop.step, all_reduce_mean(loop.seconds + budget.elapsed, run.env), 0.0)
        loss, parts, kl = rl_step(cfg, policy, opt, rewards, train, loop, run.env)
        if loop.step % 10 == 0:
            names = sorted({k for p in parts for k in p if k != "total"})
            run.log.log(
                loop.step,
                loss=loss,
                lr=lr,
                reward=float(torch.cat([p["total"] for p in parts]).mean()),
                kl=kl,
                kl_penalty=cfg.rl.kl_weight * kl,
                **{k: float(torch.cat([p[k] for p in parts if k in p]).mean()) for k in names},
            )
        if loop.step % eval_every == 0:
            evaluate_and_save(run, policy, opt, rewards, valid, valid_queries, loop, budget)
    if loop.step % eval_every:
        evaluate_and_save(run, policy, opt, rewards, valid, valid_queries, loop, budget)
    run.say(
        f"done: best validation score (distinct-2 - dull - top reply share) {loop.best:.3f}; "
        f"checkpoints in {run.run_dir}"
    )


def _random_state(saved: tuple) -> tuple:
    """``random.Random.getstate()`` as it was saved (a checkpoint may turn its tuples into lists)."""
    version, internal, gauss = saved
    return version, tuple(internal), gauss
