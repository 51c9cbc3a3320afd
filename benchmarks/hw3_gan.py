"""HW3 benchmark: train the conditional GAN for a fixed number of CPU minutes on the real faces,
generate for the course's testing_tags.txt, and report the evaluation figures, training images/s
against the standard DCGAN measured in the same process, and generation time.

    MLDS_DATA=/path/to/course_data python benchmarks/hw3_gan.py --out benchmarks/out/hw3_gan

``--train-run DIR`` reuses a run already trained with ``--config`` (default hw3_gan/configs/cpu.yaml;
its metrics.jsonl gives the training figures) and ``--classifier FILE`` an evaluation classifier
already trained. Last come every hair/eye pair with at least 20 training images (5 samples each:
the pooled row and the five worst pairs; all_pairs.csv / .json in ``--out``) and two pictures in
``--docs``: every hair x eye colour from one noise, and an interpolation between two seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.checkpoint import load_checkpoint  # noqa: E402
from common.config import load_config  # noqa: E402
from common.metrics import read_metrics  # noqa: E402
from common.runs import data_root  # noqa: E402
from hw3_gan import all_pairs, classifier, generate, train  # noqa: E402
from hw3_gan.config import Config, TrainConfig  # noqa: E402
from hw3_gan.evaluate import evaluate, format_report, read_samples, real_reference  # noqa: E402
from hw3_gan.model import Discriminator, Generator, ModelConfig  # noqa: E402
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS, read_testing_text  # noqa: E402


def mm_ceiling() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    return 10 * 2 * 1024**3 / (time.perf_counter() - t)


def step_time(cfg: ModelConfig, loop: TrainConfig, steps: int) -> float:
    """Seconds per D+G step of the real training step (train.d_loss, train.g_loss) on random data, batch
    64, in the memory order training uses (``train.channels_last``), with one generator pass a step when
    ``train.reuse_fakes``."""
    torch.manual_seed(0)
    fmt = train.memory_format(loop)
    G, D = Generator(cfg, 12, 11).to(memory_format=fmt), Discriminator(cfg, 12, 11).to(memory_format=fmt)
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    x = (torch.rand(64, 3, 64, 64) * 2 - 1).contiguous(memory_format=fmt)
    h, e = torch.randint(0, 12, (64,)), torch.randint(0, 11, (64,))

    def one(i: int) -> None:
        z = torch.randn(64, cfg.nz)
        if loop.reuse_fakes:  # one generator pass a step, as train.train_step
            z, fake_h, fake_e = train.g_inputs(z, h, e, loop)
            kept = G(z, fake_h, fake_e)
            fake, fake_tags = kept.detach(), (fake_h, fake_e)
        else:
            with torch.no_grad():
                fake = G(z, h, e)
            kept, fake_tags = None, None
        penalise = loop.penalty != "none" and i % loop.penalty_every == 0
        loss, _ = train.d_loss(D, x, fake, h, e, loop, penalise, 12, 11, fake_tags)
        od.zero_grad()
        loss.backward()
        od.step()
        D.requires_grad_(False)
        lg, _ = train.g_loss(G, D, z, h, e, loop, kept)
        og.zero_grad()
        lg.backward()
        og.step()
        D.requires_grad_(True)

    one(1)
    t = time.perf_counter()
    for i in range(steps):
        one(i)
    return (time.perf_counter() - t) / steps


def bench_lines(counts: np.ndarray, n: int, rng: np.random.Generator, path: Path) -> None:
    """A testing file of ``n`` lines whose tag pairs follow the training data (pairs with >= 20 images)."""
    probs = np.where(counts >= 20, counts, 0).astype(float).flatten()
    flat = rng.choice(len(probs), n, p=probs / probs.sum())
    path.write_text(
        "".join(
            f"{i},{HAIR_COLOURS[f // len(EYE_COLOURS)]} hair {EYE_COLOURS[f % len(EYE_COLOURS)]} eyes\n"
            for i, f in enumerate(flat, 1)
        )
    )


def docs_png(src: Path, dst: Path, rows: range | None = None, cell: int = 66) -> None:
    """A small copy of a grid for docs/ (kept under 500 KB): chosen rows only, 256-colour palette."""
    img = Image.open(src).convert("RGB")
    if rows is not None:
        strips = [img.crop((0, r * cell, img.width, r * cell + cell + 2)) for r in rows]
        img = Image.new("RGB", (img.width, sum(s.height for s in strips)), "white")
        for i, strip in enumerate(strips):
            img.paste(strip, (0, i * strip.height))
    img.quantize(256).save(dst, optimize=True)


def score_all_pairs(sampler: generate.TagSampler, net, real, cascade: Path, out: Path) -> dict:
    """Every pair with >= 20 training images, 5 samples each: print the pooled row and the 5 worst pairs."""
    pairs = all_pairs.frequent_pairs(real.pair_counts(), 20)  # the data's tags, not the run's (data.retag)
    images = all_pairs.pair_images(sampler, pairs, 5, seed=0)
    pooled, rows = all_pairs.score_pairs(images, pairs, 5, net, real, cascade)
    print("== " + all_pairs.format_pooled(pooled))
    print("five worst pairs:\n" + all_pairs.format_rows(all_pairs.worst(rows)), flush=True)
    all_pairs.write_results(pooled, rows, out / "all_pairs.csv", out / "all_pairs.json")
    return pooled


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="benchmarks/out/hw3_gan", help="output folder")
    p.add_argument("--config", default="hw3_gan/configs/cpu.yaml", help="GAN config to train (and time a step of)")
    p.add_argument("--minutes", type=float, default=16.5, help="GAN training minutes (train.max_minutes)")
    p.add_argument("--train-run", help="reuse this trained run folder instead of training")
    p.add_argument("--classifier", help="reuse this evaluation classifier instead of training one")
    p.add_argument("--wait-pid", type=int, help="with --train-run: wait for this training process to end first")
    p.add_argument("--classifier-epochs", type=int, default=10, help="evaluation classifier epochs")
    p.add_argument("--docs", default="docs/hw3_gan", help="where to copy the sample grids")
    p.add_argument("--candidates", type=int, default=1, help="each image the best of this many draws (generate)")
    p.add_argument("--spread", type=int, default=1, metavar="K", help="keep each line's images apart (generate)")
    p.add_argument(
        "--accept",
        type=float,
        default=0.0,
        metavar="R",
        help="keep images apart among draws >= R x the best (generate)",
    )
    p.add_argument("--picker", choices=generate.PICKERS, help="what names a draw's colours (generate's default)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = data_root(required=True)
    hw3 = root / "hw3"
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    res: dict = {
        "threads": torch.get_num_threads(),
        "load_avg_1min_at_start": os.getloadavg()[0],
        "candidates": args.candidates,
        "spread": args.spread,
        "accept": args.accept,
        "picker": args.picker,
    }
    print(
        f"threads {res['threads']}, 1-minute load average {res['load_avg_1min_at_start']:.2f}, torch "
        f"{torch.__version__}",
        flush=True,
    )

    # 1. Speed, all in this process: matmul ceiling, standard DCGAN step, our step.
    res["mm_gflops"] = mm_ceiling() / 1e9
    std = step_time(
        ModelConfig(ngf=64, ndf=64, nz=100, d_batchnorm=True, mbstd_group=0),
        TrainConfig(penalty="none", wrong_weight=0.0, mode_seeking=0.0),
        3,
    )
    cpu_cfg = load_config(Config, REPO / args.config, [])
    ours = step_time(cpu_cfg.model, cpu_cfg.train, 8)
    res.update(
        dcgan_step_s=std,
        dcgan_images_per_s=64 / std,
        ours_step_s=ours,
        ours_images_per_s=64 / ours,
        speed_ratio=std / ours,
    )
    loop = cpu_cfg.train
    penalty = "no penalty" if loop.penalty == "none" else f"{loop.penalty.upper()} every {loop.penalty_every}"
    print(
        f"matmul ceiling {res['mm_gflops']:.1f} GFLOP/s; standard DCGAN (64 maps, nz 100, batch 64) "
        f"{std * 1000:.0f} ms/step = {64 / std:.1f} images/s; ours ({args.config}, {loop.loss} loss, "
        f"{penalty}) {ours * 1000:.0f} ms/step = {64 / ours:.1f} images/s "
        f"({std / ours:.2f}x the standard DCGAN)",
        flush=True,
    )

    # 2. The evaluation classifier (held-out images only).
    clf = Path(args.classifier) if args.classifier else out / "classifier.pt"
    if not args.classifier:
        classifier.main(["--out", str(clf), "--epochs", str(args.classifier_epochs), "--quiet"])
    net, info = classifier.load_classifier(clf)
    res["classifier_real_accuracy"] = info["real_accuracy"]
    print(f"classifier accuracy on {info.get('check_images')} real images it never saw: {info['real_accuracy']}")

    # 3. GAN training for a fixed time (or a run trained beside this script, waited for).
    if args.wait_pid:
        while os.path.exists(f"/proc/{args.wait_pid}"):
            time.sleep(5)
    run = Path(args.train_run) if args.train_run else out / "gan_run"
    if not args.train_run:
        t = time.time()
        train.main(
            [
                "--config",
                args.config,
                "--run-dir",
                str(run),
                "--quiet",
                "--set",
                f"train.max_minutes={args.minutes}",
            ]
        )
        res["train_wall_s"] = time.time() - t
    rows = read_metrics(run / "metrics.jsonl")
    last = rows[-1]
    state = load_checkpoint(run / "best.pt", "hw3_gan")
    res.update(
        train_steps=state["step"],
        train_epochs_done=state["epoch"],
        train_images_per_s=last["images_per_s"],
        train_minutes=last["time"] / 60,
        train_images_seen=state["step"] * 64,
    )
    print(
        f"training: {state['step']} steps ({state['step'] * 64} images, {state['epoch']} full epochs) in "
        f"{last['time'] / 60:.1f} min, {last['images_per_s']:.1f} images/s",
        flush=True,
    )

    # 4. Generation for the course's testing_tags.txt, timed as a user runs it (a fresh process).
    samples = out / "samples"
    t = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hw3_gan.generate",
            str(hw3 / "testing_tags.txt"),
            "--out",
            str(samples),
            "--checkpoint",
            str(run / "best.pt"),
            "--device",
            "cpu",
            "--candidates",
            str(args.candidates),
            "--spread",
            str(args.spread),
            "--accept",
            str(args.accept),
            *(["--picker", args.picker] if args.picker else []),
        ],
        check=True,
        cwd=REPO,
    )
    res["generate_25_lines_s"] = time.time() - t
    print(f"generation for 25 lines (fresh process, incl. start-up): {res['generate_25_lines_s']:.2f} s", flush=True)

    # 5. Evaluation: the course file, then 200 lines that follow the training tag distribution.
    real = real_reference("", info.get("holdout_percent", 20.0))
    cascade = hw3 / "lbpcascade_animeface.xml"
    reqs = read_testing_text(hw3 / "testing_tags.txt")
    res["testing_tags"] = evaluate(read_samples(samples, reqs), reqs, net, real, cascade)
    print("== testing_tags.txt (25 lines, 125 images)\n" + format_report(res["testing_tags"]), flush=True)
    wide = out / "bench_tags.txt"
    bench_lines(real.pair_counts(), 200, np.random.default_rng(0), wide)
    sampler = generate.TagSampler(
        state,
        torch.device("cpu"),
        candidates=args.candidates,
        spread=args.spread,
        accept=args.accept,
        picker=args.picker,
    )
    wide_reqs = read_testing_text(wide)
    generate.generate(sampler, wide_reqs, out / "samples_wide", seed=1)
    res["wide"] = evaluate(read_samples(out / "samples_wide", wide_reqs), wide_reqs, net, real, cascade)
    print("== 200 lines of training-distribution tag pairs (1000 images)\n" + format_report(res["wide"]))

    res["all_pairs"] = score_all_pairs(sampler, net, real, cascade, out)

    docs = REPO / args.docs
    docs.mkdir(parents=True, exist_ok=True)
    generate.colour_grid(sampler, out / "colour_grid.png")
    generate.interpolation(
        sampler, HAIR_COLOURS.index("blonde"), EYE_COLOURS.index("blue"), (0, 1), 8, out / "interpolation.png"
    )
    docs_png(out / "colour_grid.png", docs / "colour_grid.png")
    docs_png(out / "interpolation.png", docs / "interpolation.png")
    # testing_tags.txt has 5 lines per tag pair: the docs keep the first of each (5 rows of 5).
    docs_png(samples / "grid.png", docs / "testing_tags_grid.png", rows=range(0, 25, 5))
    grids = sorted((run / "grids").glob("epoch_*.png"))
    if grids:
        docs_png(grids[-1], docs / "fixed_noise_last_epoch.png")
        docs_png(grids[0], docs / "fixed_noise_first_epoch.png")
    with open(out / "results.json", "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(f"figures: {out / 'results.json'}; grids: {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
