"""Maximum-likelihood seq2seq training: the forward model, or the backward one with data.reverse=true.

A validation pass (perplexity) and a checkpoint follow every epoch, every ``train.eval_every``
steps, and the step the time or step budget runs out; a resumed run skips the batches of its
epoch that were done, in the same seeded order. The learning rate follows ``train.lr_schedule``
over the run's progress (common.schedule); the training seconds behind a checkpoint are saved
with it, so a resumed run picks the schedule up where it stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from common.batching import BucketBatchSampler
from common.budget import TimeBudget
from common.checkpoint import make_state
from common.config import config_to_dict
from common.device import autocast
from common.distributed import all_reduce_mean, wrap_model
from common.metrics import progress
from common.schedule import lr_factor, run_progress
from common.setup import Run
from common.vocab import Vocab
from hw4_chatbot import HOMEWORK
from hw4_chatbot.config import Config, TrainConfig, model_kind
from hw4_chatbot.data import PairBatches, build_vocab, load_splits
from hw4_chatbot.evaluate import perplexity
from hw4_chatbot.model import Seq2Seq, reply_nll


@dataclass
class LoopState:
    """Where the loop is: what a checkpoint records and a resumed run starts from."""

    step: int = 0
    epoch: int = 0
    skip: int = 0  # batches of the current epoch already done before a resume
    best_ppl: float = math.inf
    seconds: float = 0.0  # training time of the runs this one resumes (the schedule's clock)


def build_data(run: Run[Config]) -> tuple[Vocab, PairBatches, PairBatches]:
    """Vocabulary (a resumed run's own), training and validation pairs."""
    cfg = run.cfg
    splits = load_splits(cfg.data)
    resume = run.resume_state
    vocab = Vocab(resume["extra"]["vocab"]) if resume else build_vocab(splits.train, cfg.data)
    train = PairBatches(splits.train, vocab, cfg.data.max_query_len)
    valid = PairBatches(splits.valid, vocab, cfg.data.max_query_len)
    run.say(
        f"{len(train)} training pairs, {len(valid)} validation pairs, vocabulary {len(vocab)} ({model_kind(cfg)} model)"
    )
    return vocab, train, valid


def restore(run: Run[Config], model: Seq2Seq, opt: torch.optim.Optimizer) -> LoopState:
    """The loop's state: a fresh one, or the resumed run's with its weights and optimizer loaded."""
    if run.resume_state is None:
        return LoopState()
    saved = run.restore(models={"model": model}, optimizers={"opt": opt})
    extra = saved["extra"]
    return LoopState(
        saved["step"], saved["epoch"], extra["batches_done"], extra["best_ppl"], extra.get("train_seconds", 0.0)
    )


def schedule_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, step: int, seconds: float, epochs: float) -> float:
    """Set and return the learning rate of the next step: ``step`` steps, ``seconds`` and ``epochs`` into the run."""
    done = run_progress(epochs, cfg.epochs, seconds, cfg.max_minutes, step, cfg.max_steps)
    lr = cfg.lr * lr_factor(cfg.lr_schedule, done, cfg.lr_warmup, cfg.lr_floor)
    for group in opt.param_groups:
        group["lr"] = lr
    return lr


def train_step(
    net: torch.nn.Module,
    model: Seq2Seq,
    opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    cfg: TrainConfig,
    pad_id: int,
) -> tuple[float, int]:
    """One optimizer step on ``batch`` through ``net`` (``model`` or its DDP wrapper): loss and tokens."""
    with autocast(batch["src"].device, cfg.amp):
        loss, tokens = reply_nll(net, batch, pad_id)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    opt.step()
    return loss.item(), tokens


def evaluate_and_save(
    run: Run[Config],
    model: Seq2Seq,
    opt: torch.optim.Optimizer,
    valid: PairBatches,
    vocab: Vocab,
    loop: LoopState,
    batches_done: int,
    seconds: float,
) -> None:
    """Validation perplexity (averaged over processes), logged; a checkpoint, kept as best if it is."""
    cfg, env = run.cfg, run.env
    ppl = all_reduce_mean(perplexity(model, valid, run.device, cfg.train.batch_size * 2), env)
    is_best = ppl < loop.best_ppl
    loop.best_ppl = min(loop.best_ppl, ppl)
    run.log.log(loop.step, epoch=loop.epoch, valid_ppl=ppl, best_ppl=loop.best_ppl)
    run.say(f"step {loop.step} epoch {loop.epoch}: valid perplexity {ppl:.2f} (best {loop.best_ppl:.2f})")
    if env.is_main:
        extra = {
            "vocab": vocab.itos,
            "kind": model_kind(cfg),
            "valid_ppl": ppl,
            "best_ppl": loop.best_ppl,
            "batches_done": batches_done,
            "train_seconds": seconds,
        }
        run.ckpt.save(
            make_state(
                HOMEWORK,
                models={"model": model},
                optimizers={"opt": opt},
                step=loop.step,
                epoch=loop.epoch,
                config=config_to_dict(cfg),
                extra=extra,
            ),
            is_best,
        )


def train_s2s(run: Run[Config]) -> None:
    cfg, device, env = run.cfg, run.device, run.env
    vocab, train, valid = build_data(run)
    model = Seq2Seq(len(vocab), cfg.model, vocab.pad_id).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    loop = restore(run, model, opt)
    net = wrap_model(model, env, device)
    sampler = BucketBatchSampler(
        train.lengths(), cfg.train.batch_size, seed=cfg.seed, rank=env.rank, world_size=env.world_size
    )
    budget = TimeBudget(cfg.train.max_minutes, env)
    stop = False
    while loop.epoch < cfg.train.epochs and not stop:
        sampler.set_epoch(loop.epoch)
        net.train()
        tokens, t0 = 0, time.perf_counter()
        bar = progress(total=len(sampler), desc=f"epoch {loop.epoch}", unit="batch", quiet=run.quiet)
        for i, idx in enumerate(sampler):
            if i < loop.skip:  # resuming inside an epoch: same seeded order, skip what was done
                continue
            # averaged so that every process steps with the same rate
            seconds = all_reduce_mean(loop.seconds + budget.elapsed, env)
            lr = schedule_lr(opt, cfg.train, loop.step, seconds, loop.epoch + i / len(sampler))
            loss, n = train_step(net, model, opt, train.batch(idx, device), cfg.train, vocab.pad_id)
            loop.step, tokens = loop.step + 1, tokens + n
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
            if loop.step % 50 == 0:
                run.log.log(
                    loop.step, epoch=loop.epoch, loss=loss, lr=lr, tokens_per_s=tokens / (time.perf_counter() - t0)
                )
            stop = budget.spent() or bool(cfg.train.max_steps and loop.step >= cfg.train.max_steps)
            if stop or (cfg.train.eval_every and loop.step % cfg.train.eval_every == 0):
                evaluate_and_save(run, model, opt, valid, vocab, loop, i + 1, loop.seconds + budget.elapsed)
                net.train()
            if stop:
                break
        bar.close()
        loop.skip = 0
        if not stop:
            loop.epoch += 1
            evaluate_and_save(run, model, opt, valid, vocab, loop, 0, loop.seconds + budget.elapsed)
    run.say(f"done: best validation perplexity {loop.best_ppl:.2f}; checkpoints in {run.run_dir}")
