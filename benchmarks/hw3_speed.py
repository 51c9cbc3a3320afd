"""Images/s of one HW3 training step: the models in NCHW and in channels-last (NHWC) memory order on
``--threads`` threads, ``--threads`` gloo processes of one thread each (DistributedDataParallel,
channels-last, the batch split between them), and each ``--variant`` (config overrides, channels-last),
against a matrix-multiply ceiling measured in the same run.

    python benchmarks/hw3_speed.py --config hw3_gan/configs/cpu60_adc.yaml --threads 2
    python benchmarks/hw3_speed.py --steps 16 --variant train.reuse_fakes=true,train.penalty_every=16

Each round times ``--steps`` calls of ``hw3_gan.train.train_step`` in each way, on random images of
the configured size, in an order that reverses every round so that a change in the machine's load
falls on all of them. FLOPs per image come from ``benchmarks/hw3_flops.py`` (torch's FLOP counter).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common_bench import machine_line, matmul_ceiling  # noqa: E402
from benchmarks.hw3_flops import N_EYE, N_HAIR, step_flops  # noqa: E402
from common.config import load_config  # noqa: E402
from common.distributed import DistEnv  # noqa: E402
from hw3_gan import train  # noqa: E402
from hw3_gan.config import Config  # noqa: E402

ORDERS = {"NCHW": False, "channels-last": True}
PROCESSES = "processes"


def timed_steps(nets: train.Nets, cfg: Config, steps: int, models: tuple | None = None) -> float:
    """Seconds for ``steps`` training steps on one random batch (``models``: the DDP-wrapped G and D)."""
    b, s = cfg.train.batch_size, cfg.model.image_size
    x = (torch.rand(b, 3, s, s) * 2 - 1).contiguous(memory_format=train.memory_format(cfg.train))
    hair, eye = torch.randint(0, N_HAIR, (b,)), torch.randint(0, N_EYE, (b,))
    gen, disc = models or (nets.gen, nets.disc)
    start = time.perf_counter()
    for step in range(steps):  # from 0 each time, so R1's turns repeat
        train.train_step(nets, gen, disc, x, hair, eye, cfg, step)
    return time.perf_counter() - start


def _process(rank: int, world: int, port: int, config: Path, steps: int, out) -> None:
    """One of ``world`` one-thread gloo processes, each with its share of the batch."""
    torch.set_num_threads(1)
    torch.manual_seed(rank)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    cfg = load_config(Config, config, [])
    cfg.train.batch_size //= world
    nets, env = train.build(cfg, torch.device("cpu")), DistEnv(rank, world, rank)
    models = train.share(nets, env, torch.device("cpu"))
    timed_steps(nets, cfg, cfg.train.penalty_every, models)  # warm-up
    dist.barrier()
    seconds = timed_steps(nets, cfg, steps, models)
    if rank == 0:
        out.put(seconds)
    dist.destroy_process_group()


def in_processes(world: int, config: Path, steps: int) -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_process, args=(world, port, config, steps, out), nprocs=world, join=True)
    return out.get()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="hw3_gan/configs/cpu60_adc.yaml", help="the GAN config to time")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=8, help="steps per timing (a multiple of train.penalty_every)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    p.add_argument(
        "--variant", action="append", default=[], help="comma-separated overrides timed as one more way (repeatable)"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(machine_line())
    ceiling = matmul_ceiling()
    overrides = {name: [f"train.channels_last={str(last).lower()}"] for name, last in ORDERS.items()}
    overrides.update({variant: variant.split(",") for variant in args.variant})
    nets, cfgs = {}, {}
    for name, sets in overrides.items():
        cfgs[name] = load_config(Config, REPO / args.config, sets)
        if args.steps % cfgs[name].train.penalty_every:  # each timing starts at step 0: R1's share must be whole
            p.error(f"--steps {args.steps} is not a multiple of train.penalty_every {cfgs[name].train.penalty_every}")
        nets[name] = train.build(cfgs[name], torch.device("cpu"))
        timed_steps(nets[name], cfgs[name], cfgs[name].train.penalty_every)  # warm-up
    flops = {name: sum(step_flops(cfg, cfg.train.batch_size).values()) for name, cfg in cfgs.items()}
    flops[PROCESSES] = flops["channels-last"]
    ways = [*ORDERS, PROCESSES, *args.variant] if args.threads > 1 else [*ORDERS, *args.variant]
    times: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(args.rounds):
        for name in ways if r % 2 == 0 else reversed(ways):
            if name == PROCESSES:
                times[name].append(in_processes(args.threads, REPO / args.config, args.steps))
            else:
                times[name].append(timed_steps(nets[name], cfgs[name], args.steps))
    batch = cfgs["NCHW"].train.batch_size
    print(f"{args.config}: {flops['NCHW'] / 1e9:.3f} GFLOP per image per step, batch {batch}, {args.steps} steps")
    print(f"median of {args.rounds} rounds")
    print(f"matmul ceiling {ceiling / 1e9:.1f} GFLOP/s ({args.threads} threads)")
    rate = {}
    for name in ways:
        rate[name] = args.steps * batch / statistics.median(times[name])
        label = f"{args.threads} x 1 thread" if name == PROCESSES else name
        print(
            f"  {label:14s} {rate[name]:6.1f} images/s x {flops[name] / 1e9:.3f} GFLOP "
            f"= {rate[name] * flops[name] / 1e9:5.1f} GFLOP/s = {rate[name] * flops[name] / ceiling:.3f} of the ceiling"
        )
    print(f"channels-last / NCHW: {rate['channels-last'] / rate['NCHW']:.2f}x")
    if PROCESSES in rate:
        print(
            f"{args.threads} processes / channels-last on {args.threads} threads: "
            f"{rate[PROCESSES] / rate['channels-last']:.2f}x"
        )
    for variant in args.variant:
        print(f"{variant} / channels-last: {rate[variant] / rate['channels-last']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
