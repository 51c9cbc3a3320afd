import json

import pytest
from PIL import Image

from common.plot import main as plot_main
from common.plot import nice_ticks, plot_area

BLUE = (31, 119, 180)  # COLOURS[0], the first series


def _write(run, rows):
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rows_of(img, x, colour):
    return [y for y in range(img.height) if img.getpixel((x, y)) == colour]


def test_plot_of_known_metrics_has_a_panel_per_kind_and_is_not_blank(tmp_path):
    rows = [{"step": s, "time": s, "loss": 2.0 / (s + 1), "val_acc": 0.2 + 0.1 * s} for s in range(5)]
    _write(tmp_path / "run", rows)
    assert plot_main([str(tmp_path / "run"), "--out", str(tmp_path / "c.png")]) == 0
    img = Image.open(tmp_path / "c.png").convert("RGB")
    assert img.size == (900, 34 + 2 * 340)  # title strip + a loss panel + a validation panel
    for i in range(2):
        x0, y0, x1, y1 = plot_area(i, img.size, 2)
        inside = img.crop((x0 + 1, y0 + 1, x1, y1))
        assert BLUE in {c for _, c in inside.getcolors(1 << 16)}, f"panel {i} has no curve"
    assert sum(n for n, c in img.getcolors(1 << 16) if c != (255, 255, 255)) > 5000


def test_log_axis_puts_decades_at_hand_computed_rows(tmp_path):
    _write(tmp_path, [{"step": s, "loss": 10.0**s} for s in range(3)])  # 1, 10, 100
    assert plot_main([str(tmp_path)]) == 0
    img = Image.open(tmp_path / "curves.png").convert("RGB")
    assert img.size == (900, 374)
    assert plot_area(0, img.size, 1) == (80, 64, 876, 328)
    # log10 spans 0..2, padded by 5% of it at each end: -0.1..2.1 over the 264 rows 64..328.
    # 10 sits at (1 + 0.1) / 2.2 = 1/2 of the height: row 328 - 132 = 196, at step 1: column 80 + 796 / 2 = 478.
    # 1 sits at 0.1 / 2.2 of it: row 328 - 12 = 316; 100 at 2.1 / 2.2: row 328 - 252 = 76.
    for x, row in ((478, 196), (83, 316), (873, 76)):
        hits = _rows_of(img, x, BLUE)
        assert hits and all(abs(y - row) <= 4 for y in hits), (x, row, hits)
    # On a linear axis 10 would sit near the bottom (row ~302), not in the middle.
    assert not any(abs(y - 302) <= 4 for y in _rows_of(img, 478, BLUE))


def test_tick_values_are_round():
    assert nice_ticks(1, 100, log=True) == [1, 10, 100]
    assert nice_ticks(0.02, 9, log=True) == pytest.approx([0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5])
    assert nice_ticks(0.22, 0.65, log=True) == pytest.approx([0.3, 0.4, 0.5, 0.6])
    assert nice_ticks(1.19, 2.68, log=True) == pytest.approx([1.5, 2.0, 2.5])  # too narrow for log ticks
    assert nice_ticks(0.0, 1.0, log=False) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_explicit_panels_group_keys_as_given_and_drop_empty_ones(tmp_path):
    from common.plot import plot_curves

    rows = [{"step": s, "a": s, "b": -s, "c": s * s} for s in range(4)]
    out = tmp_path / "p.png"
    panels = [("first", ["a", "missing"], False), ("empty", ["missing"], False), ("second", ["b", "c"], False)]
    plot_curves(rows, ["a", "b", "c"], out, panels=panels)
    img = Image.open(out).convert("RGB")
    assert img.size == (900, 34 + 2 * 340)  # the panel with no data is left out
    RED = (214, 39, 40)  # COLOURS[1]: the second series of a panel, here "c"
    for i, colours in ((0, {BLUE}), (1, {BLUE, RED})):
        x0, y0, x1, y1 = plot_area(i, img.size, 2)
        inside = {c for _, c in img.crop((x0 + 1, y0 + 1, x1, y1)).getcolors(1 << 16)}
        assert colours <= inside and (i == 1 or RED not in inside), i
