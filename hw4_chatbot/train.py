"""Training: maximum-likelihood seq2seq (forward, or backward with data.reverse=true), or RL fine-tuning.

    python -m hw4_chatbot.train --config hw4_chatbot/configs/s2s.yaml
    python -m hw4_chatbot.train --config hw4_chatbot/configs/rl.yaml --set rl.init_checkpoint=runs/.../best.pt
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from common.batching import BucketBatchSampler
from common.budget import TimeBudget
from common.checkpoint import make_state
from common.cli import train_parser
from common.config import config_to_dict
from common.device import autocast
from common.distributed import all_reduce_mean, cleanup, wrap_model
from common.errors import run_cli
from common.metrics import progress
from common.setup import Run, start_run
from common.vocab import Vocab
from hw4_chatbot.config import HOMEWORK, ChatConfig, model_kind
from hw4_chatbot.data import PairBatches, build_vocab, load_splits
from hw4_chatbot.evaluate import perplexity
from hw4_chatbot.model import Seq2Seq


def ml_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], pad_id: int) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy of the reply given the query, and the token count."""
    logits = model(batch["src"], batch["src_len"], batch["tgt_in"])
    loss = F.cross_entropy(logits.float().flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=pad_id)
    return loss, int((batch["tgt_out"] != pad_id).sum())


def train_s2s(run: Run[ChatConfig]) -> None:
    cfg, device, env = run.cfg, run.device, run.env
    splits = load_splits(cfg.data)
    resume = run.resume_state
    vocab = Vocab(resume["extra"]["vocab"]) if resume else build_vocab(splits.train, cfg.data)
    train = PairBatches(splits.train, vocab, cfg.data.max_query_len)
    valid = PairBatches(splits.valid, vocab, cfg.data.max_query_len)
    run.say(f"{len(train)} training pairs, {len(valid)} validation pairs, vocabulary {len(vocab)}"
            f" ({model_kind(cfg)} model)")
    model = Seq2Seq(len(vocab), cfg.model, vocab.pad_id).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    step, epoch, skip, best = 0, 0, 0, math.inf
    if resume:
        run.restore(models={"model": model}, optimizers={"opt": opt})
        step, epoch = resume["step"], resume["epoch"]
        skip, best = resume["extra"]["batches_done"], resume["extra"]["best_ppl"]
    net = wrap_model(model, env, device)
    sampler = BucketBatchSampler(train.lengths(), cfg.train.batch_size, seed=cfg.seed, rank=env.rank,
                                 world_size=env.world_size)
    budget = TimeBudget(cfg.train.max_minutes, env)

    def checkpoint(batches_done: int) -> None:
        nonlocal best
        ppl = all_reduce_mean(perplexity(model, valid, device, cfg.train.batch_size * 2), env)
        is_best = ppl < best
        best = min(best, ppl)
        run.log.log(step, epoch=epoch, valid_ppl=ppl, best_ppl=best)
        run.say(f"step {step} epoch {epoch}: valid perplexity {ppl:.2f} (best {best:.2f})")
        if env.is_main:
            extra = {"vocab": vocab.itos, "kind": model_kind(cfg), "valid_ppl": ppl, "best_ppl": best,
                     "batches_done": batches_done}
            run.ckpt.save(make_state(HOMEWORK, models={"model": model}, optimizers={"opt": opt}, step=step,
                                     epoch=epoch, config=config_to_dict(cfg), extra=extra), is_best)

    stop = False
    while epoch < cfg.train.epochs and not stop:
        sampler.set_epoch(epoch)
        net.train()
        tokens, seen, t0 = 0, 0, time.perf_counter()
        bar = progress(total=len(sampler), desc=f"epoch {epoch}", unit="batch", quiet=run.quiet)
        for i, idx in enumerate(sampler):
            if i < skip:  # resuming inside an epoch: same seeded order, skip what was done
                continue
            batch = train.batch(idx, device)
            with autocast(device, cfg.train.amp):
                loss, n = ml_loss(net, batch, vocab.pad_id)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
            opt.step()
            step, tokens, seen = step + 1, tokens + n, seen + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
            if step % 50 == 0:
                run.log.log(step, epoch=epoch, loss=loss.item(), tokens_per_s=tokens / (time.perf_counter() - t0))
            stop = budget.spent() or bool(cfg.train.max_steps and step >= cfg.train.max_steps)
            if stop or (cfg.train.eval_every and step % cfg.train.eval_every == 0):
                checkpoint(i + 1)
                net.train()
            if stop:
                break
        bar.close()
        skip = 0
        if not stop:
            epoch += 1
            checkpoint(0)
    run.say(f"done: best validation perplexity {best:.2f}; checkpoints in {run.run_dir}")


def impl(args: argparse.Namespace) -> int:
    run = start_run(HOMEWORK, ChatConfig, args)
    try:
        if run.cfg.mode == "rl":
            from hw4_chatbot.rl import train_rl  # only RL runs need the reward machinery

            train_rl(run)
        else:
            train_s2s(run)
    finally:
        cleanup(run.env)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = train_parser(HOMEWORK, "Train the chatbot: seq2seq by maximum likelihood, or RL fine-tuning.")
    return run_cli(impl, parser, argv)


if __name__ == "__main__":
    sys.exit(main())

