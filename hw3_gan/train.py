"""Train the conditional GAN: ``python -m hw3_gan.train --config hw3_gan/configs/default.yaml``.

One step: the discriminator learns real-with-its-tags → real, fake → fake and real-with-wrong-tags
→ fake (non-saturating loss, lazy R1 or DRAGAN penalty) and, with ``model.aux_classifier``, to name
the real images' tags (with ``model.aux_twin``, a twin head names the generated images' asked tags;
with ``train.twin_loss: adc`` the two heads are one softmax over real and generated tags);
then the generator learns to be scored real (and named right, and not easily by the twin) under the
tags it was asked for (with ``train.reuse_fakes``, on the very images D just learned from, so that
the generator runs once a step). An EMA copy of the generator is what samples are drawn from.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from common.budget import TimeBudget
from common.checkpoint import make_state
from common.cli import train_parser
from common.config import config_to_dict
from common.device import autocast
from common.distributed import DistEnv, all_reduce_mean, barrier, broadcast_from_main, wrap_model
from common.errors import UserError, run_cli
from common.metrics import progress
from common.schedule import lr_factor, run_progress
from common.seed import rng_state, set_rng_state
from common.setup import Run, train_command
from hw3_gan import HOMEWORK
from hw3_gan.augment import diff_augment
from hw3_gan.classifier import AttributeNet
from hw3_gan.config import Config, TrainConfig
from hw3_gan.data import Batches, FaceData, holdout_mask, load_faces, save_grid, to_uint8
from hw3_gan.model import EMA, Discriminator, Generator, adc_logits, recalibrate_batchnorm
from hw3_gan.retag import cached_out_of_fold, changes, retag
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS, describe

N_HAIR, N_EYE = len(HAIR_COLOURS), len(EYE_COLOURS)
# Tag pairs of the per-epoch grid (one row each): the course's test pairs first, then contrasts.
GRID_PAIRS = [
    ("blue", "blue"),
    ("blue", "green"),
    ("blue", "red"),
    ("green", "blue"),
    ("green", "red"),
    ("blonde", "purple"),
    ("pink", "aqua"),
    ("black", "yellow"),
    ("white", "brown"),
    ("orange", "pink"),
]


def wrong_tags(hair: torch.Tensor, eye: torch.Tensor, n_hair: int, n_eye: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Change the hair colour, the eye colour or both, so every pair is truly wrong."""
    kind = torch.randint(0, 3, hair.shape, device=hair.device)
    new_hair = (hair + torch.randint(1, n_hair, hair.shape, device=hair.device)) % n_hair
    new_eye = (eye + torch.randint(1, n_eye, eye.shape, device=eye.device)) % n_eye
    return torch.where(kind != 1, new_hair, hair), torch.where(kind != 0, new_eye, eye)


def tag_loss(
    hair_logits: torch.Tensor, eye_logits: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor, confident: float = 0.0
) -> torch.Tensor:
    """The auxiliary classifier's cross-entropy on both tags (AC-GAN).

    With ``confident`` p > 0, a tag the head already names with probability at least p adds no
    gradient (its cross-entropy is held at -log p), so the generator is not pushed on towards the
    most typical image of a colour. A 24-minute try did not regain variety with it (docs/RESULTS.md).
    """
    floor = -math.log(confident) if confident > 0 else 0.0
    return sum(
        F.cross_entropy(logits.float(), tags, reduction="none").clamp(min=floor).mean()
        for logits, tags in ((hair_logits, hair), (eye_logits, eye))
    )


def d_loss(
    D: torch.nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    hair: torch.Tensor,
    eye: torch.Tensor,
    cfg: TrainConfig,
    penalise: bool,
    n_hair: int,
    n_eye: int,
    fake_tags: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict]:
    """Discriminator loss for one batch, with the gradient penalty when ``penalise``.

    The fakes were asked for ``fake_tags`` (default: the real images' tags). Real and generated
    images pass through the same DiffAugment policies (``cfg.augment``); R1's gradient is taken
    through them, with respect to the unaugmented real images.
    """
    b = real.shape[0]
    fake_hair, fake_eye = fake_tags if fake_tags is not None else (hair, eye)
    if penalise and cfg.penalty == "dragan":
        # DRAGAN (Kodali et al.): keep gradients near norm 1 in a noisy neighbourhood of the data.
        x_hat = (real + 0.5 * real.std() * torch.rand_like(real)).requires_grad_(True)
        out, _, _ = D(x_hat, hair, eye)
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        pen = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        real = real.detach()
    elif penalise and cfg.penalty == "r1":
        real = real.detach().requires_grad_(True)
    x = diff_augment(torch.cat([real, fake]), cfg.augment)
    wrong = wrong_tags(hair, eye, n_hair, n_eye)
    scores, wrong_scores, logits = D(
        x,
        torch.cat([hair, fake_hair]),
        torch.cat([eye, fake_eye]),
        (torch.cat([wrong[0], fake_hair]), torch.cat([wrong[1], fake_eye])),
        detach_head=not cfg.aux_features,
    )
    s_real, s_fake, s_wrong = scores[:b], scores[b:], wrong_scores[:b]
    if cfg.loss == "hinge":
        loss = F.relu(1 - s_real).mean() + F.relu(1 + s_fake).mean() + cfg.wrong_weight * F.relu(1 + s_wrong).mean()
    else:
        loss = F.softplus(-s_real).mean() + F.softplus(s_fake).mean() + cfg.wrong_weight * F.softplus(s_wrong).mean()
    stats = {"d_real": s_real.mean().item(), "d_fake": s_fake.mean().item(), "d_wrong": s_wrong.mean().item()}
    if logits is not None and len(logits) == 4 and cfg.twin_loss == "adc":
        # ADC-GAN: one 2K-way softmax names real images' tags as "real k" and fakes' as "generated k".
        joint = adc_logits(logits)
        aux = tag_loss(joint[0][:b], joint[1][:b], hair, eye)
        twin = tag_loss(joint[0][b:], joint[1][b:], fake_hair + n_hair, fake_eye + n_eye)
        loss = loss + cfg.aux_weight * (aux + twin)
        stats["d_aux"], stats["d_twin"] = aux.item(), twin.item()
    elif logits is not None:
        # The classifier learns the tags from real images only: fakes would teach it the generator's errors.
        # Without train.aux_features it learns them on the features as the realness loss shapes them.
        aux = tag_loss(logits[0][:b], logits[1][:b], hair, eye)
        loss = loss + cfg.aux_weight * aux
        stats["d_aux"] = aux.item()
        if len(logits) == 4:
            # TAC-GAN's twin learns the tags the generator was asked for, from its images only.
            twin = tag_loss(logits[2][b:], logits[3][b:], fake_hair, fake_eye)
            loss = loss + cfg.aux_weight * twin
            stats["d_twin"] = twin.item()
    if penalise and cfg.penalty == "r1":
        # R1 (Mescheder et al.): penalise the gradient on real data; reuses the forward above.
        (grad,) = torch.autograd.grad(s_real.float().sum(), real, create_graph=True)
        pen = grad.pow(2).flatten(1).sum(1).mean() * 0.5
    if penalise and cfg.penalty != "none":
        loss = loss + cfg.penalty_weight * cfg.penalty_every * pen
        stats["penalty"] = pen.item()
    return loss, stats


def g_inputs(
    z: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The generator step's noise and tags: with mode seeking, the second half repeats the first half's tags.

    Applying it twice changes nothing, so ``g_loss`` may be handed inputs that already went through it.
    """
    half = z.shape[0] // 2
    if (cfg.mode_seeking > 0 or cfg.mode_seeking_features > 0) and half > 0:
        return z[: 2 * half], hair[:half].repeat(2), eye[:half].repeat(2)
    return z, hair, eye


def g_loss(
    G: torch.nn.Module,
    D: torch.nn.Module,
    z: torch.Tensor,
    hair: torch.Tensor,
    eye: torch.Tensor,
    cfg: TrainConfig,
    fake: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """Non-saturating (hinge: -score) generator loss on augmented fakes, plus mode seeking if ``cfg.mode_seeking``.

    Mode seeking (Mao et al. 2019): the second half of the batch repeats the first half's tags with
    other noise (``g_inputs``), and the loss grows as the two halves' images get closer. Without it
    our first CPU runs drew one face per tag pair whatever the noise (conditional mode collapse).
    ``cfg.mode_seeking_features`` adds the same term measured in the discriminator's features.
    ``fake``, when given, is ``G(*g_inputs(z, hair, eye, cfg))`` already drawn (with its graph).
    """
    z, hair, eye = g_inputs(z, hair, eye, cfg)
    half = z.shape[0] // 2
    in_features = cfg.mode_seeking_features > 0 and half > 0
    if fake is None:
        fake = G(z, hair, eye)
    if in_features:
        # Each pair shares one augmentation (its two images stacked as six channels), so that the
        # distance between their features is the generator's doing, not the augmentation's.
        seen = torch.cat(diff_augment(torch.cat([fake[:half], fake[half:]], 1), cfg.augment).chunk(2, 1))
        phi = D.phi(seen)
        scores, _, logits = D.read(phi, hair, eye)
    else:
        scores, _, logits = D(diff_augment(fake, cfg.augment), hair, eye)
    loss = -scores.mean() if cfg.loss == "hinge" else F.softplus(-scores).mean()
    stats: dict = {}
    if logits is not None and len(logits) == 4 and cfg.twin_loss == "adc":
        # ADC-GAN (Hou et al. 2022): towards "real k" and away from "generated k" in the one softmax;
        # the difference of the two cross-entropies is the difference of their two logits.
        joint = adc_logits(logits)
        aux = tag_loss(*joint, hair, eye, cfg.aux_confident)
        twin = tag_loss(*joint, hair + logits[0].shape[1], eye + logits[1].shape[1])
        loss = loss + cfg.aux_weight * (aux - cfg.twin_share * twin)
        stats["g_aux"], stats["g_twin"] = aux.item(), twin.item()
    elif logits is not None:
        aux = tag_loss(*logits[:2], hair, eye, cfg.aux_confident)
        loss = loss + cfg.aux_weight * aux
        stats["g_aux"] = aux.item()
        if len(logits) == 4:
            # TAC-GAN: minimising the real-trained head's loss alone also lowers the conditional entropy
            # of the images (each drawn as its colours' most typical one); raising the twin's loss,
            # which names the generator's own images, cancels that term (Gong et al. 2019); a share
            # below 1 cancels part of it.
            twin = tag_loss(*logits[2:], hair, eye)
            loss = loss - cfg.twin_share * cfg.aux_weight * twin
            stats["g_twin"] = twin.item()
    noise_distance = (z[:half] - z[half:]).abs().mean(1)
    if cfg.mode_seeking > 0 and half > 0:
        ratio = (fake[:half] - fake[half:]).abs().flatten(1).mean(1) / noise_distance
        loss = loss + cfg.mode_seeking / (ratio.float().mean() + 1e-5)
        stats["image_per_noise_distance"] = ratio.mean().item()
    if in_features:
        # The same term in the discriminator's features (cosine distance: their scale drifts as D
        # trains): images that differ only where D does not look count as alike.
        apart = 1 - F.cosine_similarity(phi[:half].float(), phi[half:].float(), dim=1)
        ratio = apart / noise_distance
        loss = loss + cfg.mode_seeking_features / (ratio.mean() + 1e-5)
        stats["feature_per_noise_distance"] = ratio.mean().item()
    return loss, stats


def grid_inputs(
    n: int, nz: int, pair_counts: np.ndarray, rows: int = 10
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


@dataclass
class Nets:
    """The generator, the discriminator, their optimizers and the generator's moving average."""

    gen: Generator
    disc: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA
    colour: list[AttributeNet] = field(default_factory=list)  # data.retag's two tag classifiers, for drawing

    def models(self) -> dict[str, torch.nn.Module]:
        return {"G": self.gen, "D": self.disc, "G_ema": self.ema.model}  # the checkpoint's names

    def saved_models(self) -> dict[str, torch.nn.Module]:
        """:meth:`models` and the tag classifiers (``colour0``, ``colour1``), which resuming does not read."""
        return {**self.models(), **{f"colour{k}": net for k, net in enumerate(self.colour)}}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    seconds: float = 0.0  # training time of the runs this one resumes (the learning-rate schedule's clock)


def memory_format(train: TrainConfig) -> torch.memory_format:
    """NHWC with ``train.channels_last``: 1.09-1.17x the images/s of NCHW on two CPU threads (docs/RESULTS.md)."""
    return torch.channels_last if train.channels_last else torch.contiguous_format


def build(cfg: Config, device: torch.device) -> Nets:
    """Models, optimizers and the EMA copy from the config (a bad model config is one clear line)."""
    if len(cfg.train.betas) != 2:
        raise UserError(f"config key 'train.betas' must hold 2 numbers, got {cfg.train.betas}")
    if cfg.train.tag_groups > 1 and cfg.train.tag_groups != cfg.model.mbstd_group:
        raise UserError(
            f"train.tag_groups {cfg.train.tag_groups} must equal model.mbstd_group {cfg.model.mbstd_group}: "
            "the groups are there for the discriminator's minibatch standard deviation"
        )
    if cfg.train.twin_loss == "adc" and not cfg.model.aux_twin:
        raise UserError("train.twin_loss adc needs model.aux_twin: the twin's logits are the 'generated' classes")
    try:
        fmt = memory_format(cfg.train)
        gen = Generator(cfg.model, N_HAIR, N_EYE).to(device, memory_format=fmt)
        disc = Discriminator(cfg.model, N_HAIR, N_EYE).to(device, memory_format=fmt)
    except ValueError as exc:
        raise UserError(f"model config: {exc}") from None
    betas = tuple(cfg.train.betas)
    return Nets(
        gen,
        disc,
        torch.optim.Adam(gen.parameters(), cfg.train.lr_g, betas=betas),
        torch.optim.Adam(disc.parameters(), cfg.train.lr_d, betas=betas),
        EMA(gen, cfg.train.ema_decay),
    )


def share(nets: Nets, env: DistEnv, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D as the processes share them (DDP under torchrun, which starts every rank from rank 0's
    weights), with the EMA copy made rank 0's too."""
    broadcast_from_main(nets.ema.model, env)
    return wrap_model(nets.gen, env, device), wrap_model(nets.disc, env, device)


def load_training_data(run: Run[Config]) -> tuple[FaceData, list[AttributeNet]]:
    """The images the GAN trains on (all but the evaluation holdout, at most ``data.limit``), and with
    ``data.retag`` the two tag classifiers that cleaned their tags."""
    cfg = run.cfg
    data = load_faces(cfg.data.path or None)
    run.say(data.summary())
    train_data = data.subset(~holdout_mask(data.ids, cfg.data.holdout_percent))
    if cfg.data.limit:
        train_data = train_data.subset(np.arange(len(train_data)) < cfg.data.limit)
    run.say(f"training on {len(train_data)} images ({cfg.data.holdout_percent:g}% held out for evaluation)")
    nets: list[AttributeNet] = []
    if cfg.data.retag:
        state = rng_state()  # the two classifiers draw from the global generators; the GAN's draws stay as seeded
        if run.env.is_main:  # only the main process saves checkpoints, so only it keeps the classifiers
            nets = cached_out_of_fold(train_data, quiet=run.quiet, device=run.device)[2]
        barrier(run.env)  # the other processes read the cache the main one wrote
        cleaned = retag(train_data, cfg.data.retag, quiet=True, device=run.device)
        run.say(f"data.retag {cfg.data.retag:g}: {changes(train_data, cleaned)}")
        set_rng_state(state)
        train_data = cleaned
    return train_data, nets


def restore(run: Run[Config], nets: Nets) -> LoopState:
    if run.resume_state is None:
        return LoopState()
    saved = run.restore(models=nets.models(), optimizers=nets.optimizers())
    return LoopState(saved["step"], saved["epoch"], saved["extra"].get("train_seconds", 0.0))


def schedule_lr(nets: Nets, train: TrainConfig, step: int, seconds: float, epochs: float) -> float:
    """Set both rates for the next step (``step`` steps, ``seconds`` and ``epochs`` into the run); the factor."""
    done = run_progress(epochs, train.epochs, seconds, train.max_minutes, step, train.max_steps)
    factor = lr_factor(train.lr_schedule, done, floor=train.lr_floor, hold=train.lr_hold)
    for opt, lr in ((nets.opt_g, train.lr_g), (nets.opt_d, train.lr_d)):
        for group in opt.param_groups:
            group["lr"] = lr * factor
    return factor


def train_step(
    nets: Nets,
    gen_ddp: torch.nn.Module,
    disc_ddp: torch.nn.Module,
    x: torch.Tensor,
    hair: torch.Tensor,
    eye: torch.Tensor,
    cfg: Config,
    step: int,
) -> dict[str, float]:
    """One discriminator step, then one generator step, then the EMA update: losses and statistics.

    ``gen_ddp`` / ``disc_ddp`` are the models as the processes share them (DDP-wrapped under torchrun).
    """
    train = cfg.train
    z = torch.randn(x.shape[0], cfg.model.nz, device=x.device)
    nets.gen.train()
    penalise = train.penalty != "none" and step % train.penalty_every == 0
    with autocast(x.device, train.amp):
        if train.reuse_fakes:
            # The G step's own batch (with its graph), which D also learns from, detached.
            z, fake_hair, fake_eye = g_inputs(z, hair, eye, train)
            kept = gen_ddp(z, fake_hair, fake_eye)
            fake, fake_tags = kept.detach(), (fake_hair, fake_eye)
        else:
            with torch.no_grad():
                fake = gen_ddp(z, hair, eye)
            kept, fake_tags = None, None
        loss_d, stats = d_loss(disc_ddp, x, fake, hair, eye, train, penalise, N_HAIR, N_EYE, fake_tags)
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    nets.opt_d.step()
    # The G step needs gradients through D, not for it: the bare module (no DDP sync) will do.
    nets.disc.requires_grad_(False)
    with autocast(x.device, train.amp):
        loss_g, g_stats = g_loss(gen_ddp, nets.disc, z, hair, eye, train, kept)
    stats.update(g_stats)
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opt_g.step()
    nets.disc.requires_grad_(True)
    nets.ema.update(nets.gen, step)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), **stats}


def save(
    run: Run[Config],
    nets: Nets,
    loop: LoopState,
    pair_counts: np.ndarray,
    train_images: int,
    fixed: list[torch.Tensor],
    seconds: float,
    is_best: bool,
) -> None:
    """Checkpoint (BatchNorm statistics re-estimated for the EMA weights first) and this epoch's grid."""
    if not run.env.is_main:
        return
    train = run.cfg.train
    sampler = nets.ema.model if train.ema else nets.gen
    if train.ema:
        recalibrate_batchnorm(nets.ema.model, N_HAIR, N_EYE, pair_probs=torch.from_numpy(pair_counts).float())
    state = make_state(
        HOMEWORK,
        models=nets.saved_models(),
        optimizers=nets.optimizers(),
        step=loop.step,
        epoch=loop.epoch,
        config=config_to_dict(run.cfg),
        extra={
            "hair_colours": HAIR_COLOURS,
            "eye_colours": EYE_COLOURS,
            "pair_counts": pair_counts.tolist(),
            "sampler": "G_ema" if train.ema else "G",
            "train_images": train_images,
            "train_seconds": seconds,
        },
    )
    run.ckpt.save(state, is_best)
    with torch.no_grad():
        sampler.eval()
        hair, eye = (t[:: train.grid_noise].tolist() for t in fixed[1:])
        save_grid(
            to_uint8(sampler(*fixed)),
            train.grid_noise,
            run.run_dir / "grids" / f"epoch_{loop.epoch:03d}.png",
            labels=[describe(h, e) for h, e in zip(hair, eye)],
        )


def train_gan(run: Run[Config]) -> None:
    cfg, device, env = run.cfg, run.device, run.env
    nets = build(cfg, device)
    train_data, nets.colour = load_training_data(run)
    loop = restore(run, nets)
    gen_ddp, disc_ddp = share(nets, env, device)
    batches = Batches(
        train_data,
        cfg.train.batch_size,
        cfg.seed,
        env.rank,
        env.world_size,
        cfg.model.image_size,
        cfg.data.flip,
        cfg.train.balance,
        cfg.train.tag_groups,
    )
    pair_counts = train_data.pair_counts()
    total_steps = cfg.train.epochs * batches.per_epoch
    if cfg.train.max_steps:
        total_steps = min(total_steps, cfg.train.max_steps)
    fmt = memory_format(cfg.train)
    fixed = [t.to(device) for t in grid_inputs(cfg.train.grid_noise, cfg.model.nz, pair_counts)]
    start, seen, budget = time.time(), 0, TimeBudget(cfg.train.max_minutes, env)
    bar = progress(total=total_steps, initial=loop.step, desc=HOMEWORK, unit="step", quiet=run.quiet or not env.is_main)
    stopped, lr_stats = False, {}
    while loop.step < total_steps and not stopped:
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for x, hair, eye in batches.epoch(loop.epoch, start=loop.step - loop.epoch * batches.per_epoch):
            x = x.to(device, memory_format=fmt)
            if cfg.train.lr_schedule != "constant":
                clock = all_reduce_mean(loop.seconds + budget.elapsed, env)  # one clock: the same rate on every rank
                lr_stats = {"lr_factor": schedule_lr(nets, cfg.train, loop.step, clock, loop.step / batches.per_epoch)}
            stats = train_step(nets, gen_ddp, disc_ddp, x, hair.to(device), eye.to(device), cfg, loop.step) | lr_stats
            loop.step += 1
            seen += x.shape[0] * env.world_size
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            bar.update(1)
            bar.set_postfix(
                loss_d=f"{stats['loss_d']:.3f}",
                loss_g=f"{stats['loss_g']:.3f}",
                img_s=f"{seen / (time.time() - start):.0f}",
            )
            late = budget.spent()
            if loop.step >= total_steps or late:
                stopped = loop.step < total_steps
                break
            if cfg.train.save_every_steps and loop.step % cfg.train.save_every_steps == 0:
                save(run, nets, loop, pair_counts, len(train_data), fixed, loop.seconds + budget.elapsed, is_best=False)
        loop.epoch += int(loop.step == (loop.epoch + 1) * batches.per_epoch)
        means = {k: all_reduce_mean(v / counts[k], env) for k, v in sums.items()}
        rate = seen / (time.time() - start)
        run.log.log(loop.step, epoch=loop.epoch, images_per_s=rate, **means)
        run.say(
            f"epoch {loop.epoch} step {loop.step}: "
            + " ".join(f"{k} {v:.3f}" for k, v in means.items())
            + f", {rate:.0f} images/s"
        )
        # GAN losses do not say which epoch samples best; the newest weights are kept as best.pt.
        save(run, nets, loop, pair_counts, len(train_data), fixed, loop.seconds + budget.elapsed, is_best=True)
    bar.close()
    if stopped:
        run.say(f"stopped after {cfg.train.max_minutes:g} minutes (train.max_minutes) at step {loop.step}")
    run.say(f"checkpoint: {run.ckpt.best}; grids: {run.run_dir / 'grids'}")


def _main(args: argparse.Namespace) -> int:
    return train_command(HOMEWORK, Config, args, train_gan)


def main(argv: Sequence[str] | None = None) -> int:
    parser = train_parser(HOMEWORK, "Train the conditional anime-face GAN (hair and eye colour tags).")
    return run_cli(_main, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
