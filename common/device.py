"""Device choice, mixed precision and CPU threads."""

from __future__ import annotations

import contextlib
import os

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


def free_cores() -> int:
    """Cores this process may use that are not already busy (affinity minus 1-minute load)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, cores - busy)


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
