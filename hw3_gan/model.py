"""Conditional DCGAN: a generator fed tag embeddings and a projection discriminator.

The discriminator scores ``psi(phi(x)) + <E_hair[h], phi(x)> + <E_eye[e], phi(x)>`` (Miyato & Koyama
2018), so the score of a real image under wrong tags reuses its features at no extra cost.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import spectral_norm as sn

from common.config import param


@dataclass
class ModelConfig:
    image_size: int = param(64, ge=8)  # a power of two >= 8
    nz: int = param(100, gt=0)
    ngf: int = param(64, gt=0)
    ndf: int = param(64, gt=0)
    embed_dim: int = param(32, gt=0)  # per tag, in the generator's input
    spectral_norm: bool = False  # on every discriminator layer
    d_batchnorm: bool = False  # BatchNorm mixes samples, which gradient penalties assume it does not
    mbstd_group: int = param(4, ge=0)  # minibatch standard deviation over groups of this many images (0: off)
    aux_classifier: bool = False  # AC-GAN heads: D also names each image's hair and eye colour
    aux_twin: bool = False  # TAC-GAN: a twin head names the generated images' tags (needs aux_classifier)
    cond_bn: bool = False  # the generator's BatchNorm scales and shifts come from the tag embeddings


def _levels(image_size: int) -> int:
    n = int(math.log2(image_size)) - 2
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return n


class CondBatchNorm(nn.Module):
    """BatchNorm whose scale and shift are linear in a conditioning vector (class-conditional BatchNorm,
    as in the generators Miyato & Koyama 2018 paired with the projection discriminator, and BigGAN's)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.shift = nn.Linear(cond_dim, channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = 1 + self.gain(cond)[:, :, None, None]  # starts near 1: the plain BatchNorm of DCGAN
        return self.bn(x) * scale + self.shift(cond)[:, :, None, None]


class Generator(nn.Module):
    """z (B, nz) and tag ids (B,) → images (B, 3, S, S) in [-1, 1].

    The tags enter as embeddings beside the noise; with ``cond_bn`` they also set every BatchNorm's
    scale and shift, so each layer sees them.
    """

    def __init__(self, cfg: ModelConfig, n_hair: int, n_eye: int):
        super().__init__()
        self.nz = cfg.nz
        n = _levels(cfg.image_size)
        self.hair_embed = nn.Embedding(n_hair, cfg.embed_dim)
        self.eye_embed = nn.Embedding(n_eye, cfg.embed_dim)
        ch = cfg.ngf * 2 ** (n - 1)

        def norm(c: int) -> nn.Module:
            return CondBatchNorm(c, 2 * cfg.embed_dim) if cfg.cond_bn else nn.BatchNorm2d(c)

        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.nz + 2 * cfg.embed_dim, ch, 4, 1, 0, bias=False),
            norm(ch),
            nn.ReLU(True),
        ]  # (B, ch, 4, 4)
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1), nn.Tanh()]  # (B, 3, S, S)
        self.net = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
        tags = torch.cat([self.hair_embed(hair), self.eye_embed(eye)], dim=1)
        h = torch.cat([z, tags], dim=1)[:, :, None, None]
        for layer in self.net:
            h = layer(h, tags) if isinstance(layer, CondBatchNorm) else layer(h)
        return h


class Discriminator(nn.Module):
    """Images and tag ids → one realness score per image (a logit)."""

    def __init__(self, cfg: ModelConfig, n_hair: int, n_eye: int):
        super().__init__()
        n = _levels(cfg.image_size)
        wrap = sn if cfg.spectral_norm else (lambda m: m)
        ch = cfg.ndf
        layers: list[nn.Module] = [wrap(nn.Conv2d(3, ch, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [wrap(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not cfg.d_batchnorm))]
            if cfg.d_batchnorm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        self.features = nn.Sequential(*layers)  # (B, ch, 4, 4)
        self.mbstd_group = cfg.mbstd_group
        dim = (ch + int(cfg.mbstd_group > 0)) * 16
        self.psi = wrap(nn.Linear(dim, 1))
        self.hair_proj = wrap(nn.Embedding(n_hair, dim))
        self.eye_proj = wrap(nn.Embedding(n_eye, dim))
        # Auxiliary classifier (Odena et al. 2017, as MakeGirlsMoe used it): hair and eye logits from
        # the same features. Trained on real images only; the generator is asked to make them right.
        self.classifier = wrap(nn.Linear(dim, n_hair + n_eye)) if cfg.aux_classifier else None
        # Twin classifier (TAC-GAN, Gong et al. 2019): the same task on generated images only.
        if cfg.aux_twin and not cfg.aux_classifier:
            raise ValueError("model.aux_twin needs model.aux_classifier")
        self.twin = wrap(nn.Linear(dim, n_hair + n_eye)) if cfg.aux_twin else None
        self.n_hair = n_hair
        self.apply(_dcgan_init)
        for emb in (self.hair_proj, self.eye_proj):
            nn.init.normal_(getattr(emb, "weight_orig", emb.weight), 0.0, 0.02)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.mbstd_group:
            h = minibatch_std(h, self.mbstd_group)
        return h.flatten(1)  # (B, dim)

    def score(self, phi: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
        proj = (self.hair_proj(hair) * phi).sum(1) + (self.eye_proj(eye) * phi).sum(1)
        return self.psi(phi).squeeze(1) + proj  # (B,)

    def forward(
        self,
        x: torch.Tensor,
        hair: torch.Tensor,
        eye: torch.Tensor,
        wrong: tuple[torch.Tensor, torch.Tensor] | None = None,
        detach_head: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
        """Scores under the given tags; under the ``wrong`` tags when given (same features); and the
        auxiliary classifier's (hair, eye) logits when the model has one, followed by the twin's
        (hair, eye) logits when it has that too, read from features that pass the heads no gradient
        when ``detach_head``.

        One call does everything so that DistributedDataParallel sees a single forward per step.
        """
        return self.read(self.phi(x), hair, eye, wrong, detach_head)

    def read(
        self,
        phi: torch.Tensor,
        hair: torch.Tensor,
        eye: torch.Tensor,
        wrong: tuple[torch.Tensor, torch.Tensor] | None = None,
        detach_head: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
        """``forward`` from features already computed by ``phi``."""
        wrong_scores = self.score(phi, *wrong) if wrong is not None else None
        logits = None
        if self.classifier is not None:
            feats = phi.detach() if detach_head else phi
            heads = [head(feats) for head in (self.classifier, self.twin) if head is not None]
            logits = tuple(part for out in heads for part in (out[:, : self.n_hair], out[:, self.n_hair :]))
        return self.score(phi, hair, eye), wrong_scores, logits


def adc_logits(logits: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """ADC-GAN's 2K-way (hair, eye) logits: the classifier's K "real" classes, then the twin's K "generated"."""
    return torch.cat([logits[0], logits[2]], 1), torch.cat([logits[1], logits[3]], 1)


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """Append each group's mean feature standard deviation as one more channel (Karras et al. 2018).

    A generator that ignores its noise makes near-identical images, whose low spread this feature
    lets the discriminator see: without it our first CPU run drew one face per tag pair.
    Groups are runs of consecutive images, so a batch of reals followed by fakes never mixes them.
    """
    b = h.shape[0]
    g = max(d for d in range(1, min(group, b) + 1) if b % d == 0)
    y = h.float().view(b // g, g, *h.shape[1:])
    # The variance as the mean squared deviation: torch.var over this middle dimension is far slower on
    # CPU (docs/RESULTS.md, attempt 27).
    var = (y - y.mean(dim=1, keepdim=True)).pow(2).mean(dim=1)
    std = (var + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b // g,)
    std = std.repeat_interleave(g).view(b, 1, 1, 1).expand(b, 1, *h.shape[2:]).to(h.dtype)
    return torch.cat([h, std], dim=1)


def _dcgan_init(m: nn.Module) -> None:
    # Radford et al.: N(0, 0.02) weights, BatchNorm scales N(1, 0.02).
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(getattr(m, "weight_orig", m.weight), 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class EMA:
    """An exponential moving average of a model's weights (buffers are copied, not averaged)."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # Warm-up: early on the average would mostly remember the random initial weights.
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


@torch.no_grad()
def recalibrate_batchnorm(
    gen: Generator,
    n_hair: int,
    n_eye: int,
    batches: int = 8,
    batch_size: int = 64,
    pair_probs: torch.Tensor | None = None,
    seed: int = 0,
) -> None:
    """Recompute BatchNorm running statistics for the (averaged) weights the generator now has.

    The running statistics collected during training belong to the raw weights, not the EMA ones.
    """
    g = torch.Generator().manual_seed(seed)
    device = next(gen.parameters()).device
    bns = [m for m in gen.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    gen.train()
    for _ in range(batches):
        hair, eye = sample_tags(batch_size, n_hair, n_eye, pair_probs, g)
        z = torch.randn(batch_size, gen.nz, generator=g)
        gen(z.to(device), hair.to(device), eye.to(device))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    gen.eval()


def sample_tags(
    n: int, n_hair: int, n_eye: int, pair_probs: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (hair, eye) pairs from the training distribution (uniform when it is not known)."""
    if pair_probs is None:
        pair_probs = torch.ones(n_hair * n_eye)
    flat = torch.multinomial(pair_probs.flatten().float(), n, replacement=True, generator=generator)
    return flat // n_eye, flat % n_eye
