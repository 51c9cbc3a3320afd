"""Train the LSTM language model: ``python -m hw1_cloze.train --config hw1_cloze/configs/cpu.yaml``.

Truncated BPTT over the contiguous token stream, the recurrent state carried between windows;
validation perplexity on the held-out end of the corpus; checkpoint and resume.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
import torch

from common.batching import StreamBatcher
from common.budget import TimeBudget
from common.checkpoint import make_state
from common.cli import train_parser
from common.config import config_to_dict
from common.device import autocast
from common.distributed import all_reduce_mean, cleanup, wrap_model
from common.errors import UserError, run_cli
from common.metrics import progress
from common.setup import start_run
from hw1_cloze import HOMEWORK
from hw1_cloze.config import Config, DataConfig
from hw1_cloze.model import LSTMLanguageModel
from hw1_cloze.prepare import Corpus, default_source, prepare_corpus


def load_corpus(cfg: DataConfig, quiet: bool = False) -> Corpus:
    source = cfg.corpus or default_source()
    if not source:
        raise UserError("data.corpus is empty and MLDS_DATA is not set: say where the Holmes novels are")
    return prepare_corpus(source, cfg.max_vocab, cfg.min_freq, quiet=quiet)


@torch.no_grad()
def perplexity(model: LSTMLanguageModel, ids: np.ndarray, device: torch.device, max_tokens: int) -> float:
    """Perplexity over (at most ``max_tokens`` of) a held-out stream, state carried throughout."""
    model.eval()
    stream = StreamBatcher(ids[:max_tokens], batch_size=16, bptt=100)
    total, count, state = 0.0, 0, None
    for x, y in stream:
        with autocast(device):
            loss, state = model(x.to(device), y.to(device), state)
        total += loss.item() * y.numel()
        count += y.numel()
    model.train()
    return math.exp(total / count)


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress_ = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress_))


def _impl(args) -> int:
    run = start_run(HOMEWORK, Config, args)
    run.ckpt.keep_last = run.cfg.train.keep_last
    cfg, tc, device, env = run.cfg, run.cfg.train, run.device, run.env
    corpus = load_corpus(cfg.data, run.quiet or not env.is_main)
    train_ids, valid_ids = corpus.split(cfg.data.valid_tokens)
    if cfg.data.direction == "backward":
        train_ids, valid_ids = train_ids[::-1].copy(), valid_ids[::-1].copy()
    stream = StreamBatcher(train_ids, tc.batch_size, tc.bptt, env.rank, env.world_size)
    total = tc.max_steps or max(1, int(tc.epochs * len(stream)))
    run.say(
        f"{corpus.meta['tokens']:,} tokens, vocabulary {len(corpus.vocab):,}; {len(stream):,} windows "
        f"of {tc.batch_size}x{tc.bptt} per epoch; {total:,} steps ({cfg.data.direction})"
    )

    model = LSTMLanguageModel(len(corpus.vocab), cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, fused=device.type in ("cpu", "cuda"))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, tc.warmup_steps, tc.min_lr_ratio))
    step, best, state = 0, float("inf"), None
    if run.resume_state is not None:
        resumed = run.restore(models={"model": model}, optimizers={"opt": opt}, schedulers={"sched": sched})
        step, best = resumed["step"], resumed["extra"]["best_ppl"]
        hidden = resumed["extra"]["hidden"]
        state = tuple(h.to(device) for h in hidden) if hidden else None
    ddp = wrap_model(model, env, device)

    def save(ppl: float | None) -> None:
        nonlocal best
        is_best = ppl is not None and ppl < best
        best = min(best, ppl) if ppl is not None else best
        if env.is_main:
            extra = {
                "itos": corpus.vocab.itos,
                "direction": cfg.data.direction,
                "unk_types": corpus.meta["unk_types"],
                "best_ppl": best,
                "val_ppl": ppl,
                "hidden": list(state) if state is not None else None,
            }
            run.ckpt.save(
                make_state(
                    HOMEWORK,
                    models={"model": model},
                    optimizers={"opt": opt},
                    schedulers={"sched": sched},
                    step=step,
                    config=config_to_dict(cfg),
                    extra=extra,
                ),
                is_best=is_best,
            )

    budget, seen = TimeBudget(tc.max_minutes, env), 0
    bar = progress(total=total, initial=step, desc="train", unit="step", quiet=run.quiet or not env.is_main)
    while step < total:
        i = step % len(stream)
        if i == 0:
            state = None  # a new pass over the stream starts from a fresh state
        x, y = (t.to(device, non_blocking=True) for t in stream.window(i))
        with autocast(device):
            loss, state = ddp(x, y, state)
        state = tuple(s.detach() for s in state)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
        opt.step()
        sched.step()
        step += 1
        seen += y.numel() * env.world_size
        elapsed = budget.elapsed
        bar.update()
        if step % tc.log_every == 0:
            tok_s = seen / elapsed
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tok_s:,.0f}")
            run.log.log(step, loss=loss.item(), lr=sched.get_last_lr()[0], tok_s=tok_s)
        out_of_time = budget.spent()
        if step % tc.eval_every == 0 or step == total or out_of_time:
            ppl = all_reduce_mean(perplexity(model, valid_ids, device, tc.eval_tokens), env)
            run.log.log(step, val_ppl=ppl, tok_s=seen / elapsed)
            run.say(f"step {step}: validation perplexity {ppl:.1f}, {seen / elapsed:,.0f} tokens/s")
            save(ppl)
        if out_of_time:
            run.say(f"time budget of {tc.max_minutes} min reached at step {step}")
            break
    bar.close()
    cleanup(env)
    run.say(f"best validation perplexity {best:.1f}; checkpoints in {run.run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_impl, train_parser(HOMEWORK, __doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
