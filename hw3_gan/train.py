"""Train the conditional GAN: ``python -m hw3_gan.train --config hw3_gan/configs/default.yaml``.

One step: the discriminator learns real-with-its-tags → real, fake → fake and real-with-wrong-tags
→ fake (non-saturating loss, lazy R1 or DRAGAN penalty); then the generator learns to be scored
real under the tags it was asked for. An EMA copy of the generator is what samples are drawn from.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from common.budget import TimeBudget
from common.checkpoint import make_state
from common.cli import train_parser
from common.config import RunConfig, config_to_dict, param
from common.device import autocast
from common.distributed import all_reduce_mean, cleanup, wrap_model
from common.errors import UserError, run_cli
from common.metrics import progress
from common.setup import start_run
from hw3_gan.data import FaceData, holdout_mask, load_faces, save_grid, to_tensor, to_uint8
from hw3_gan.model import EMA, Discriminator, Generator, ModelConfig, recalibrate_batchnorm
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS

HOMEWORK = "hw3_gan"
# Tag pairs of the per-epoch grid (one row each): the course's test pairs first, then contrasts.
GRID_PAIRS = [("blue", "blue"), ("blue", "green"), ("blue", "red"), ("green", "blue"), ("green", "red"),
              ("blonde", "purple"), ("pink", "aqua"), ("black", "yellow"), ("white", "brown"), ("orange", "pink")]


@dataclass
class DataConfig:
    path: str = ""  # a data folder or .zip in either course format; "" → $MLDS_DATA/hw3/extra_data.zip
    holdout_percent: float = param(20.0, ge=0, lt=100)  # kept from the GAN for the evaluation classifier
    flip: bool = True  # random horizontal flips
    limit: int = param(0, ge=0)  # train on the first N images only (0: all)


@dataclass
class LoopConfig:
    batch_size: int = param(64, gt=0)
    epochs: int = param(20, gt=0, resume=True)
    max_steps: int = param(0, ge=0, resume=True)  # 0: no cap
    max_minutes: float = param(0.0, ge=0, resume=True)  # stop (and save) after this much wall time; 0: no cap
    lr_g: float = param(2e-4, gt=0)
    lr_d: float = param(2e-4, gt=0)
    betas: list[float] = param(default_factory=lambda: [0.5, 0.999], ge=0, lt=1)  # Adam's two
    penalty: Literal["r1", "dragan", "none"] = "r1"
    penalty_weight: float = param(1.0, ge=0)  # R1: gamma; DRAGAN: lambda
    penalty_every: int = param(4, gt=0)  # lazy regularisation: every k D steps, weighted by k
    wrong_weight: float = param(0.5, ge=0)  # real images paired with wrong tags count as fakes
    mode_seeking: float = param(1.0, ge=0)  # weight of the mode-seeking term against conditional mode collapse (0: off)
    ema: bool = True
    ema_decay: float = param(0.999, ge=0, lt=1)
    amp: bool = True  # bf16 autocast on CUDA
    save_every_steps: int = param(500, ge=0, resume=True)
    grid_noise: int = param(8, gt=0)  # columns of the per-epoch grid


@dataclass
class GanConfig(RunConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: LoopConfig = field(default_factory=LoopConfig)


def wrong_tags(hair: torch.Tensor, eye: torch.Tensor, n_hair: int, n_eye: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Change the hair colour, the eye colour or both, so every pair is truly wrong."""
    kind = torch.randint(0, 3, hair.shape, device=hair.device)
    new_hair = (hair + torch.randint(1, n_hair, hair.shape, device=hair.device)) % n_hair
    new_eye = (eye + torch.randint(1, n_eye, eye.shape, device=eye.device)) % n_eye
    return torch.where(kind != 1, new_hair, hair), torch.where(kind != 0, new_eye, eye)


def d_loss(D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor,
           cfg: LoopConfig, penalise: bool, n_hair: int, n_eye: int) -> tuple[torch.Tensor, dict]:
    """Discriminator loss for one batch, with the gradient penalty when ``penalise``."""
    b = real.shape[0]
    if penalise and cfg.penalty == "dragan":
        # DRAGAN (Kodali et al.): keep gradients near norm 1 in a noisy neighbourhood of the data.
        x_hat = (real + 0.5 * real.std() * torch.rand_like(real)).requires_grad_(True)
        out, _ = D(x_hat, hair, eye)
        grad, = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        pen = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        real = real.detach()
    elif penalise and cfg.penalty == "r1":
        real = real.detach().requires_grad_(True)
    x = torch.cat([real, fake])
    wrong = wrong_tags(hair, eye, n_hair, n_eye)
    scores, wrong_scores = D(x, torch.cat([hair, hair]), torch.cat([eye, eye]),
                             (torch.cat([wrong[0], hair]), torch.cat([wrong[1], eye])))
    s_real, s_fake, s_wrong = scores[:b], scores[b:], wrong_scores[:b]
    loss = F.softplus(-s_real).mean() + F.softplus(s_fake).mean() + cfg.wrong_weight * F.softplus(s_wrong).mean()
    stats = {"d_real": s_real.mean().item(), "d_fake": s_fake.mean().item(), "d_wrong": s_wrong.mean().item()}
    if penalise and cfg.penalty == "r1":
        # R1 (Mescheder et al.): penalise the gradient on real data; reuses the forward above.
        grad, = torch.autograd.grad(s_real.float().sum(), real, create_graph=True)
        pen = grad.pow(2).flatten(1).sum(1).mean() * 0.5
    if penalise and cfg.penalty != "none":
        loss = loss + cfg.penalty_weight * cfg.penalty_every * pen
        stats["penalty"] = pen.item()
    return loss, stats


def g_loss(G: torch.nn.Module, D: torch.nn.Module, z: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor,
           cfg: LoopConfig) -> tuple[torch.Tensor, dict]:
    """Non-saturating generator loss, plus the mode-seeking term when ``cfg.mode_seeking`` > 0.

    Mode seeking (Mao et al. 2019): the second half of the batch repeats the first half's tags with
    other noise, and the loss grows as the two halves' images get closer. Without it our first CPU
    runs drew one face per tag pair whatever the noise (conditional mode collapse).
    """
    half = z.shape[0] // 2
    if cfg.mode_seeking > 0 and half > 0:
        z = z[: 2 * half]
        hair, eye = hair[:half].repeat(2), eye[:half].repeat(2)
    fake = G(z, hair, eye)
    scores, _ = D(fake, hair, eye)
    loss = F.softplus(-scores).mean()
    stats: dict = {}
    if cfg.mode_seeking > 0 and half > 0:
        ratio = (fake[:half] - fake[half:]).abs().flatten(1).mean(1) / (z[:half] - z[half:]).abs().mean(1)
        loss = loss + cfg.mode_seeking / (ratio.float().mean() + 1e-5)
        stats["image_per_noise_distance"] = ratio.mean().item()
    return loss, stats


class Batches:
    """Shuffled batches of the cached uint8 array; the order depends only on (seed, epoch, rank)."""

    def __init__(self, data: FaceData, batch_size: int, seed: int, rank: int, world: int, size: int, flip: bool):
        self.data, self.bs, self.seed, self.rank, self.world = data, batch_size, seed, rank, world
        self.size, self.flip = size, flip
        self.images = torch.from_numpy(data.images)
        self.hair, self.eye = torch.from_numpy(data.hair), torch.from_numpy(data.eye)
        self.per_epoch = len(data) // (batch_size * world)
        if self.per_epoch == 0:
            raise UserError(f"{data.source}: {len(data)} training images, fewer than one batch of "
                            f"{batch_size * world}; lower train.batch_size")

    def epoch(self, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
        order = torch.randperm(len(self.data), generator=g)[: self.per_epoch * self.bs * self.world]
        order = order.view(self.per_epoch, self.world, self.bs)[:, self.rank]
        for idx in order[start:]:
            x = to_tensor(self.images[idx].numpy(), self.size)
            if self.flip:
                flip = torch.rand(len(idx)) < 0.5
                x[flip] = x[flip].flip(-1)
            yield x, self.hair[idx], self.eye[idx]


def grid_inputs(n: int, nz: int, pair_counts: np.ndarray, rows: int = 10
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed noise × fixed tag pairs, the same every epoch, so grids show progress.

    The pairs are those of GRID_PAIRS the data has, then the data's most common other pairs.
    """
    pairs = [(HAIR_COLOURS.index(h), EYE_COLOURS.index(e)) for h, e in GRID_PAIRS]
    pairs = [p for p in pairs if pair_counts[p] > 0]
    for flat in np.argsort(-pair_counts, axis=None, kind="stable"):
        p = tuple(int(v) for v in np.unravel_index(flat, pair_counts.shape))
        if pair_counts[p] > 0 and p not in pairs:
            pairs.append(p)
    pairs = pairs[:rows]
    g = torch.Generator().manual_seed(1234)
    z = torch.randn(n, nz, generator=g).repeat(len(pairs), 1)
    hair = torch.tensor([h for h, _ in pairs]).repeat_interleave(n)
    eye = torch.tensor([e for _, e in pairs]).repeat_interleave(n)
    return z, hair, eye


def _impl(args) -> int:
    run = start_run(HOMEWORK, GanConfig, args)
    cfg, dev, env = run.cfg, run.device, run.env
    if len(cfg.train.betas) != 2:
        raise UserError(f"config key 'train.betas' must hold 2 numbers, got {cfg.train.betas}")
    nh, ne = len(HAIR_COLOURS), len(EYE_COLOURS)
    try:
        G, D = Generator(cfg.model, nh, ne).to(dev), Discriminator(cfg.model, nh, ne).to(dev)
    except ValueError as exc:
        raise UserError(f"model config: {exc}") from None
    data = load_faces(cfg.data.path or None)
    run.say(data.summary())
    train_data = data.subset(~holdout_mask(data.ids, cfg.data.holdout_percent))
    if cfg.data.limit:
        train_data = train_data.subset(np.arange(len(train_data)) < cfg.data.limit)
    run.say(f"training on {len(train_data)} images ({cfg.data.holdout_percent:g}% held out for evaluation)")
    tc = cfg.train
    opt_g = torch.optim.Adam(G.parameters(), tc.lr_g, betas=tuple(tc.betas))
    opt_d = torch.optim.Adam(D.parameters(), tc.lr_d, betas=tuple(tc.betas))
    ema = EMA(G, tc.ema_decay)
    step = epoch = 0
    if run.resume_state is not None:
        st = run.restore(models={"G": G, "D": D, "G_ema": ema.model}, optimizers={"G": opt_g, "D": opt_d})
        step, epoch = st["step"], st["epoch"]
    Gw, Dw = wrap_model(G, env, dev), wrap_model(D, env, dev)
    batches = Batches(train_data, tc.batch_size, cfg.seed, env.rank, env.world_size, cfg.model.image_size,
                      cfg.data.flip)
    pair_counts = train_data.pair_counts()
    pair_probs = torch.from_numpy(pair_counts).float()
    total_steps = tc.epochs * batches.per_epoch
    if tc.max_steps:
        total_steps = min(total_steps, tc.max_steps)
    fixed = [t.to(dev) for t in grid_inputs(tc.grid_noise, cfg.model.nz, pair_counts)]
    start, seen, budget = time.time(), 0, TimeBudget(tc.max_minutes, env)

    def save(is_best: bool) -> None:
        if not env.is_main:
            return
        sampler = ema.model if tc.ema else G
        if tc.ema:
            recalibrate_batchnorm(ema.model, nh, ne, pair_probs=pair_probs)
        state = make_state(HOMEWORK, models={"G": G, "D": D, "G_ema": ema.model},
                           optimizers={"G": opt_g, "D": opt_d}, step=step, epoch=epoch, config=config_to_dict(cfg),
                           extra={"hair_colours": HAIR_COLOURS, "eye_colours": EYE_COLOURS,
                                  "pair_counts": pair_counts.tolist(), "sampler": "G_ema" if tc.ema else "G",
                                  "train_images": len(train_data)})
        run.ckpt.save(state, is_best)
        with torch.no_grad():
            sampler.eval()
            save_grid(to_uint8(sampler(*fixed)), tc.grid_noise, run.run_dir / "grids" / f"epoch_{epoch:03d}.png")

    bar = progress(total=total_steps, initial=step, desc="hw3_gan", unit="step", quiet=run.quiet or not env.is_main)
    stopped = False
    while step < total_steps and not stopped:
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for x, hair, eye in batches.epoch(epoch, start=step - epoch * batches.per_epoch):
            x, hair, eye = x.to(dev), hair.to(dev), eye.to(dev)
            z = torch.randn(x.shape[0], cfg.model.nz, device=dev)
            G.train()
            with autocast(dev, tc.amp):
                with torch.no_grad():
                    fake = Gw(z, hair, eye)
                penalise = tc.penalty != "none" and step % tc.penalty_every == 0
                loss_d, stats = d_loss(Dw, x, fake, hair, eye, tc, penalise, nh, ne)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # The G step needs gradients through D, not for it: the bare module (no DDP sync) will do.
            D.requires_grad_(False)
            with autocast(dev, tc.amp):
                loss_g, g_stats = g_loss(Gw, D, z, hair, eye, tc)
            stats.update(g_stats)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            D.requires_grad_(True)
            ema.update(G, step)
            step += 1
            seen += x.shape[0] * env.world_size
            for k, v in {"loss_d": loss_d.item(), "loss_g": loss_g.item(), **stats}.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            bar.update(1)
            bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}",
                            img_s=f"{seen / (time.time() - start):.0f}")
            late = budget.spent()
            if step >= total_steps or late:
                stopped = step < total_steps
                break
            if tc.save_every_steps and step % tc.save_every_steps == 0:
                save(is_best=False)
        done_epoch = step == (epoch + 1) * batches.per_epoch
        epoch += int(done_epoch)
        means = {k: all_reduce_mean(v / counts[k], env) for k, v in sums.items()}
        rate = seen / (time.time() - start)
        run.log.log(step, epoch=epoch, images_per_s=rate, **means)
        run.say(f"epoch {epoch} step {step}: " + " ".join(f"{k} {v:.3f}" for k, v in means.items())
                + f", {rate:.0f} images/s")
        # GAN losses do not say which epoch samples best; the newest weights are kept as best.pt.
        save(is_best=True)
    bar.close()
    if stopped:
        run.say(f"stopped after {tc.max_minutes:g} minutes (train.max_minutes) at step {step}")
    run.say(f"checkpoint: {run.ckpt.best}; grids: {run.run_dir / 'grids'}")
    cleanup(env)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = train_parser(HOMEWORK, "Train the conditional anime-face GAN (hair and eye colour tags).")
    return run_cli(_impl, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
