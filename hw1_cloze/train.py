"""Train the LSTM language model: ``python -m hw1_cloze.train --config hw1_cloze/configs/cpu.yaml``.

Truncated BPTT over the contiguous token stream, the recurrent state carried between windows;
validation perplexity on the held-out end of the corpus; checkpoint and resume.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from common.batching import StreamBatcher
from common.budget import TimeBudget
from common.checkpoint import make_state
from common.cli import train_parser
from common.config import config_to_dict
from common.device import autocast
from common.distributed import all_reduce_mean, wrap_model
from common.errors import run_cli
from common.metrics import progress
from common.schedule import lr_factor
from common.setup import Run, train_command
from hw1_cloze import HOMEWORK
from hw1_cloze.config import Config
from hw1_cloze.model import EMB_STD, LSTMLanguageModel
from hw1_cloze.prepare import Corpus, load_corpus
from hw1_cloze.semantic import pretrained_rows


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


@dataclass
class Learner:
    """The model, its optimizer and its learning-rate schedule."""

    model: LSTMLanguageModel
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR


@dataclass
class LoopState:
    step: int = 0
    best_ppl: float = math.inf
    hidden: tuple[torch.Tensor, ...] | None = None  # the recurrent state carried into the next window


def load_streams(run: Run[Config]) -> tuple[Corpus, np.ndarray, np.ndarray]:
    """The corpus and its training and validation id streams, reversed for a backward model."""
    cfg = run.cfg.data
    corpus = load_corpus(cfg, run.quiet or not run.env.is_main)
    train_ids, valid_ids = corpus.split(cfg.valid_tokens)
    if cfg.direction == "backward":
        train_ids, valid_ids = train_ids[::-1].copy(), valid_ids[::-1].copy()
    return corpus, train_ids, valid_ids


def init_embeddings(model: LSTMLanguageModel, path: str, itos: Sequence[str]) -> str:
    """Copy a skip-gram's word vectors into the (tied) embedding's first columns; returns a summary."""
    ids, rows = pretrained_rows(path, itos, model.cfg.emb, EMB_STD)
    weight = model.embedding.weight
    with torch.no_grad():
        weight[torch.from_numpy(ids).to(weight.device), : rows.shape[1]] = torch.from_numpy(rows).to(weight)
    return f"embeddings of {len(ids):,} of {len(itos):,} words ({rows.shape[1]} of {model.cfg.emb} columns) from {path}"


def build(cfg: Config, vocab_size: int, total_steps: int, device: torch.device) -> Learner:
    model = LSTMLanguageModel(vocab_size, cfg.model).to(device)
    train = cfg.train
    opt = torch.optim.Adam(model.parameters(), lr=train.lr, fused=device.type in ("cpu", "cuda"))
    steps = max(1, total_steps)  # warm-up over warmup_steps, then a cosine decay to min_lr_ratio at the last step
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor("cosine", s / steps, train.warmup_steps / steps, train.min_lr_ratio)
    )
    return Learner(model, opt, sched)


def restore(run: Run[Config], learner: Learner) -> LoopState:
    if run.resume_state is None:
        return LoopState()
    saved = run.restore(
        models={"model": learner.model}, optimizers={"opt": learner.opt}, schedulers={"sched": learner.sched}
    )
    hidden = saved["extra"]["hidden"]
    return LoopState(
        saved["step"], saved["extra"]["best_ppl"], tuple(h.to(run.device) for h in hidden) if hidden else None
    )


def train_step(
    ddp: torch.nn.Module, learner: Learner, x: torch.Tensor, y: torch.Tensor, loop: LoopState, clip: float
) -> torch.Tensor:
    """One window of truncated BPTT from the carried state; advances ``loop`` and returns the loss.

    ``ddp`` is the model as the processes share it (DDP-wrapped under torchrun).
    """
    with autocast(x.device):
        loss, hidden = ddp(x, y, loop.hidden)
    loop.hidden = tuple(h.detach() for h in hidden)
    learner.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(learner.model.parameters(), clip)
    learner.opt.step()
    learner.sched.step()
    loop.step += 1
    return loss


def save(run: Run[Config], learner: Learner, corpus: Corpus, loop: LoopState, ppl: float, is_best: bool) -> None:
    if not run.env.is_main:
        return
    extra = {
        "itos": corpus.vocab.itos,
        "direction": run.cfg.data.direction,
        "unk_types": corpus.meta["unk_types"],
        "best_ppl": loop.best_ppl,
        "val_ppl": ppl,
        "hidden": list(loop.hidden) if loop.hidden is not None else None,
    }
    state = make_state(
        HOMEWORK,
        models={"model": learner.model},
        optimizers={"opt": learner.opt},
        schedulers={"sched": learner.sched},
        step=loop.step,
        config=config_to_dict(run.cfg),
        extra=extra,
    )
    run.ckpt.save(state, is_best=is_best)


def evaluate_and_save(
    run: Run[Config], learner: Learner, corpus: Corpus, valid_ids: np.ndarray, loop: LoopState, tok_s: float
) -> None:
    """Validation perplexity (averaged over processes), logged, then a checkpoint; best.pt when it improved."""
    ppl = all_reduce_mean(perplexity(learner.model, valid_ids, run.device, run.cfg.train.eval_tokens), run.env)
    run.log.log(loop.step, val_ppl=ppl, tok_s=tok_s)
    run.say(f"step {loop.step}: validation perplexity {ppl:.1f}, {tok_s:,.0f} tokens/s")
    is_best = ppl < loop.best_ppl
    loop.best_ppl = min(loop.best_ppl, ppl)
    save(run, learner, corpus, loop, ppl, is_best)


def train_lm(run: Run[Config]) -> None:
    cfg, train, device, env = run.cfg, run.cfg.train, run.device, run.env
    run.ckpt.keep_last = train.keep_last
    corpus, train_ids, valid_ids = load_streams(run)
    stream = StreamBatcher(train_ids, train.batch_size, train.bptt, env.rank, env.world_size)
    total = train.max_steps or max(1, int(train.epochs * len(stream)))
    run.say(
        f"{corpus.meta['tokens']:,} tokens, vocabulary {len(corpus.vocab):,}; {len(stream):,} windows "
        f"of {train.batch_size}x{train.bptt} per epoch; {total:,} steps ({cfg.data.direction})"
    )
    learner = build(cfg, len(corpus.vocab), total, device)
    if run.resume_state is None and train.init_vectors:  # a resumed run has its own weights
        run.say(init_embeddings(learner.model, train.init_vectors, corpus.vocab.itos))
    loop = restore(run, learner)
    ddp = wrap_model(learner.model, env, device)
    budget, seen = TimeBudget(train.max_minutes, env), 0
    bar = progress(total=total, initial=loop.step, desc="train", unit="step", quiet=run.quiet or not env.is_main)
    while loop.step < total:
        i = loop.step % len(stream)
        if i == 0:
            loop.hidden = None  # a new pass over the stream starts from a fresh state
        x, y = (t.to(device, non_blocking=True) for t in stream.window(i))
        loss = train_step(ddp, learner, x, y, loop, train.clip)
        seen += y.numel() * env.world_size
        elapsed = budget.elapsed
        bar.update()
        if loop.step % train.log_every == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{seen / elapsed:,.0f}")
            run.log.log(loop.step, loss=loss.item(), lr=learner.sched.get_last_lr()[0], tok_s=seen / elapsed)
        out_of_time = budget.spent()
        if loop.step % train.eval_every == 0 or loop.step == total or out_of_time:
            evaluate_and_save(run, learner, corpus, valid_ids, loop, seen / elapsed)
        if out_of_time:
            run.say(f"time budget of {train.max_minutes} min reached at step {loop.step}")
            break
    bar.close()
    run.say(f"best validation perplexity {loop.best_ppl:.1f}; checkpoints in {run.run_dir}")


def _main(args: argparse.Namespace) -> int:
    return train_command(HOMEWORK, Config, args, train_lm)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, train_parser(HOMEWORK, __doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
