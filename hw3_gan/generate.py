"""The course command: ``python -m hw3_gan.generate testing_text.txt [--out samples] [--seed N]``.

``--candidates N`` makes every image the best of N noise draws, as ``--picker`` names their colours
(runs with ``model.aux_classifier``): more images in the asked colours, less variety. The picker is
the run's own discriminator (``--picker discriminator``), the two tag classifiers that cleaned the
tags of a run trained with ``data.retag``, which its checkpoint carries (``classifiers``), or, the
default for such a run, their log-probability plus half the discriminator's (``both``).
``--spread K`` with it keeps each line's five images apart instead: each image after the first is the
draw farthest from the line's earlier images among its K most probable draws (K = 1: the best of N).
``--accept R`` keeps them apart among every draw at least R times as probable as the image's most
probable draw instead (R = 1: the best of N). Without these options, a run with a tag classifier draws
as ``--candidates 8 --accept 0.5`` (the drawing docs/RESULTS.md chose for ``cpu60_adc_retag.yaml``,
with ``--picker both`` where the run carries the tag classifiers) and any other run plainly;
``--candidates 1`` draws plainly.
``--colour-grid PNG`` (every hair x eye colour, one noise) and ``--interpolate PNG`` (between two
seeds at fixed tags) draw pictures instead.

Writes ``<out>/sample_<id>_<k>.jpg`` (k = 1..5, 64x64) for every testing line and ``<out>/grid.png``
of them all (one row per line, labelled with its id and tags). The same checkpoint and seed give the same images.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.checkpoint import load_checkpoint
from common.cli import add_checkpoint_arg
from common.config import config_from_dict
from common.errors import UserError, run_cli
from common.files import check_outputs, staged_files
from common.metrics import say
from common.runs import latest_checkpoint
from common.setup import start_inference
from hw3_gan import HOMEWORK
from hw3_gan.classifier import asked_log_prob, fused, net_from_state
from hw3_gan.config import Config
from hw3_gan.data import IMAGE_SIZE, save_grid, to_uint8
from hw3_gan.model import Discriminator, Generator, adc_logits
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS, PER_LINE, TagRequest, describe, parse_tags, read_testing_text

PICKERS = ("discriminator", "classifiers", "both")
DEFAULT_PICKER = "both"  # for runs that carry data.retag's tag classifiers (docs/RESULTS.md: chosen on attempts 47-49)
DISC_WEIGHT = 0.5  # "both": the classifiers' log-probability + this x the discriminator's


class TagSampler:
    """A trained generator with its colour lists and the training tag statistics.

    With ``candidates`` n > 1, every image is the best of n noise draws as ``picker`` (below) judges it:
    with the run's own discriminator, the one its tag classifier gives the highest probability of the
    asked hair and eye colours (with ADC-GAN's heads, of the asked colours as *real* images). Best-of-n
    selection is a simple form of discriminator rejection sampling (Azadi et al. 2019); the evaluation
    classifier plays no part. It trades variety for colours: docs/RESULTS.md measures n = 1 to 4.

    With ``spread`` k > 1, the images of one call (one testing line) are kept apart instead: each image
    after the first is, among its k most probable draws, the one farthest from the images already
    chosen in the discriminator's features (see :func:`spread_pick`; k = 1 is the best of n). With
    ``accept`` r > 0, it chooses among the draws at least r times as probable as the most probable one
    instead of the k most probable: few when one draw stands out, many when several are alike.

    ``picker`` says what names a draw's colours: ``discriminator`` (as above), ``classifiers`` (the two
    image classifiers ``data.retag`` trained on halves of the GAN's training images, which a run
    trained with it carries as ``colour0`` and ``colour1``; the evaluation classifier's network and
    recipe, on other images), or ``both`` (their log-probability plus :data:`DISC_WEIGHT` times the
    discriminator's, whose ADC head also tells real images from generated ones). By default, ``both``
    where the run carries the classifiers, else the discriminator.
    """

    def __init__(
        self,
        state: dict,
        device: torch.device,
        source: str = "checkpoint",
        candidates: int = 1,
        spread: int = 1,
        accept: float = 0.0,
        picker: str | None = None,
    ):
        if candidates < 1:
            raise UserError(f"--candidates must be at least 1, got {candidates}")
        if not 1 <= spread <= candidates:
            raise UserError(f"--spread must be between 1 and --candidates ({candidates}), got {spread}")
        if accept and not (0 < accept <= 1 and candidates > 1 and spread == 1):
            raise UserError(f"--accept must be in (0, 1], with --candidates above 1 and no --spread, got {accept}")
        extra = state.get("extra", {})
        try:
            cfg = config_from_dict(Config, state["config"])
            self.hair_names, self.eye_names = list(extra["hair_colours"]), list(extra["eye_colours"])
            n_hair, n_eye = len(self.hair_names), len(self.eye_names)
            self.gen = Generator(cfg.model, n_hair, n_eye)
            self.gen.load_state_dict(state["models"][extra.get("sampler", "G_ema")])
            self.disc = None
            if candidates > 1 and cfg.model.aux_classifier:
                self.disc = Discriminator(cfg.model, n_hair, n_eye)
                self.disc.load_state_dict(state["models"]["D"])
            colour = [net_from_state(state["models"][k]) for k in ("colour0", "colour1") if k in state["models"]]
        except (KeyError, TypeError, RuntimeError, UserError) as exc:
            raise UserError(f"{source}: not a hw3_gan generator checkpoint ({type(exc).__name__}: {exc})") from None
        if candidates > 1 and self.disc is None:
            raise UserError(f"{source}: --candidates {candidates} needs a run with model.aux_classifier")
        self.picker = picker or (DEFAULT_PICKER if colour else "discriminator")
        if self.picker not in PICKERS:
            raise UserError(f"--picker must be one of {', '.join(PICKERS)}, got '{self.picker}'")
        if picker and candidates == 1:
            raise UserError("--picker names the colours of draws to choose among: it goes with --candidates above 1")
        if self.picker != "discriminator" and not colour:
            raise UserError(f"{source}: --picker {self.picker} needs a run with data.retag's tag classifiers")
        picks = candidates > 1 and self.picker != "discriminator"
        self.colour = [fused(net).to(device) for net in colour] if picks else []  # only the classifiers it reads
        self.disc_weight = DISC_WEIGHT
        self.gen.to(device).eval()
        if self.disc is not None:
            self.disc.to(device).eval()
        self.candidates, self.spread, self.accept = candidates, spread, accept
        self.adc = cfg.model.aux_twin and cfg.train.twin_loss == "adc"
        self.device = device
        self.counts = np.asarray(
            extra.get("pair_counts", np.ones((len(self.hair_names), len(self.eye_names)))), dtype=np.float64
        )

    def tag_ids(self, req: TagRequest) -> tuple[int | None, int | None]:
        """Course colour ids → this checkpoint's ids (its lists may be older than ours)."""
        hair = self.hair_names.index(HAIR_COLOURS[req.hair]) if req.hair is not None else None
        eye = self.eye_names.index(EYE_COLOURS[req.eye]) if req.eye is not None else None
        return hair, eye

    def pairs(self, req: TagRequest) -> np.ndarray:
        """(hair, eye) mask of the pairs that have the line's tags (all pairs for a tag it leaves out)."""
        hair, eye = self.tag_ids(req)
        keep = np.ones(self.counts.shape, dtype=bool)
        if hair is not None:
            keep[np.arange(keep.shape[0]) != hair] = False
        if eye is not None:
            keep[:, np.arange(keep.shape[1]) != eye] = False
        return keep

    def unseen(self, req: TagRequest) -> bool:
        """Whether no training image has the line's tags (gray eyes, say): the model never learnt them."""
        return bool(self.counts[self.pairs(req)].sum() < 1)

    def fill(self, req: TagRequest, g: torch.Generator) -> tuple[list[int], list[int]]:
        """Hair and eye ids for the samples of one line; a tag the line leaves out is drawn from the
        training data's pairs that have the tag it gives."""
        probs = np.where(self.pairs(req), self.counts + 1e-9, 0.0)
        flat = torch.multinomial(torch.from_numpy(probs.flatten()), PER_LINE, replacement=True, generator=g)
        return (flat // probs.shape[1]).tolist(), (flat % probs.shape[1]).tolist()

    @torch.no_grad()
    def sample(self, hair: list[int], eye: list[int], g: torch.Generator) -> np.ndarray:
        """(N, 64, 64, 3) uint8 for N tag pairs: each chosen among ``candidates`` noise draws (see the class)."""
        n = self.candidates
        z = torch.randn(len(hair), n, self.gen.nz, generator=g)  # n == 1: the same noise as a plain draw
        if n == 1:
            return self.render(z[:, 0], hair, eye)
        hair_t = torch.tensor(hair, device=self.device).repeat_interleave(n)
        eye_t = torch.tensor(eye, device=self.device).repeat_interleave(n)
        x = self.gen(z.flatten(0, 1).to(self.device), hair_t, eye_t)
        log_p, feats = self.judge(x, hair_t, eye_t)
        log_p, feats = log_p.view(len(hair), n), feats.view(len(hair), n, -1)
        pick = spread_pick(log_p, feats, self.spread, self.accept)
        return self._to_images(x.view(len(hair), n, *x.shape[1:])[torch.arange(len(hair)), pick])

    @torch.no_grad()
    def judge(self, x: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(hair) + log p(eye) of the asked colours as :attr:`picker` names them, and the features the
        discriminator's heads read (the minibatch-deviation channel included) scaled to unit length, one
        row per image: they keep a line's images apart whichever names the colours."""
        log_p, feats = self.disc_judge(x, hair, eye)
        if not self.colour:
            return log_p, feats
        course = [  # this checkpoint's colour ids → the classifiers' (the course lists)
            torch.tensor([names.index(n) for n in own])[t.cpu()]
            for names, own, t in ((HAIR_COLOURS, self.hair_names, hair), (EYE_COLOURS, self.eye_names, eye))
        ]
        ours = asked_log_prob(self.colour, x, *course)
        return (ours + self.disc_weight * log_p if self.picker == "both" else ours), feats

    @torch.no_grad()
    def disc_judge(self, x: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(hair) + log p(eye) under the discriminator's tag classifier, and the features its heads
        read (the minibatch-deviation channel included) scaled to unit length, one row per image.

        Each image's candidates are consecutive, so the minibatch-deviation groups the discriminator
        reads hold one image's candidates (exactly, when their number is the group size).
        """
        phi = self.disc.phi(x.float())
        _, _, logits = self.disc.read(phi, hair, eye)
        hair_logits, eye_logits = adc_logits(logits) if self.adc else logits[:2]
        asked = [lg.log_softmax(1).gather(1, t[:, None])[:, 0] for lg, t in ((hair_logits, hair), (eye_logits, eye))]
        return asked[0] + asked[1], torch.nn.functional.normalize(phi, dim=1)

    @torch.no_grad()
    def render(self, z: torch.Tensor, hair: list[int], eye: list[int]) -> np.ndarray:
        """Noise (N, nz) and this checkpoint's tag ids → (N, 64, 64, 3) uint8."""
        x = self.gen(z.to(self.device), torch.tensor(hair, device=self.device), torch.tensor(eye, device=self.device))
        return self._to_images(x)

    def _to_images(self, x: torch.Tensor) -> np.ndarray:
        if x.shape[-1] != IMAGE_SIZE:
            x = torch.nn.functional.interpolate(x.float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic")
        return to_uint8(x)


def spread_pick(log_p: torch.Tensor, feats: torch.Tensor, keep: int, accept: float = 0.0) -> torch.Tensor:
    """One draw per image of a line: (images, draws) log-probabilities and (images, draws, dim) features
    → (images,) draw indices.

    The first image takes its most probable draw. Each later image takes, among its ``keep`` most
    probable draws, the one whose nearest already chosen image is farthest (greedy farthest-point
    selection). ``keep`` = 1 is the best of the draws for every image. With ``accept`` r > 0, an image
    chooses among its draws at least r times as probable as its most probable one instead.
    """
    ranked, order = log_p.sort(dim=1, descending=True, stable=True)  # most probable first
    if accept > 0:
        eligible = ranked >= ranked[:, :1] + math.log(accept)
    else:
        eligible = torch.arange(log_p.shape[1]).expand_as(order) < keep
    chosen = [int(order[0, 0])]
    for i in range(1, log_p.shape[0]):
        draws = order[i, eligible[i]]
        taken = feats[torch.arange(i), torch.tensor(chosen)]
        nearest = torch.cdist(feats[i, draws], taken).min(1).values
        chosen.append(int(draws[nearest.argmax()]))
    return torch.tensor(chosen)


def generate(sampler: TagSampler, requests: list[TagRequest], out: Path, seed: int = 0, quality: int = 95) -> Path:
    """Write 5 JPEGs per request (and grid.png) into ``out``, staged and moved in only when complete.

    Only these files are written: whatever else ``out`` holds stays as it was.
    """
    g = torch.Generator().manual_seed(seed)
    rows = []
    for req in requests:
        if sampler.unseen(req):
            say(f"warning: line {req.line}: the training data has no '{describe(req.hair, req.eye)}' image")
        rows.append(sampler.sample(*sampler.fill(req, g), g))
    with staged_files(out) as tmp:
        for req, images in zip(requests, rows):
            for k, img in enumerate(images, 1):
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="JPEG", quality=quality)
                (tmp / f"sample_{req.id}_{k}.jpg").write_bytes(buf.getvalue())
        labels = [f"{req.id}: {describe(req.hair, req.eye) or 'any colours'}" for req in requests]
        save_grid(np.concatenate(rows), PER_LINE, tmp / "grid.png", labels=labels)
    return out


def colour_grid(sampler: TagSampler, path: Path, seed: int = 0) -> None:
    """Every hair colour (rows) × every eye colour (columns), all from one noise vector, as one PNG."""
    z = torch.randn(1, sampler.gen.nz, generator=torch.Generator().manual_seed(seed))
    ids = [sampler.tag_ids(TagRequest("", h, e)) for h in range(len(HAIR_COLOURS)) for e in range(len(EYE_COLOURS))]
    images = sampler.render(z.repeat(len(ids), 1), [h for h, _ in ids], [e for _, e in ids])
    save_grid(
        images,
        len(EYE_COLOURS),
        path,
        labels=[f"{h} hair" for h in HAIR_COLOURS],
        col_labels=[f"{e} eyes" for e in EYE_COLOURS],
    )


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (N points for N values of ``t``): Gaussian noise keeps its norm on the way."""
    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4:
        return torch.lerp(a, b, t[:, None])
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolation(sampler: TagSampler, hair: int, eye: int, seeds: Sequence[int], steps: int, path: Path) -> None:
    """A strip of ``steps`` images at fixed tags, the noise moving from seed A's to seed B's."""
    a, b = (torch.randn(sampler.gen.nz, generator=torch.Generator().manual_seed(s)) for s in seeds)
    h, e = sampler.tag_ids(TagRequest("", hair, eye))
    images = sampler.render(slerp(a, b, torch.linspace(0, 1, steps)), [h] * steps, [e] * steps)
    save_grid(images, steps, path, labels=[f"{describe(hair, eye)}, seed {seeds[0]} to {seeds[1]}"])


DEFAULT_DRAWING = (8, 0.5)  # --candidates, --accept: chosen on held-apart noise seeds (docs/RESULTS.md)


def drawing(state: dict, candidates: int | None, spread: int, accept: float | None) -> tuple[int, float]:
    """--candidates and --accept as given, or the default drawing where they are not: among
    :data:`DEFAULT_DRAWING` for a run with a tag classifier (and no --spread), else plain."""
    if candidates is None:
        classifier = bool(state.get("config", {}).get("model", {}).get("aux_classifier"))
        candidates = DEFAULT_DRAWING[0] if classifier and spread == 1 else 1
        if accept is None and candidates > 1:
            accept = DEFAULT_DRAWING[1]
    return candidates, accept or 0.0


def output_names(requests: list[TagRequest]) -> list[str]:
    """The files :func:`generate` writes for ``requests``."""
    return [f"sample_{req.id}_{k}.jpg" for req in requests for k in range(1, PER_LINE + 1)] + ["grid.png"]


def _pictures(args: argparse.Namespace, device: torch.device) -> int:
    if args.candidates not in (None, 1) or args.spread != 1 or args.accept or args.picker:
        raise UserError(
            "--candidates, --spread, --accept and --picker pick among draws for a testing file; "
            "the pictures use fixed noise"
        )
    if args.steps < 2:
        raise UserError(f"--steps must be at least 2, got {args.steps}")
    hair, eye = parse_tags(args.tags, "--tags")
    if hair is None or eye is None:
        raise UserError(f"--tags needs a hair and an eye colour, got '{args.tags}'")
    ckpt = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(HOMEWORK)
    check_outputs([args.colour_grid, args.interpolate], [ckpt])
    sampler = TagSampler(load_checkpoint(ckpt, HOMEWORK), device, str(ckpt))
    if args.colour_grid:
        colour_grid(sampler, Path(args.colour_grid), args.seed)
        say(f"wrote {args.colour_grid}: {len(HAIR_COLOURS)} hair x {len(EYE_COLOURS)} eye colours, seed {args.seed}")
    if args.interpolate:
        interpolation(sampler, hair, eye, args.seeds, args.steps, Path(args.interpolate))
        say(f"wrote {args.interpolate}: {args.steps} images, seed {args.seeds[0]} to {args.seeds[1]}")
    return 0


def _main(args: argparse.Namespace) -> int:
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality must be 1..100, got {args.quality}")
    pictures = bool(args.colour_grid or args.interpolate)
    if pictures == bool(args.testing_text):
        raise UserError("give a testing file, or --colour-grid / --interpolate (not both)")
    device = start_inference(args.device, args.threads, seed=None)  # the images draw from their own --seed
    if pictures:
        return _pictures(args, device)
    requests = read_testing_text(args.testing_text)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, expected a folder")
    ckpt = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(HOMEWORK)
    check_outputs([out / name for name in output_names(requests)], [args.testing_text, ckpt])
    state = load_checkpoint(ckpt, HOMEWORK)
    candidates, accept = drawing(state, args.candidates, args.spread, args.accept)
    sampler = TagSampler(state, device, str(ckpt), candidates, args.spread, accept, args.picker)
    say(
        f"checkpoint: {ckpt}; each image chosen among {candidates} draw(s)"
        + (f", --accept {accept:g}" if accept else "")
        + (f", --picker {sampler.picker}" if candidates > 1 else "")
    )
    out = generate(sampler, requests, Path(args.out), args.seed, args.quality)
    say(f"wrote {PER_LINE * len(requests)} images for {len(requests)} lines to {out}/ (and {out / 'grid.png'})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.generate", description=__doc__.split("\n")[0])
    p.add_argument("testing_text", nargs="?", help="course testing file: '<id>,<hair> hair <eye> eyes' per line")
    p.add_argument(
        "--out",
        default="samples",
        help="output folder: its sample_*.jpg and grid.png are written, nothing else in it is touched",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed: the same seed gives the same images")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    p.add_argument(
        "--candidates",
        type=int,
        help="each image the best of this many noise draws, as --picker names their colours "
        "(default: 8 with --accept 0.5 for runs with a tag classifier, else 1)",
    )
    p.add_argument(
        "--spread",
        type=int,
        default=1,
        metavar="K",
        help="with --candidates: keep a line's images apart, each the farthest of its K most probable draws",
    )
    p.add_argument(
        "--accept",
        type=float,
        metavar="R",
        help="with --candidates: keep a line's images apart among the draws at least R times as probable as its best",
    )
    p.add_argument(
        "--picker",
        choices=PICKERS,
        help="with --candidates: what names a draw's colours: the run's discriminator, the tag classifiers a "
        "run trained with data.retag carries, or both (theirs + half the discriminator's log-probability; "
        "the default where the run carries them, else the discriminator)",
    )
    g = p.add_argument_group("pictures (instead of a testing file)")
    g.add_argument("--colour-grid", metavar="PNG", help="write every hair x eye colour, one face each (noise: --seed)")
    g.add_argument("--interpolate", metavar="PNG", help="write a strip between the noise of two --seeds at --tags")
    g.add_argument("--tags", default="blonde hair blue eyes", help="the tags of the --interpolate strip")
    g.add_argument("--seeds", type=int, nargs=2, default=[0, 1], metavar=("A", "B"), help="--interpolate's two seeds")
    g.add_argument("--steps", type=int, default=8, help="images in the --interpolate strip")
    add_checkpoint_arg(p, HOMEWORK)
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
