"""Attention as a picture: one row per written word, one column per encoder step, darker = more weight."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from common.files import atomic_write

CELL_W, CELL_H = 6, 14  # pixels per encoder step and per word
LABEL_W, TOP = 96, 16  # room for the words on the left and the frame axis on top


def image_size(steps: int, words: int) -> tuple[int, int]:
    """(width, height) of the picture for ``steps`` encoder steps and ``words`` rows."""
    return LABEL_W + steps * CELL_W, TOP + words * CELL_H


def attention_png(weights: np.ndarray, words: Sequence[str], path: str | os.PathLike, frame_stride: int = 1) -> None:
    """Write ``weights`` (len(words), steps) as a heat map; each row is scaled to its own maximum,
    because a row's weights sum to 1 and a peaked row would otherwise look as faint as a flat one."""
    weights = np.asarray(weights, dtype=np.float64)
    rows, steps = weights.shape
    if rows != len(words):
        raise ValueError(f"{rows} rows of weights for {len(words)} words")
    scaled = weights / np.maximum(weights.max(axis=1, keepdims=True), 1e-12)
    cells = (255 * (1 - scaled)).astype(np.uint8)  # white (no weight) to dark red (the row's maximum)
    rgb = np.stack([np.full_like(cells, 255) - (255 - cells) // 3, cells, cells], axis=-1)
    grid = np.repeat(np.repeat(rgb, CELL_H, axis=0), CELL_W, axis=1)
    img = Image.new("RGB", image_size(steps, rows), "white")
    img.paste(Image.fromarray(grid, "RGB"), (LABEL_W, TOP))
    draw = ImageDraw.Draw(img)
    for i, word in enumerate(words):
        draw.text((2, TOP + i * CELL_H + 1), word[:15], fill="black")
    for step in range(0, steps, max(1, 10 // frame_stride)):  # a tick every 10 frames, labelled by frame
        draw.text((LABEL_W + step * CELL_W, 2), str(step * frame_stride), fill="gray")
    with atomic_write(path, "wb") as f:
        img.save(f, format="PNG", optimize=True)
