"""A tiny trainer built the way every homework's train.py is, used by the resume and DDP tests.

Each step draws its batch from a generator seeded by (seed, step, rank), so the data order does
not depend on how many times the run was interrupted; dropout uses the global RNG, restored
from the checkpoint.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from common.checkpoint import make_state
from common.cli import train_parser
from common.config import config_to_dict, param
from common.distributed import cleanup, unwrap, wrap_model
from common.errors import run_cli
from common.setup import start_run


@dataclass
class ToyConfig:
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    steps: int = param(30, gt=0, resume=True)
    sleep: float = param(0.0, ge=0, resume=True)
    hidden: int = param(16, gt=0)


def _main(args) -> int:
    run = start_run("toy", ToyConfig, args)
    cfg = run.cfg
    model = torch.nn.Sequential(torch.nn.Linear(4, cfg.hidden), torch.nn.Dropout(0.3), torch.nn.Linear(cfg.hidden, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    step = 0
    if run.resume_state is not None:
        step = run.restore(models={"model": model}, optimizers={"opt": opt})["step"]
    ddp = wrap_model(model, run.env, run.device)
    while step < cfg.steps:
        g = torch.Generator().manual_seed(cfg.seed * 100003 + step * 17 + run.env.rank)
        x = torch.randn(8, 4, generator=g)
        loss = ((ddp(x).squeeze(1) - x.sum(1)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if run.env.is_main:
            run.log.log(step, loss=loss.item())
            run.ckpt.save(
                make_state(
                    "toy", models={"model": model}, optimizers={"opt": opt}, step=step, config=config_to_dict(cfg)
                )
            )
        time.sleep(cfg.sleep)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(unwrap(ddp).state_dict(), run.run_dir / f"params_rank{run.env.rank}.pt")
    cleanup(run.env)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = train_parser("toy", "toy trainer for tests")
    parser.set_defaults(default_config=None)  # defaults + --set only
    return run_cli(_main, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
