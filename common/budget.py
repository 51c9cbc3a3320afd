"""The wall-time budget of a training run ("train for N minutes"), decided the same on every process."""

from __future__ import annotations

import time

from common.distributed import DistEnv, any_rank


class TimeBudget:
    """``minutes`` of wall time from construction; 0 or less means no limit.

    :meth:`spent` is a collective under ``torchrun``: every process must call it at the same
    step, and all get the same answer, so no process stops while another waits for it.
    """

    def __init__(self, minutes: float, env: DistEnv | None = None):
        self.limit = minutes * 60
        self.env = env or DistEnv()
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.perf_counter() - self.start

    def spent(self) -> bool:
        """Whether the time is up on any process."""
        if self.limit <= 0:
            return False
        return any_rank(self.elapsed >= self.limit, self.env)
