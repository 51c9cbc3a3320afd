"""The start of every training run: config, run folder, seed, device, threads, processes, logs.

Each homework keeps its own training loop; this only removes the boilerplate before it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from common.checkpoint import CheckpointManager, load_checkpoint, restore
from common.config import load_config, read_config_file, resume_config, save_config
from common.device import select_device, set_threads
from common.distributed import DistEnv, barrier, cleanup, init_distributed, process_device
from common.errors import UserError, one_line
from common.files import make_folder
from common.metrics import MetricsLog, say
from common.runs import check_new_run_dir, default_run_dir, resume_dir
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

    def restore(self, **objects: Any) -> dict:
        """Load ``resume_state`` into live objects (the keywords of ``common.checkpoint.restore``).

        Only once that succeeded is anything in the run folder rewritten.
        """
        assert self.resume_state is not None
        try:
            restore(self.resume_state, **objects)
        except (KeyError, RuntimeError, ValueError) as exc:
            reason = one_line(exc, 240) or type(exc).__name__
            raise UserError(f"{self.run_dir / 'last.pt'}: does not fit this run's model ({reason})") from None
        if self.env.is_main:
            save_config(self.cfg, self.run_dir / "config.yaml")  # records a changed budget, say
        self.say(f"{self.homework}: resumed at step {self.resume_state['step']}; {self._where()}")
        return self.resume_state

    def _where(self) -> str:
        world = f", {self.env.world_size} processes" if self.env.enabled else ""
        return f"run folder {self.run_dir}, device {self.device}, {self.threads} threads{world}"

    def _first_record(self) -> None:
        """The folder and its config.yaml appear with the first metric or checkpoint, so a run that
        fails while loading its data leaves nothing behind, nothing that would make the folder look taken."""
        save_config(self.cfg, make_folder(self.run_dir) / "config.yaml")
        self.say(f"{self.homework}: {self._where()}")


class _Once:
    """Call ``fn`` the first time this is called, never again."""

    def __init__(self, fn: Callable[[], None]):
        self.fn: Callable[[], None] | None = fn

    def __call__(self) -> None:
        if self.fn is not None:
            fn, self.fn = self.fn, None
            fn()


def _run_config(homework: str, cfg_cls: type[C], args: argparse.Namespace) -> tuple[C, Path, dict | None]:
    """Config, run folder and (on ``--resume``) the checkpoint, all checked before anything is written."""
    overrides = list(args.overrides) + ([f"device={args.device}"] if getattr(args, "device", None) else [])
    if not args.resume:
        cfg = load_config(cfg_cls, args.config or getattr(args, "default_config", None), overrides)
        path = Path(args.run_dir) if args.run_dir else default_run_dir(homework)
        check_new_run_dir(path)
        return cfg, path, None
    run_dir = resume_dir(homework, args.run_dir)
    state = load_checkpoint(run_dir / "last.pt", homework)
    own = run_dir / "config.yaml"
    saved, source = (read_config_file(own), own) if own.is_file() else (state["config"], run_dir / "last.pt")
    return resume_config(cfg_cls, saved, source, args.config, overrides), run_dir, state


def start_run(homework: str, cfg_cls: type[C], args: argparse.Namespace, keep_last: int = 0) -> Run[C]:
    """Resolve config (file, ``--set``, ``--device``), seed, device, threads and the run folder.

    The config class derives from :class:`common.config.RunConfig` (seed, device, threads). A new
    run refuses a folder that already holds one. With ``--resume`` the config is the run's own
    config.yaml (``--set`` may change only the keys declared ``resume=True``) and ``last.pt`` is
    loaded into ``run.resume_state``; nothing in the folder changes until :meth:`Run.restore`.
    """
    cfg, run_dir, resume_state = _run_config(homework, cfg_cls, args)
    device = select_device(cfg.device)
    env = init_distributed(device)
    device = process_device(device, env)
    threads = set_threads(cfg.threads)
    set_seed(cfg.seed + env.rank)
    run = Run(
        homework,
        cfg,
        run_dir,
        device,
        env,
        threads,
        MetricsLog(run_dir, env.is_main),
        CheckpointManager(run_dir, keep_last),
        resume_state,
        args.quiet,
    )
    if resume_state is None:
        barrier(env)  # every process has checked the folder before the first one writes into it
        record = _Once(run._first_record)
        run.log.before_first_write = run.ckpt.before_first_save = record
    return run


def train_command(homework: str, cfg_cls: type[C], args: argparse.Namespace, train: Callable[[Run[C]], None]) -> int:
    """A training command's body: start the run, ``train`` it, leave the process group even on error."""
    run = start_run(homework, cfg_cls, args)
    try:
        train(run)
    except BaseException:
        cleanup(run.env, finished=False)
        raise
    cleanup(run.env)
    return 0


def start_inference(device: str = "auto", threads: int = 0, seed: int | None = 0) -> torch.device:
    """The set-up of every predict / generate / chat / evaluate command: device, CPU threads, seed.

    Threads default to the free cores (see :func:`common.device.set_threads`); the seed makes
    sampling decoders and random draws repeatable.
    """
    dev = select_device(device)
    set_threads(threads)
    if seed is not None:
        set_seed(seed)
    return dev
