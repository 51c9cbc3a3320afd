"""Train the video captioner: ``python -m hw2_video_caption.train --config hw2_video_caption/configs/X.yaml``.

Teacher forcing with scheduled sampling (inverse-sigmoid decay), fresh captions sampled per video
each epoch, gradient clipping, validation BLEU@1 each epoch, best checkpoint by validation score.
Optionally the decoder is first pre-trained as a caption language model (no features needed).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.batching import pad_batch
from common.budget import TimeBudget
from common.checkpoint import load_checkpoint, make_state
from common.cli import train_parser
from common.config import config_to_dict
from common.device import autocast
from common.distributed import all_reduce_mean, wrap_model
from common.errors import UserError, run_cli
from common.metrics import progress
from common.setup import Run, train_command
from common.vocab import Vocab
from hw2_video_caption import HOMEWORK
from hw2_video_caption.config import Config, DataConfig, TrainConfig
from hw2_video_caption.data import (
    CaptionSet,
    FeatureStore,
    available_ids,
    build_vocab,
    course_data_dir,
    load_features,
    load_labels,
    normalize_caption,
    split_ids,
)
from hw2_video_caption.decode import decode_captions
from hw2_video_caption.evaluate import score_all
from hw2_video_caption.model import VideoCaptioner, count_params


def teacher_prob(step: int, cfg: TrainConfig) -> float:
    if cfg.ss_k <= 0:
        return 1.0
    return max(cfg.ss_floor, cfg.ss_k / (cfg.ss_k + math.exp(min(step / cfg.ss_k, 700.0))))


def load_split(cfg: DataConfig, say=print) -> tuple[FeatureStore, list[str], dict[str, list[str]], Path]:
    """Features (N, 80, D, read on demand), ids and labels of the training videos the config names, and the
    data folder."""
    data_dir = Path(cfg.data_dir) if cfg.data_dir else course_data_dir()
    if data_dir is None:
        raise UserError("data.data_dir is empty and MLDS_DATA is not set: point one of them at the course data")
    feat_dir, ids = split_ids(data_dir, cfg.split)
    label_file = data_dir / ("training_label.json" if cfg.split == "training" else "testing_label.json")
    labels = load_labels(label_file)
    if cfg.ids:
        unknown = [v for v in cfg.ids if v not in labels]
        if unknown:
            raise UserError(f"data.ids: {len(unknown)} ids not in {label_file} (first: {', '.join(unknown[:3])})")
        ids = list(cfg.ids)
    ids = [v for v in ids if v in labels]
    if cfg.missing == "skip":
        have = available_ids(feat_dir, ids)
        if len(have) < len(ids):
            say(
                f"{HOMEWORK}: {len(ids) - len(have)} of {len(ids)} videos have no features in {feat_dir}; "
                f"training on the other {len(have)}"
            )
        ids = have
    if not ids:
        raise UserError(f"{feat_dir}: no videos to train on")
    return load_features(feat_dir, ids, cfg.cache_features, lazy=True), ids, labels, data_dir


def lm_epoch(model, opt, captions: list[list[int]], cfg: Config, run: Run, rng: np.random.Generator) -> float:
    """One epoch of the decoder alone as a language model on caption ids."""
    order = rng.permutation(len(captions))
    total, n = 0.0, 0
    for start in range(0, len(order), cfg.train.batch_size):
        batch = [captions[i] for i in order[start : start + cfg.train.batch_size]]
        total += train_step(model, opt, None, batch, 1.0, cfg, run)
        n += 1
    return total / max(n, 1)


def train_step(
    model, opt, feats: torch.Tensor | None, caps: list[list[int]], teacher_p: float, cfg: Config, run: Run
) -> float:
    bos, eos = Vocab.bos_id, Vocab.eos_id
    inputs, _ = pad_batch([[bos] + c for c in caps])
    targets, _ = pad_batch([c + [eos] for c in caps], pad_id=-100)  # -100: ignored by cross_entropy
    inputs, targets = inputs.to(run.device), targets.to(run.device)
    with autocast(run.device):
        logits = model(feats, inputs, teacher_p)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1),
            targets.flatten(),
            ignore_index=-100,
            label_smoothing=cfg.train.label_smoothing,
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
    opt.step()
    return loss.item()


def validate(model: VideoCaptioner, data: TrainingData, cfg: Config, run: Run[Config]) -> dict:
    caps = decode_captions(model, data.val_feats, data.vocab, run.device, cfg.train.val_beam, max_len=cfg.data.max_len)
    return score_all(dict(zip(data.val_ids, caps)), data.labels)


@dataclass
class TrainingData:
    """The training captions (indexing into the feature rows), the validation videos and the vocabulary."""

    train_set: CaptionSet
    val_feats: FeatureStore
    val_ids: list[str]
    labels: dict[str, list[str]]
    vocab: Vocab
    lm_captions: list[str]  # for the caption LM pre-training (empty: none)


@dataclass
class LoopState:
    """Where the loop is: what a checkpoint records and a resumed run starts from."""

    step: int = 0
    epoch: int = 0
    batch_done: int = 0  # batches of the current epoch already trained
    best: float = -math.inf  # best validation score (train.val_metric) so far


def build_data(run: Run[Config]) -> tuple[TrainingData, dict | None]:
    """The training and validation videos, and the checkpoint ``train.init_checkpoint`` names (or None).

    The vocabulary is a resumed run's own, else the initial checkpoint's, else built from the
    training captions (and the pre-training captions).
    """
    cfg = run.cfg
    feats, ids, labels, data_dir = load_split(cfg.data, run.say)
    if feats.shape[-1] != cfg.model.feat_dim:
        raise UserError(f"model.feat_dim={cfg.model.feat_dim}, but the features have {feats.shape[-1]} per frame")
    order = np.random.default_rng(cfg.seed).permutation(len(ids))
    n_val = int(round(len(ids) * cfg.data.val_fraction)) if len(ids) > 1 else 0
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if not len(train_idx) and cfg.train.epochs > 0:  # a pre-training-only run may hold every video out
        raise UserError(f"data.val_fraction={cfg.data.val_fraction} leaves none of the {len(ids)} videos to train on")
    train_caps = [labels[ids[i]] for i in train_idx]
    lm_caps: list[str] = []
    if cfg.train.pretrain_lm_epochs > 0 and run.resume_state is None:
        lm_file = Path(cfg.train.pretrain_lm_labels or data_dir / "training_label.json")
        held = {ids[i] for i in val_idx}  # never pre-train on captions of the validation videos
        lm_caps = [c for v, cs in load_labels(lm_file).items() if v not in held for c in cs]
    init = load_checkpoint(cfg.train.init_checkpoint, HOMEWORK) if cfg.train.init_checkpoint else None
    if run.resume_state is not None or init is not None:
        vocab = Vocab((run.resume_state or init)["extra"]["vocab"])
    else:
        vocab = build_vocab([c for cs in train_caps for c in cs] + lm_caps, cfg.data.min_count)
    # Features stay in the one (N, 80, D) array; the caption set indexes into the training rows.
    train_set = CaptionSet(feats[train_idx] if len(val_idx) else feats, train_caps, vocab, cfg.data.max_len)
    data = TrainingData(train_set, feats[val_idx], [ids[i] for i in val_idx], labels, vocab, lm_caps)
    return data, init


def build_model(run: Run[Config], vocab_size: int, init: dict | None) -> tuple[VideoCaptioner, torch.optim.Optimizer]:
    """The captioner (with the initial checkpoint's weights on a fresh run) and its optimizer."""
    cfg = run.cfg
    model = VideoCaptioner(cfg.model, vocab_size).to(run.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    if init is not None and run.resume_state is None:
        try:
            model.load_state_dict(init["models"]["captioner"])
        except RuntimeError:
            raise UserError(f"{cfg.train.init_checkpoint}: weights do not fit model config {cfg.model}") from None
    return model, opt


def restore(run: Run[Config], model: VideoCaptioner, opt: torch.optim.Optimizer) -> LoopState:
    """The loop's state: a fresh one, or the resumed run's with its weights and optimizer loaded."""
    if run.resume_state is None:
        return LoopState()
    saved = run.restore(models={"captioner": model}, optimizers={"adam": opt})
    extra = saved["extra"]
    return LoopState(saved["step"], saved["epoch"], extra.get("batch_done", 0), extra.get("best", -math.inf))


def pretrain_lm(run: Run[Config], model: VideoCaptioner, opt: torch.optim.Optimizer, data: TrainingData) -> None:
    """``train.pretrain_lm_epochs`` epochs of the decoder alone on the pre-training captions."""
    cfg = run.cfg
    lm_ids = [data.vocab.encode(normalize_caption(c))[: cfg.data.max_len - 1] for c in data.lm_captions]
    lm_ids = [c for c in lm_ids if c]
    for e in range(cfg.train.pretrain_lm_epochs):
        loss = lm_epoch(model, opt, lm_ids, cfg, run, np.random.default_rng(cfg.seed + 10_000 + e))
        run.say(f"{HOMEWORK}: caption LM pre-training epoch {e + 1}: loss {loss:.3f} on {len(lm_ids)} captions")


def save(
    run: Run[Config], model: VideoCaptioner, opt: torch.optim.Optimizer, vocab: Vocab, loop: LoopState, is_best: bool
) -> None:
    """A checkpoint of the main process; ``loop.batch_done`` tells a resume where in the epoch to go on."""
    if not run.env.is_main:
        return
    cfg = run.cfg
    extra = {
        "vocab": vocab.itos,
        "model": asdict(cfg.model),
        "max_len": cfg.data.max_len,
        "best": loop.best,
        "batch_done": loop.batch_done,
    }
    state = make_state(
        HOMEWORK,
        models={"captioner": model},
        optimizers={"adam": opt},
        step=loop.step,
        epoch=loop.epoch,
        config=config_to_dict(cfg),
        extra=extra,
    )
    run.ckpt.save(state, is_best)


def train_epoch(
    run: Run[Config],
    net: torch.nn.Module,
    model: VideoCaptioner,
    opt: torch.optim.Optimizer,
    data: TrainingData,
    loop: LoopState,
    budget: TimeBudget,
) -> dict[str, float] | None:
    """The rest of epoch ``loop.epoch`` through ``net`` (``model`` or its DDP wrapper): the row to log,
    or None when the time budget ran out (after a checkpoint a resume continues from)."""
    cfg, env = run.cfg, run.env
    net.train()
    pairs = data.train_set.sample(np.random.default_rng(cfg.seed + loop.epoch), cfg.train.captions_per_video)
    per_rank = len(pairs) // env.world_size
    pairs = pairs[env.rank * per_rank : (env.rank + 1) * per_rank]  # equal share per process
    batches = [pairs[i : i + cfg.train.batch_size] for i in range(0, len(pairs), cfg.train.batch_size)]
    start, seen, losses = time.perf_counter(), 0, []
    bar = progress(total=len(batches), desc=f"epoch {loop.epoch + 1}", unit="batch", quiet=run.quiet)
    for b, batch in enumerate(batches):
        if b < loop.batch_done:  # resumed mid-epoch: these batches were already trained
            continue
        x = torch.from_numpy(np.ascontiguousarray(data.train_set.feats[[i for i, _ in batch]])).to(run.device)
        loss = train_step(net, opt, x, [c for _, c in batch], teacher_prob(loop.step, cfg.train), cfg, run)
        losses.append(loss)
        loop.step, loop.batch_done, seen = loop.step + 1, b + 1, seen + len(batch)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", vid_s=f"{seen / (time.perf_counter() - start):.0f}")
        if cfg.train.save_every and loop.step % cfg.train.save_every == 0:
            save(run, model, opt, data.vocab, loop, is_best=False)
        if budget.spent():
            save(run, model, opt, data.vocab, loop, is_best=False)  # a resume continues with the next batch
            bar.close()
            return None
    bar.close()
    rate = seen * env.world_size / max(time.perf_counter() - start, 1e-9)
    return {
        "loss": all_reduce_mean(float(np.mean(losses)) if losses else 0.0, env),
        "teacher_p": teacher_prob(loop.step, cfg.train),
        "videos_per_s": rate,
    }


def evaluate_and_save(
    run: Run[Config],
    model: VideoCaptioner,
    opt: torch.optim.Optimizer,
    data: TrainingData,
    loop: LoopState,
    row: dict[str, float],
) -> None:
    """Validation scores (main process) added to ``row``, logged; a checkpoint, kept as best if it is."""
    cfg = run.cfg
    is_best = True
    if data.val_ids and run.env.is_main:
        scores = validate(model, data, cfg, run)
        row.update({k: scores[k] for k in ("bleu1_new", "bleu1_original", "cider_d", "distinct")})
        is_best = scores[cfg.train.val_metric] > loop.best
        loop.best = max(loop.best, scores[cfg.train.val_metric])
    run.log.log(loop.step, epoch=loop.epoch, **row)
    val = (
        (
            f", val BLEU@1 new {row['bleu1_new']:.3f} orig {row['bleu1_original']:.3f}, "
            f"{row['distinct']}/{len(data.val_ids)} distinct"
        )
        if "bleu1_new" in row
        else ""
    )
    run.say(f"{HOMEWORK}: epoch {loop.epoch} loss {row['loss']:.3f}, {row['videos_per_s']:.0f} videos/s{val}")
    save(run, model, opt, data.vocab, loop, is_best)


def train_captioner(run: Run[Config]) -> None:
    cfg = run.cfg
    data, init = build_data(run)
    model, opt = build_model(run, len(data.vocab), init)
    loop = restore(run, model, opt)
    run.say(
        f"{HOMEWORK}: {len(data.train_set)} training / {len(data.val_ids)} validation videos, "
        f"vocabulary {len(data.vocab)}, {count_params(model) / 1e6:.2f}M parameters"
    )
    if data.lm_captions:
        pretrain_lm(run, model, opt, data)
    net = wrap_model(model, run.env, run.device)
    if cfg.train.epochs == 0:  # pre-training only: keep the language model for later runs to start from
        save(run, model, opt, data.vocab, loop, is_best=True)
    budget = TimeBudget(cfg.train.max_minutes, run.env)
    while loop.epoch < cfg.train.epochs:
        row = train_epoch(run, net, model, opt, data, loop, budget)
        if row is None:
            run.say(f"{HOMEWORK}: time budget of {cfg.train.max_minutes:g} min reached at step {loop.step}")
            break
        loop.epoch, loop.batch_done = loop.epoch + 1, 0
        evaluate_and_save(run, model, opt, data, loop, row)
    run.say(f"{HOMEWORK}: done; checkpoints in {run.run_dir}")


def _main(args: argparse.Namespace) -> int:
    return train_command(HOMEWORK, Config, args, train_captioner)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, train_parser(HOMEWORK, __doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
