"""Draw a run's loss curves to PNG (Pillow only): ``python -m common.plot runs/hw1_cloze/<run>``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from common.errors import UserError, run_cli
from common.files import atomic_write
from common.metrics import read_metrics

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def plot_curves(rows: list[dict], keys: Sequence[str], out: Path, size: tuple[int, int] = (800, 480),
                xlabel: str = "step") -> None:
    """Line chart of ``keys`` against ``step``, each series scaled to the shared y range."""
    series = {k: [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        raise UserError(f"none of {', '.join(keys)} appear in the metrics")
    w, h = size
    left, right, top, bottom = 70, 20, 20, 50
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([left, top, w - right, h - bottom], outline="black")

    def px(x: float, y: float) -> tuple[float, float]:
        sx = left + (x - x0) / (x1 - x0) * (w - left - right)
        return sx, h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)

    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        draw.text((5, px(x0, y)[1] - 6), f"{y:.3g}", fill="black")
        x = x0 + (x1 - x0) * i / 4
        draw.text((px(x, y0)[0] - 10, h - bottom + 5), f"{x:.0f}", fill="black")
    draw.text((w // 2 - 4 * len(xlabel), h - 20), xlabel, fill="black")
    for i, (key, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        if len(pts) > 1:
            draw.line([px(x, y) for x, y in pts], fill=colour, width=2)
        else:
            cx, cy = px(*pts[0])
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
        draw.text((left + 10, top + 8 + 14 * i), key, fill=colour)
    with atomic_write(out, "wb") as f:
        img.save(f, format="PNG")


def _main(args: argparse.Namespace) -> int:
    run = Path(args.run_dir)
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise UserError(f"{metrics}: no metrics file in this run folder")
    rows = read_metrics(metrics)
    keys = args.keys or sorted({k for r in rows for k in r if "loss" in k})
    out = Path(args.out) if args.out else run / "curves.png"
    plot_curves(rows, keys, out)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common.plot", description=__doc__)
    p.add_argument("run_dir", help="run folder holding metrics.jsonl")
    p.add_argument("--keys", nargs="+", help="metrics to draw (default: every key with 'loss' in it)")
    p.add_argument("--out", help="PNG path (default: <run_dir>/curves.png)")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
