"""Multi-process training under ``torchrun``: gloo on CPU, nccl on CUDA."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistEnv:
    """Join the process group that ``torchrun`` describes in the environment; single process otherwise.

    On CUDA each process takes the GPU of its local rank.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    env = DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend=backend)
    return env


def process_device(device: torch.device, env: DistEnv) -> torch.device:
    """The device this process should use: its own GPU under multi-GPU runs."""
    if device.type == "cuda" and env.enabled:
        return torch.device("cuda", env.local_rank)
    return device


def wrap_model(model: torch.nn.Module, env: DistEnv, device: torch.device) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when running distributed; unchanged otherwise."""
    if not env.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _comm_device() -> torch.device:
    """Where collective tensors must live: the process's GPU under nccl, the CPU under gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value: float, env: DistEnv) -> float:
    """Average a Python number across processes (for logging and validation metrics)."""
    if not env.enabled:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item()) / env.world_size


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True on every process when it is true on any: one decision, so no rank waits alone in a collective."""
    if not env.enabled:
        return bool(flag)
    t = torch.tensor([float(flag)], device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def average_gradients(model: torch.nn.Module, env: DistEnv) -> None:
    """Average gradients across processes by hand, for loops whose forward passes do not fit DDP."""
    if not env.enabled:
        return
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= env.world_size


@torch.no_grad()
def broadcast_from_main(model: torch.nn.Module, env: DistEnv) -> None:
    """Copy rank 0's parameters and buffers into every process's ``model``: for copies DDP does not
    wrap (an EMA of the weights), whose ranks were seeded differently."""
    if not env.enabled:
        return
    for t in (*model.parameters(), *model.buffers()):
        flat = t.contiguous()  # collectives want dense tensors; channels-last weights are not
        dist.broadcast(flat, 0)
        t.copy_(flat)


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def cleanup(env: DistEnv, finished: bool = True) -> None:
    """Leave the process group. After a finished run every process first waits for the others: gloo
    aborts a process whose peer closes a connection it is still reading. After an error it does not
    wait, since a peer may be gone."""
    if env.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
