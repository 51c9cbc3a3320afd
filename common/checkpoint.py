"""Checkpoints: every state a run needs to continue exactly where it stopped, written atomically."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common.errors import UserError
from common.files import atomic_torch_save
from common.seed import rng_state, set_rng_state


def _state_dict(obj: Any) -> Any:
    module = getattr(obj, "module", obj)  # unwrap DistributedDataParallel
    return module.state_dict()


def make_state(
    homework: str,
    *,
    models: dict[str, Any],
    optimizers: dict[str, Any] | None = None,
    schedulers: dict[str, Any] | None = None,
    scaler: Any = None,
    step: int = 0,
    epoch: int = 0,
    config: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """One dict holding the state_dicts of everything, the RNG states, progress and config."""
    return {
        "homework": homework,
        "step": step,
        "epoch": epoch,
        "config": config or {},
        "models": {k: _state_dict(v) for k, v in models.items()},
        "optimizers": {k: v.state_dict() for k, v in (optimizers or {}).items()},
        "schedulers": {k: v.state_dict() for k, v in (schedulers or {}).items()},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "extra": extra or {},
    }


def load_checkpoint(path: str | os.PathLike, homework: str | None = None, map_location: Any = "cpu") -> dict:
    """Read a checkpoint; a missing, corrupt or other-homework file is a one-line :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "models" not in state or "homework" not in state:
        raise UserError(f"{path}: not a checkpoint of this project")
    if homework is not None and state["homework"] != homework:
        raise UserError(f"{path}: checkpoint is from {state['homework']}, expected {homework}")
    return state


def restore(
    state: dict,
    *,
    models: dict[str, Any],
    optimizers: dict[str, Any] | None = None,
    schedulers: dict[str, Any] | None = None,
    scaler: Any = None,
    rng: bool = True,
) -> None:
    """Load everything :func:`make_state` saved back into live objects (and the global RNGs)."""
    for name, model in models.items():
        getattr(model, "module", model).load_state_dict(state["models"][name])
    for name, opt in (optimizers or {}).items():
        opt.load_state_dict(state["optimizers"][name])
    for name, sched in (schedulers or {}).items():
        sched.load_state_dict(state["schedulers"][name])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if rng:
        set_rng_state(state["rng"])


class CheckpointManager:
    """Writes ``last.pt`` (and ``best.pt`` when asked) into a run folder.

    With ``keep_last > 0`` it also keeps that many numbered ``step_XXXXXXXX.pt`` files.
    Only the main process should own one in distributed runs.
    """

    def __init__(
        self, run_dir: str | os.PathLike, keep_last: int = 0, before_first_save: Callable[[], None] | None = None
    ):
        self.run_dir = Path(run_dir)
        self.keep_last = keep_last
        self.before_first_save = before_first_save

    @property
    def last(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best(self) -> Path:
        return self.run_dir / "best.pt"

    def save(self, state: dict, is_best: bool = False) -> Path:
        if self.before_first_save is not None:
            self.before_first_save()
            self.before_first_save = None
        atomic_torch_save(state, self.last)
        if is_best:
            tmp = self.best.with_name(".best.pt.copy")
            shutil.copyfile(self.last, tmp)
            os.replace(tmp, self.best)
        if self.keep_last > 0:
            numbered = self.run_dir / f"step_{state['step']:08d}.pt"
            shutil.copyfile(self.last, numbered.with_name(".step.copy"))
            os.replace(numbered.with_name(".step.copy"), numbered)
            old = sorted(p for p in self.run_dir.glob("step_*.pt") if re.fullmatch(r"step_\d{8}\.pt", p.name))
            for p in old[: -self.keep_last]:
                p.unlink(missing_ok=True)
        return self.last
