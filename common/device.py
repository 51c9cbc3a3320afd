"""Device choice, mixed precision and CPU threads."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from common.errors import UserError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda > mps > cpu; anything else is taken as given, checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device '{name}' asked for, but MPS is not available here")
    return device


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU bf16 is slower than fp32 on most CPUs)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]]:
    """Each CPU's (busy, total) clock ticks since boot, from Linux's /proc/stat; {} where it is absent."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return times


def busy_cores(cpus: set[int], interval: float = 0.1, read: Callable[[], dict] = cpu_times) -> float | None:
    """How many of ``cpus`` other processes keep busy, measured over ``interval`` seconds; None where
    the ticks cannot be read. Unlike the load average, it does not count a job that has just ended."""
    before = read()
    time.sleep(interval)
    after = read()
    if not cpus or not cpus <= before.keys() & after.keys():
        return None
    busy = sum(after[c][0] - before[c][0] for c in cpus)
    total = sum(after[c][1] - before[c][1] for c in cpus)
    return len(cpus) * busy / total if total > 0 else None


def free_cores() -> int:
    """Cores this process may use that are not already busy: its affinity minus the cores other
    processes keep busy now (Linux), or minus the 1-minute load average elsewhere."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        cpus = set(range(os.cpu_count() or 1))
    busy = busy_cores(cpus)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, len(cpus) - int(busy + 0.5))


def set_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads: ``threads`` if > 0, else this process's share of the free cores.

    Oversubscribed cores are catastrophic for recurrent nets (``nn.LSTM`` ran 45x slower with two
    threads on a 2-core machine while another process was busy), hence the load check. Returns the count.
    """
    # torchrun starts LOCAL_WORLD_SIZE processes on this machine: each takes its share of the cores.
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    n = threads if threads > 0 else max(1, free_cores() // share)
    torch.set_num_threads(n)
    return n
