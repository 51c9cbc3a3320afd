"""Small helpers shared by the benchmark scripts: machine state and a matmul ceiling."""

from __future__ import annotations

import os
import time

import torch


def machine_line() -> str:
    """Threads torch uses and the 1-minute load average, printed at the top of every benchmark."""
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores, 1-min load {os.getloadavg()[0]:.2f}"
    )


def matmul_ceiling(n: int = 1024, seconds: float = 2.0) -> float:
    """Achieved fp32 FLOP/s of ``torch.mm`` on n x n matrices with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)
