"""FLOPs per image of one HW3 training step, counted by torch.utils.flop_counter on CPU, and the time
per epoch they imply on one GPU at a given fraction of its matrix-multiply rate.

    python benchmarks/hw3_flops.py --config hw3_gan/configs/default.yaml --peak-tflops 802.5

One step is what ``hw3_gan.train.train_step`` does: the generator's forward for the D step (none
with ``train.reuse_fakes``), the
discriminator's forward and backward on reals and fakes (and the real images under wrong tags, which
reuse the same features), then the generator's forward and backward through the discriminator. The
lazy R1 penalty (a double backward every ``penalty_every`` steps) is counted on its own and spread
over its steps. Optimizer updates and the EMA are left out (elementwise, a few FLOPs per weight).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.config import load_config  # noqa: E402
from hw3_gan import train  # noqa: E402
from hw3_gan.config import Config  # noqa: E402
from hw3_gan.model import Discriminator, Generator  # noqa: E402

N_HAIR, N_EYE = 12, 11


def count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def step_flops(cfg: Config, batch: int) -> dict[str, float]:
    """FLOPs of each part of one training step on ``batch`` images, per image."""
    torch.manual_seed(0)
    G, D = Generator(cfg.model, N_HAIR, N_EYE), Discriminator(cfg.model, N_HAIR, N_EYE)
    s = cfg.model.image_size
    x = torch.rand(batch, 3, s, s) * 2 - 1
    h, e = torch.randint(0, N_HAIR, (batch,)), torch.randint(0, N_EYE, (batch,))
    z = torch.randn(batch, cfg.model.nz)

    def g_forward() -> None:
        with torch.no_grad():
            G(z, h, e)

    def d_step(penalise: bool) -> None:
        with torch.no_grad():
            fake = G(z, h, e)
        loss, _ = train.d_loss(D, x, fake, h, e, cfg.train, penalise, N_HAIR, N_EYE)
        loss.backward()

    def g_step() -> None:
        D.requires_grad_(False)
        loss, _ = train.g_loss(G, D, z, h, e, cfg.train)
        loss.backward()
        D.requires_grad_(True)

    parts = {
        "G forward (D step)": count(g_forward),
        "D forward+backward (D step)": count(lambda: d_step(False)) - count(g_forward),
        "G forward+backward through D (G step)": count(g_step),
    }
    if cfg.train.reuse_fakes:  # the D step learns from the G step's images: no forward of its own
        del parts["G forward (D step)"]
    if cfg.train.penalty != "none":
        extra = count(lambda: d_step(True)) - count(lambda: d_step(False))
        parts[f"{cfg.train.penalty} penalty, / {cfg.train.penalty_every} steps"] = extra / cfg.train.penalty_every
    return {k: v / batch for k, v in parts.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="hw3_gan/configs/default.yaml", help="the GAN config to count")
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--peak-tflops", type=float, default=802.5, help="the GPU's measured matmul rate, TFLOP/s")
    p.add_argument("--fraction", type=float, nargs="+", default=[0.05, 0.1, 0.3], help="achieved share of the peak")
    p.add_argument("--images", type=int, default=12048, help="training images per epoch")
    p.add_argument("--measured", type=float, help="a measured throughput on that GPU, images/s")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(Config, REPO / args.config, [])
    parts = step_flops(cfg, args.batch)
    total = sum(parts.values())
    print(f"{args.config}: FLOPs per image of one training step (batch {args.batch})")
    for name, v in parts.items():
        print(f"  {name:45s} {v / 1e9:8.3f} GFLOP")
    print(f"  {'total':45s} {total / 1e9:8.3f} GFLOP")
    for f in args.fraction:
        rate = f * args.peak_tflops * 1e12 / total
        minutes = cfg.train.epochs * args.images / rate / 60
        print(
            f"at {f:.2f} of {args.peak_tflops:g} TFLOP/s: {rate:,.0f} images/s, an epoch of {args.images:,} images "
            f"{args.images / rate:.1f} s, {cfg.train.epochs} epochs {minutes:.1f} min"
        )
    if args.measured:
        print(
            f"measured {args.measured:,.0f} images/s = {args.measured * total / 1e12:.1f} TFLOP/s = "
            f"{args.measured * total / (args.peak_tflops * 1e12):.3f} of the peak; an epoch "
            f"{args.images / args.measured:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
