"""Learning-rate schedules as a pure function of how far a run has come (0 at its start, 1 at its end).

A run that stops on a time budget does not know its step count in advance, so its progress is the
largest share used of any of its budgets (epochs, minutes, steps). A resumed run recomputes the
factor from its saved progress: nothing of the schedule lives outside the checkpoint.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "linear", "cosine")


def run_progress(
    epochs: float, max_epochs: int, seconds: float = 0.0, max_minutes: float = 0.0, step: int = 0, max_steps: int = 0
) -> float:
    """Share (0..1) of the run behind it: the largest share spent of any budget that is set (0: none)."""
    shares = [epochs / max_epochs] if max_epochs > 0 else [0.0]
    if max_minutes > 0:
        shares.append(seconds / (max_minutes * 60))
    if max_steps > 0:
        shares.append(step / max_steps)
    return min(1.0, max(shares))


def lr_factor(kind: str, progress: float, warmup: float = 0.0, floor: float = 0.0, hold: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``progress`` (0..1) of the run.

    A linear warm-up over the first ``warmup`` share of the run, then ``kind``: ``constant``, or a
    ``linear`` or ``cosine`` decay from 1 to ``floor`` over the rest; with ``hold``, the decay waits
    at 1 until that share of the run.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {kind!r} (one of {', '.join(SCHEDULES)})")
    if progress < warmup:
        return max(progress / warmup, 1e-3)  # never exactly 0: the first step still moves the weights
    if kind == "constant":
        return 1.0
    start = max(warmup, hold)
    decayed = min(1.0, max(0.0, progress - start) / max(1e-9, 1 - start))
    shape = 1 - decayed if kind == "linear" else 0.5 * (1 + math.cos(math.pi * decayed))
    return floor + (1 - floor) * shape
