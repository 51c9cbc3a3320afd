"""Per-step metrics to JSON Lines in the run folder, and tqdm progress bars."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm


class MetricsLog:
    """Appends one JSON object per call to ``<run_dir>/metrics.jsonl`` (``enabled=False``: no-op).

    Each line carries ``step``, wall time since start, and whatever numbers are given, so
    ``python -m common.plot <run_dir>`` can draw any of them.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None,
        enabled: bool = True,
        name: str = "metrics.jsonl",
        before_first_write: Callable[[], None] | None = None,
    ):
        self.path = Path(run_dir) / name if run_dir is not None and enabled else None
        self.start = time.time()
        self.before_first_write = before_first_write

    def log(self, step: int, **metrics: Any) -> dict:
        row = {"step": step, "time": round(time.time() - self.start, 3)}
        row.update(
            {
                k: (float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str)) else v)
                for k, v in metrics.items()
            }
        )
        if self.path is not None:
            if self.before_first_write is not None:
                self.before_first_write()
                self.before_first_write = None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        return row


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Rows of a metrics file; a torn last line (killed run) is skipped."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def progress(
    iterable: Iterable | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    quiet: bool = False,
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar on stderr, silent with ``quiet`` or when stderr is not a terminal."""
    disable = quiet or not sys.stderr.isatty()
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, unit_scale=True, **kwargs
    )


def say(message: str, quiet: bool = False) -> None:
    """A status line on stderr (kept off stdout so piped outputs stay clean)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)
