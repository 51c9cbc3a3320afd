"""Ways of choosing among noise draws that docs/RESULTS.md tried beside ``--accept`` and did not
adopt, scored by ``python -m hw3_gan.evaluate`` with every other flag as given after ``--``:

    python benchmarks/hw3_draw_variants.py --realness W -- --all-pairs --candidates 8 --accept 0.5 \
        --sample-seed S --checkpoint RUN/best.pt --classifier CLASSIFIER.pt --threads 1
    python benchmarks/hw3_draw_variants.py --threshold P [--first] -- --all-pairs --candidates 8 ...
    python benchmarks/hw3_draw_variants.py --train-colour-nets DIR
    python benchmarks/hw3_draw_variants.py --colour-nets DIR [--plus-discriminator W] -- --all-pairs ...

``--realness W`` ranks a draw by log p(asked colours) + W log sigmoid(s), where s is the run's
discriminator score under the asked tags: discriminator rejection sampling (Azadi et al. 2019) on top
of the colours; the ``--accept`` rule then reads these ranks. ``--threshold P`` replaces the relative
``--accept`` rule by an absolute one: the draws with p(asked colours) >= P are eligible (the most
probable one when none is); each image after a line's first is the eligible draw farthest from the
line's earlier images, or with ``--first`` the first eligible draw in noise order.
``--colour-nets DIR`` draws a checkpoint made before runs kept their tag classifiers as one that
keeps them would be drawn (``generate --picker classifiers``, or ``both`` with
``--plus-discriminator W``, W times the discriminator's log-probability added; ``generate`` adds
0.5), with the two classifiers ``--train-colour-nets DIR`` trains into DIR/half0.pt and
DIR/half1.pt: ``data.retag``'s, on halves of $MLDS_DATA's GAN training split.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.device import set_threads  # noqa: E402
from hw3_gan import evaluate, generate  # noqa: E402
from hw3_gan.classifier import AttributeNet, load_classifier, save_classifier  # noqa: E402
from hw3_gan.data import holdout_mask, load_faces  # noqa: E402
from hw3_gan.model import adc_logits  # noqa: E402
from hw3_gan.retag import half_classifiers  # noqa: E402


def realness_judge(weight: float) -> Callable:
    """A ``TagSampler.judge`` whose log-probabilities gain ``weight`` × log sigmoid(discriminator score)."""

    @torch.no_grad()
    def judge(self, x: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        phi = self.disc.phi(x.float())
        score, _, logits = self.disc.read(phi, hair, eye)
        hair_logits, eye_logits = adc_logits(logits) if self.adc else logits[:2]
        asked = [lg.log_softmax(1).gather(1, t[:, None])[:, 0] for lg, t in ((hair_logits, hair), (eye_logits, eye))]
        realness = weight * torch.nn.functional.logsigmoid(score)
        return asked[0] + asked[1] + realness, torch.nn.functional.normalize(phi, dim=1)

    return judge


def colour_nets_judge(nets: list[AttributeNet], plus_discriminator: float | None, base: Callable) -> Callable:
    """A ``TagSampler.judge`` for a checkpoint that does not carry the tag classifiers: ``base`` (the
    sampler's own judge) with ``nets`` and ``--picker classifiers``, or ``both`` with the discriminator's
    log-probability at weight ``plus_discriminator``."""

    def judge(self, x: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.colour, self.picker = nets, "classifiers" if plus_discriminator is None else "both"
        self.disc_weight = plus_discriminator
        return base(self, x, hair, eye)

    return judge


def train_colour_nets(folder: Path, threads: int) -> None:
    """The two classifiers ``data.retag`` trains (seed 0), saved as FOLDER/half0.pt and half1.pt."""
    set_threads(threads)
    data = load_faces(None)
    train = data.subset(~holdout_mask(data.ids, 20.0))
    _, nets = half_classifiers(train)
    folder.mkdir(parents=True, exist_ok=True)
    for k, net in enumerate(nets):
        save_classifier(net, folder / f"half{k}.pt", {"retag_half": k, "train_images": len(train)})
    print(f"{folder}: two classifiers trained on halves of {len(train)} images")


def threshold_pick(threshold: float, first: bool) -> Callable:
    """A ``spread_pick`` that keeps the draws with probability >= ``threshold`` (see the module)."""

    def pick(log_p: torch.Tensor, feats: torch.Tensor, keep: int = 1, accept: float = 0.0) -> torch.Tensor:
        eligible = (log_p >= math.log(threshold)) | (log_p == log_p.max(1, keepdim=True).values)
        chosen: list[int] = []
        for i in range(log_p.shape[0]):
            draws = eligible[i].nonzero()[:, 0]
            if first or i == 0:
                chosen.append(int(draws[0]) if first else int(log_p[0].argmax()))
                continue
            taken = feats[torch.arange(i), torch.tensor(chosen)]
            chosen.append(int(draws[torch.cdist(feats[i, draws], taken).min(1).values.argmax()]))
        return torch.tensor(chosen)

    return pick


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(prog="python benchmarks/hw3_draw_variants.py", description=__doc__.split("\n")[0])
    way = p.add_mutually_exclusive_group(required=True)
    way.add_argument("--realness", type=float, metavar="W", help="add W x log sigmoid(discriminator score)")
    way.add_argument("--threshold", type=float, metavar="P", help="eligible: the draws with p(asked) >= P")
    way.add_argument("--colour-nets", type=Path, metavar="DIR", help="colours named by DIR/half0.pt and half1.pt")
    way.add_argument("--train-colour-nets", type=Path, metavar="DIR", help="train those two classifiers into DIR")
    p.add_argument("--first", action="store_true", help="with --threshold: the first eligible draw, not the farthest")
    p.add_argument(
        "--plus-discriminator",
        type=float,
        metavar="W",
        help="with --colour-nets: add W x the discriminator's log-probability",
    )
    p.add_argument("--threads", type=int, default=0, help="with --train-colour-nets: torch threads (0: free cores)")
    args = p.parse_args(ours)
    if args.threshold is not None and not 0 < args.threshold <= 1:
        p.error(f"--threshold must be in (0, 1], got {args.threshold}")
    if args.train_colour_nets:
        train_colour_nets(args.train_colour_nets, args.threads)
        return 0
    saved = generate.TagSampler.judge, generate.spread_pick
    try:
        if args.realness is not None:
            generate.TagSampler.judge = realness_judge(args.realness)
        elif args.colour_nets:
            nets = [load_classifier(args.colour_nets / f"half{k}.pt")[0] for k in (0, 1)]
            generate.TagSampler.judge = colour_nets_judge(nets, args.plus_discriminator, saved[0])
        else:
            generate.spread_pick = threshold_pick(args.threshold, args.first)
        return evaluate.main(rest)
    finally:
        generate.TagSampler.judge, generate.spread_pick = saved


if __name__ == "__main__":
    sys.exit(main())
