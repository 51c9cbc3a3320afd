"""The evaluation classifier: hair and eye colour heads on a small CNN, trained on held-out real images.

``python -m hw3_gan.classifier [--data PATH] [--out FILE]`` trains on the images the GAN never sees
(``holdout_mask``) and reports its accuracy on the GAN's training images, which it never sees. That
accuracy is the ceiling to read generated-image accuracies against.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from common.checkpoint import load_checkpoint, make_state
from common.device import set_threads
from common.errors import UserError, run_cli
from common.files import atomic_torch_save, check_outputs
from common.metrics import progress, say
from common.runs import runs_root
from common.seed import set_seed
from hw3_gan.data import FaceData, holdout_mask, load_faces, to_tensor, to_uint8
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS

KIND = "hw3_gan.classifier"


def default_path() -> Path:
    return runs_root() / "hw3_gan_classifier" / "classifier.pt"


class AttributeNet(nn.Module):
    """64x64 image → 256-d features → hair logits (12) and eye logits (11)."""

    def __init__(self, n_hair: int = len(HAIR_COLOURS), n_eye: int = len(EYE_COLOURS), width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in (width, width * 2, width * 4, width * 8):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True), nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 8 * width)
        self.drop = nn.Dropout(0.3)
        self.hair = nn.Linear(c_in, n_hair)
        self.eye = nn.Linear(c_in, n_eye)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.drop(self.body(x))
        return self.hair(f), self.eye(f)


@torch.no_grad()
def read_images(net: AttributeNet, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, ...]:
    """uint8 (N, 64, 64, 3) → (features (N, D), hair probabilities (N, 12), eye probabilities (N, 11)),
    read on the device ``net`` is on."""
    net.eval()
    device = next(net.parameters()).device
    out: list[list[np.ndarray]] = [[], [], []]
    for i in range(0, len(images), batch):
        f = net.features(to_tensor(images[i : i + batch]).to(device))
        for part, x in zip(out, (f.double(), net.hair(f).softmax(1), net.eye(f).softmax(1))):
            part.append(x.cpu().numpy())
    return tuple(np.concatenate(part) for part in out)


def asked_log_prob(
    nets: Sequence[AttributeNet], x: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor
) -> torch.Tensor:
    """log p(hair) + log p(eye) of the asked colours (course ids), one per image of ``x`` (float images in
    [-1, 1], read as their 8-bit versions), the probabilities averaged over ``nets`` (on ``x``'s device)."""
    images = to_tensor(to_uint8(x)).to(x.device)
    p_hair = p_eye = torch.zeros(())
    with torch.no_grad():
        for net in nets:
            f = net.eval().features(images)
            p_hair = p_hair + net.hair(f).softmax(1) / len(nets)
            p_eye = p_eye + net.eye(f).softmax(1) / len(nets)
    pairs = ((p_hair, hair), (p_eye, eye))
    asked = [p.gather(1, t[:, None].to(x.device))[:, 0].clamp_min(1e-12).log() for p, t in pairs]
    return asked[0] + asked[1]


def fused(net: AttributeNet) -> AttributeNet:
    """The same network for inference, about 1.5x as fast on a CPU (benchmarks/hw3_draw_speed.py): each BatchNorm
    folded into its convolution, max-pooling before the ReLU (the two commute), weights in NHWC order.
    Its outputs equal ``net``'s in eval mode up to float rounding."""
    layers = list(net.body)
    body: list[nn.Module] = []
    for i in range(0, len(layers) - 2, 4):  # Conv2d, BatchNorm2d, ReLU, MaxPool2d; then pooling, flatten
        conv, norm, relu, pool = layers[i : i + 4]
        body += [fuse_conv_bn_eval(conv.eval(), norm.eval()), pool, relu]
    out = copy.deepcopy(net)
    out.body = nn.Sequential(*body, *layers[-2:])
    return out.to(memory_format=torch.channels_last).eval()


def net_from_state(state: dict) -> AttributeNet:
    """An :class:`AttributeNet` of the width its weights have, holding them."""
    net = AttributeNet(width=int(state["hair.weight"].shape[1]) // 8)
    net.load_state_dict(state)
    return net.eval()


def predict(net: AttributeNet, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (N, 64, 64, 3) → (features (N, D), hair ids (N,), eye ids (N,))."""
    feats, hair, eye = read_images(net, images, batch)
    return feats, hair.argmax(1), eye.argmax(1)


def train_classifier(
    train: FaceData,
    epochs: int = 10,
    batch: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    quiet: bool = False,
    width: int = 32,
    device: torch.device | str = "cpu",
) -> AttributeNet:
    """A classifier trained on ``train`` on ``device`` (where it is returned); the batches and flips are
    drawn on the CPU, so a seed gives the same ones on any device."""
    set_seed(seed)
    net = AttributeNet(width=width).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    steps = epochs * max(1, len(train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    images, hair, eye = torch.from_numpy(train.images), torch.from_numpy(train.hair), torch.from_numpy(train.eye)
    bar = progress(total=steps, desc="classifier", unit="step", quiet=quiet)
    step = 0
    while step < steps:
        for idx in torch.randperm(len(train)).split(batch):
            if len(idx) < batch or step >= steps:
                continue
            x = to_tensor(images[idx].numpy()).to(device)
            flip = (torch.rand(len(idx)) < 0.5).to(device)
            x[flip] = x[flip].flip(-1)
            net.train()
            h_logits, e_logits = net(x)
            h, e = hair[idx].to(device), eye[idx].to(device)
            loss = F.cross_entropy(h_logits, h) + F.cross_entropy(e_logits, e)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return net.eval()


def accuracy(net: AttributeNet, data: FaceData) -> dict[str, float]:
    _, h, e = predict(net, data.images)
    hair_ok, eye_ok = h == data.hair, e == data.eye
    return {"hair": float(hair_ok.mean()), "eye": float(eye_ok.mean()), "joint": float((hair_ok & eye_ok).mean())}


def save_classifier(net: AttributeNet, path: Path, info: dict) -> None:
    extra = {"hair_colours": HAIR_COLOURS, "eye_colours": EYE_COLOURS, "width": net.hair.in_features // 8, **info}
    state = make_state(KIND, models={"net": net}, extra=extra)
    atomic_torch_save(state, path)


def load_classifier(path: str | Path) -> tuple[AttributeNet, dict]:
    state = load_checkpoint(path, KIND)
    extra = state["extra"]
    if extra.get("hair_colours") != HAIR_COLOURS or extra.get("eye_colours") != EYE_COLOURS:
        raise UserError(f"{path}: classifier was trained with other colour lists; train it again")
    net = AttributeNet(width=int(extra.get("width", 32)))
    try:
        net.load_state_dict(state["models"]["net"])
    except RuntimeError:
        raise UserError(f"{path}: classifier weights do not fit this version's network") from None
    return net.eval(), extra


def _main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    out = Path(args.out) if args.out else default_path()
    check_outputs([out], [args.data])  # refused before training, not after it
    data = load_faces(args.data or None)
    say(data.summary(), args.quiet)
    held = holdout_mask(data.ids, args.holdout_percent)
    if held.sum() < args.batch or (~held).sum() == 0:
        raise UserError(f"{data.source}: too few images for a {args.holdout_percent:g}% hold-out split")
    train, check = data.subset(held), data.subset(~held)
    rng = np.random.default_rng(0)
    check = check.subset(np.isin(np.arange(len(check)), rng.permutation(len(check))[: args.check]))
    start = time.time()
    net = train_classifier(train, args.epochs, args.batch, args.lr, args.seed, args.quiet)
    acc = accuracy(net, check)
    save_classifier(
        net,
        out,
        {
            "holdout_percent": args.holdout_percent,
            "train_images": len(train),
            "real_accuracy": acc,
            "check_images": len(check),
            "source": data.source,
        },
    )
    say(
        f"classifier trained on {len(train)} held-out images in {time.time() - start:.0f} s; accuracy on "
        f"{len(check)} other real images: hair {acc['hair']:.3f} eye {acc['eye']:.3f} joint {acc['joint']:.3f}",
        args.quiet,
    )
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.classifier", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="", help="data folder or .zip (default: $MLDS_DATA/hw3/extra_data.zip)")
    p.add_argument("--out", help=f"where to save it (default: {default_path()})")
    p.add_argument("--holdout-percent", type=float, default=20.0, help="must match the GAN's data.holdout_percent")
    p.add_argument("--epochs", type=int, default=10, help="training epochs")
    p.add_argument("--batch", type=int, default=64, help="batch size")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle)")
    p.add_argument("--check", type=int, default=3000, help="real images (not held out) to measure accuracy on")
    add_run_args(p, "random seed")
    return run_cli(_main, p, argv)


def add_run_args(p: argparse.ArgumentParser, seed_help: str) -> None:
    """--seed, --threads and --quiet, for the commands that train classifiers."""
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: free cores)")
    p.add_argument("--quiet", action="store_true", help="no progress or status lines")


if __name__ == "__main__":
    sys.exit(main())
