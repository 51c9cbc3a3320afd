"""DiffAugment (Zhao et al. 2020): random translation and cutout, differentiable, on every image the
discriminator sees, real and generated, in the discriminator's and in the generator's step.

With 12,000 training images the discriminator can learn the real set by heart; augmenting only
real images would teach the generator to draw the augmentations, augmenting both in a
differentiable way does not. Colour augmentation (the paper's third policy) is not offered: the
tags here are colours, and jittering brightness or saturation would change what a tag means.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout")


def _grid(b: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Batch, row and column indices, each (b, h, w)."""
    return torch.meshgrid(
        torch.arange(b, device=device), torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y; the uncovered border becomes 0 (grey).

    The result keeps the memory order of ``x`` (NCHW or channels-last).
    """
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    gb, gy, gx = _grid(b, h, w, x.device)
    gy = torch.clamp(gy + ty + 1, 0, h + 1)
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H+2, W+2, C): index by pixel
    out = padded[gb, gy, gx].permute(0, 3, 1, 2)  # channels-last in memory
    return out.contiguous(memory_format=torch.channels_last if _is_channels_last(x) else torch.contiguous_format)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` times the image size per image, at a random place."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gb, gy, gx = _grid(b, ch, cw, x.device)
    gy = torch.clamp(gy + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - cw // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


def diff_augment(x: torch.Tensor, policies: Sequence[str]) -> torch.Tensor:
    """Apply the named policies in order (an empty list returns ``x`` itself)."""
    for name in policies:
        if name == "translation":
            x = translation(x)
        elif name == "cutout":
            x = cutout(x)
        else:
            raise ValueError(f"unknown augmentation '{name}' (choices: {', '.join(POLICIES)})")
    return x
