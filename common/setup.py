"""The start of every training run: config, run folder, seed, device, threads, processes, logs.

Each homework keeps its own training loop; this only removes the boilerplate before it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from common.checkpoint import CheckpointManager, load_checkpoint
from common.config import load_config, save_config
from common.device import select_device, set_threads
from common.distributed import DistEnv, init_distributed, process_device
from common.errors import UserError
from common.metrics import MetricsLog, say
from common.runs import new_run_dir, runs_root
from common.seed import set_seed

C = TypeVar("C")


@dataclass
class Run(Generic[C]):
    """What a training loop needs to know about the run it is in."""

    homework: str
    cfg: C
    run_dir: Path
    device: torch.device
    env: DistEnv
    threads: int
    log: MetricsLog
    ckpt: CheckpointManager
    resume_state: dict | None
    quiet: bool

    def say(self, message: str) -> None:
        if self.env.is_main:
            say(message, self.quiet)


def _resume_dir(homework: str, run_dir: str | None) -> Path:
    if run_dir:
        return Path(run_dir)
    root = runs_root() / homework
    found = sorted(root.glob("*/last.pt"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise UserError(f"--resume: no last.pt under {root}/ (pass --run-dir)")
    return found[-1].parent


def start_run(homework: str, cfg_cls: type[C], args: argparse.Namespace, keep_last: int = 0) -> Run[C]:
    """Resolve config (file, ``--set``, ``--device``), seed, device, threads and the run folder.

    The config class derives from :class:`common.config.RunConfig` (seed, device, threads). With
    ``--resume`` the saved ``last.pt`` is loaded (not yet applied) into ``run.resume_state``.
    """
    overrides = list(args.overrides) + ([f"device={args.device}"] if getattr(args, "device", None) else [])
    cfg = load_config(cfg_cls, args.config, overrides)
    device = select_device(cfg.device)
    env = init_distributed(device)
    device = process_device(device, env)
    threads = set_threads(cfg.threads)
    set_seed(cfg.seed + env.rank)
    run_dir = _resume_dir(homework, args.run_dir) if args.resume else new_run_dir(homework, args.run_dir)
    resume_state = None
    if args.resume:
        resume_state = load_checkpoint(run_dir / "last.pt", homework)
    if env.is_main:
        save_config(cfg, run_dir / "config.yaml")
    run = Run(homework, cfg, run_dir, device, env, threads, MetricsLog(run_dir, env.is_main),
              CheckpointManager(run_dir, keep_last), resume_state, args.quiet)
    world = f", {env.world_size} processes" if env.enabled else ""
    run.say(f"{homework}: run folder {run_dir}, device {device}, {threads} threads{world}")
    return run


def state_config(state: dict[str, Any]) -> dict:
    """The config dict saved in a checkpoint."""
    return state.get("config", {})
