"""Draw a run's training and validation curves to PNG (Pillow only): ``python -m common.plot RUN``.

One panel per kind of number (training losses, perplexities, other validation scores), each with
its own y axis: losses and perplexities on a log scale, since they fall by orders of magnitude
early and by small fractions late, and both halves matter when comparing runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import read_metrics

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
WIDTH, PANEL_HEIGHT = 900, 340
TITLE_H, LEFT, RIGHT, TOP, BOTTOM = 34, 80, 24, 30, 46  # TOP holds the panel's name and legend
FONT_SIZE = 14
PAD = 0.05  # share of the y span left free above and below the data, so no point sits on the frame
# Bookkeeping columns that are not curves anyone reads at a glance.
SKIPPED = {"step", "time", "epoch", "lr", "teacher_p"}


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def panels_for(keys: Sequence[str], rest_title: str = "validation") -> list[tuple[str, list[str], bool]]:
    """Group metric names into ``(title, keys, log_scale)`` panels: losses, perplexities, the rest."""
    losses = [k for k in keys if "loss" in k]
    ppls = [k for k in keys if "ppl" in k or "perplexity" in k]
    rest = [k for k in keys if k not in losses and k not in ppls]
    groups = [
        ("training loss" if all(not k.startswith("val") for k in losses) else "loss", losses, True),
        ("perplexity", ppls, True),
        (rest_title, rest, False),
    ]
    return [g for g in groups if g[1]]


def nice_ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Round tick values covering [lo, hi]: 1-2-5 steps (log: 1, 2, 5 per decade, or 1..9 if narrow)."""
    if log:
        for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
            ticks = [
                m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in mantissas
            ]
            inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
            if len(inside) >= 3:
                return inside
        # Under a factor of ~3 a log axis looks linear: plain 1-2-5 values read best.
    raw = (hi - lo) / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def plot_area(index: int, size: tuple[int, int], n_panels: int) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` of panel ``index``'s plotting area (axes' inner rectangle)."""
    w, h = size
    panel_h = (h - TITLE_H) // n_panels
    top = TITLE_H + index * panel_h
    return LEFT, top + TOP, w - RIGHT, top + panel_h - BOTTOM


def _y_range(values: list[float], log: bool) -> tuple[float, float, bool]:
    log = log and min(values) > 0
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = (lo / 2, hi * 2) if log else (lo - 1, hi + 1)
    if log:
        ratio = (hi / lo) ** PAD
        return lo / ratio, hi * ratio, True
    pad = (hi - lo) * PAD
    return lo - pad, hi + pad, False


def _draw_panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: dict[str, list[tuple[float, float]]],
    x_range: tuple[float, float],
    log: bool,
    xlabel: str = "step",
) -> None:
    x0, y0, x1, y1 = box
    font, small = _font(), _font(FONT_SIZE - 2)
    lo, hi, log = _y_range([y for pts in series.values() for _, y in pts], log)
    f = math.log10 if log else float

    def px(x: float, y: float) -> tuple[float, float]:
        sx = x0 + (x - x_range[0]) / (x_range[1] - x_range[0]) * (x1 - x0)
        return sx, y1 - (f(y) - f(lo)) / (f(hi) - f(lo)) * (y1 - y0)

    for t in nice_ticks(lo, hi, log):
        ty = px(x_range[0], t)[1]
        draw.line([(x0, ty), (x1, ty)], fill="#e4e4e4")
        draw.text((x0 - 6, ty), f"{t:.3g}", fill="black", font=small, anchor="rm")
    for t in nice_ticks(*x_range, log=False):
        tx = px(t, lo)[0]
        draw.line([(tx, y1), (tx, y1 + 4)], fill="black")
        draw.text((tx, y1 + 6), f"{t:.0f}", fill="black", font=small, anchor="mt")
    draw.rectangle(box, outline="black")
    draw.text((x0, y1 + 24), xlabel, fill="black", font=font)
    draw.text((x0, y0 - 6), title + (" (log scale)" if log else ""), fill="black", font=font, anchor="ld")
    legend_x = x1
    for i, (key, pts) in reversed(list(enumerate(series.items()))):
        colour = COLOURS[i % len(COLOURS)]
        if len(pts) > 1:
            draw.line([px(x, y) for x, y in pts], fill=colour, width=2)
        for x, y in pts if len(pts) < 40 else pts[-1:]:
            cx, cy = px(x, y)
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
        legend_x -= draw.textlength(key, font=font)
        draw.text((legend_x, y0 - 6), key, fill=colour, font=font, anchor="ld")
        draw.line([(legend_x - 24, y0 - 12), (legend_x - 6, y0 - 12)], fill=colour, width=3)
        legend_x -= 40


def plot_curves(
    rows: list[dict],
    keys: Sequence[str],
    out: Path,
    title: str = "",
    size: tuple[int, int] | None = None,
    xlabel: str = "step",
    rest_title: str = "validation",
    panels: list[tuple[str, list[str], bool]] | None = None,
) -> None:
    """Draw ``keys`` against ``step`` into ``out`` (PNG), one panel per kind of metric; ``xlabel``
    names what ``step`` holds. ``panels`` (``(title, keys, log_scale)`` each) replaces the grouping
    by kind; keys without data are left out."""
    series = {
        k: [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])] for k in keys
    }
    series = {k: v for k, v in series.items() if v}
    if not series:
        raise UserError(f"none of {', '.join(keys)} appear in the metrics")
    if panels is None:
        panels = panels_for(list(series), rest_title)
    else:
        panels = [(t, [k for k in ks if k in series], log) for t, ks, log in panels]
        panels = [p for p in panels if p[1]]
    size = size or (WIDTH, TITLE_H + PANEL_HEIGHT * len(panels))
    xs = [x for pts in series.values() for x, _ in pts]
    x_range = (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.text((size[0] // 2, TITLE_H // 2), title, fill="black", font=_font(FONT_SIZE + 4), anchor="mm")
    for i, (name, keys_i, log) in enumerate(panels):
        box = plot_area(i, size, len(panels))
        _draw_panel(draw, box, name, {k: series[k] for k in keys_i}, x_range, log, xlabel)
    with atomic_write(out, "wb") as f:
        img.save(f, format="PNG")


def _main(args: argparse.Namespace) -> int:
    run = Path(args.run_dir)
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise UserError(f"{metrics}: no metrics file in this run folder")
    rows = read_metrics(metrics)
    keys = args.keys or sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if isinstance(v, (int, float)) and k not in SKIPPED and not k.endswith("_s") and not k.startswith("best_")
        }
    )
    out = Path(args.out) if args.out else run / "curves.png"
    check_outputs([out], [metrics])
    plot_curves(rows, keys, out, title=run.resolve().name)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m common.plot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_dir", help="run folder holding metrics.jsonl")
    p.add_argument(
        "--keys", nargs="+", help="metrics to draw (default: every number but step, time, epoch, lr, rates and best_*)"
    )
    p.add_argument("--out", help="PNG path (default: <run_dir>/curves.png)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
