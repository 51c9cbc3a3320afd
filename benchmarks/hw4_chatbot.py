"""HW4 benchmark: S2S for N CPU minutes, the backward model, RL for M minutes, then the held-out table.

    MLDS_DATA=/path/to/course_data python benchmarks/hw4_chatbot.py --out benchmarks/out/hw4 --stages s2s
    MLDS_DATA=/path/to/course_data python benchmarks/hw4_chatbot.py --out benchmarks/out/hw4 --stages backward
    MLDS_DATA=/path/to/course_data python benchmarks/hw4_chatbot.py --out benchmarks/out/hw4 --stages rl eval
    MLDS_DATA=/path/to/course_data python benchmarks/hw4_chatbot.py --out benchmarks/out/hw4 --stages beam \
        --split valid --decode strategy=beam,beam=5 strategy=beam,beam=5,min_len=3
    python benchmarks/hw4_chatbot.py --out benchmarks/out/hw4 --stages --plot docs/hw4_chatbot/rl_curves.png

Stages can run in separate processes (the backward model on another core while S2S trains);
each writes its run folder under ``--out``. Needs MLDS_DATA (the real Cornell pairs). RL uses the
backward model when its run folder holds one (``configs/rl.yaml`` gives it no weight). The beam
stage compares decoders of the S2S model (of the RL one with ``--decode-model rl``), greedy first:
replies on a split (all of it, batched) and the latency per reply of each, one query at a time on
the same queries in this one process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.errors import UserError, run_cli  # noqa: E402
from common.files import atomic_write  # noqa: E402


def header(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    print(
        f"threads {torch.get_num_threads()}, load average (1 min) {os.getloadavg()[0]:.2f}, "
        f"torch {torch.__version__}, stages {' '.join(args.stages)}",
        flush=True,
    )


def train(config: str, run_dir: Path, minutes: float, extra: list[str]) -> float:
    from hw4_chatbot.train import main as train_main

    t0 = time.perf_counter()
    overrides = [f"train.max_minutes={minutes}", f"threads={torch.get_num_threads()}", "device=cpu", *extra]
    code = train_main(["--config", config, "--run-dir", str(run_dir), "--quiet", "--set", *overrides])
    if code:
        raise UserError(f"training with {config} failed (exit {code})")
    return (time.perf_counter() - t0) / 60


def decoders(
    s2s: Path, split: str, specs: list[str], latency_n: int, untrained: bool = False
) -> list[dict[str, float | str]]:
    """One row per decoding spec (greedy first): reply metrics on ``split`` and ms per reply.

    ``untrained``: a freshly initialised model of the checkpoint's shapes, every reply forced to
    ``max_len`` tokens, so the latency compares the decoders alone, whatever the training did.
    """
    from common.config import load_config
    from hw4_chatbot.config import load_chatbot
    from hw4_chatbot.data import load_splits
    from hw4_chatbot.decode import DecodeConfig
    from hw4_chatbot.evaluate import latency_ms, reply_metrics
    from hw4_chatbot.model import Seq2Seq
    from hw4_chatbot.predict import Responder

    bot = load_chatbot(s2s)
    if untrained:
        torch.manual_seed(0)
        bot.model = Seq2Seq(len(bot.vocab), bot.model.cfg).eval()
    pairs = getattr(load_splits(bot.cfg.data), split)
    queries, refs = [q for q, _ in pairs], [r for _, r in pairs]
    rows = []
    for spec in ["strategy=greedy", *specs]:
        overrides = spec.split(",") + (["min_len=20", "max_len=20"] if untrained else [])
        responder = Responder(bot, load_config(DecodeConfig, None, overrides), torch.device("cpu"))
        metrics = {} if untrained else reply_metrics(responder.reply_ids(queries), refs)
        rows.append({"decode": spec, **metrics, "ms_per_reply": latency_ms(responder, queries[:latency_n])})
        rows[-1]["x_greedy"] = rows[-1]["ms_per_reply"] / rows[0]["ms_per_reply"]
        print(
            "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True
        )
    return rows


def plot_rl(run: Path, out: Path) -> None:
    """The RL run's reward components (means over each logged training batch) and the validation
    figures of its greedy replies against steps, from its metrics.jsonl."""
    from common.metrics import read_metrics
    from common.plot import plot_curves

    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise UserError(f"{metrics}: no metrics of an RL run to plot")
    rows = read_metrics(metrics)
    # "reward" is the weighted sum of the standardised components; the components are raw
    parts = ["reward", "dull", "repeat", "novelty", "flow", "backward", "coherence", "ease", "kl_penalty"]
    points = [{"step": r["step"], **{k: r[k] for k in parts if k in r}} for r in rows if "loss" in r]
    names = {"distinct2": "distinct-2", "dull": "dull rate", "top_share": "top reply share", "valid_ppl": "perplexity"}
    points += [{"step": r["step"], **{v: r[k] for k, v in names.items()}} for r in rows if "valid_ppl" in r]
    panels = [
        ("training batches", parts, False),
        ("validation: greedy replies", ["distinct-2", "dull rate", "top reply share"], False),
        ("validation perplexity", ["perplexity"], False),
    ]
    keys = [k for _, ks, _ in panels for k in ks]
    plot_curves(points, keys, out, title=f"HW4 RL run {run.parent.name}/{run.name}", panels=panels)


def _main(args: argparse.Namespace) -> int:
    header(args)
    out = Path(args.out)
    s2s, back, rl = out / "s2s", out / "backward", out / "rl"
    data = [f"data.path={args.data}"] if args.data else []
    cfg_dir = ROOT / "hw4_chatbot" / "configs"
    if "s2s" in args.stages:
        took = train(str(cfg_dir / "s2s.yaml"), s2s, args.s2s_minutes, data)
        print(f"s2s: trained {took:.1f} min -> {s2s / 'best.pt'}", flush=True)
    if "backward" in args.stages:
        took = train(str(cfg_dir / "backward.yaml"), back, args.backward_minutes, data)
        print(f"backward: trained {took:.1f} min -> {back / 'best.pt'}", flush=True)
    if "rl" in args.stages:
        models = [f"rl.init_checkpoint={s2s / 'best.pt'}"]
        if (back / "best.pt").is_file():
            models.append(f"rl.backward_checkpoint={back / 'best.pt'}")
        took = train(str(cfg_dir / "rl.yaml"), rl, args.rl_minutes, models)
        print(f"rl: trained {took:.1f} min -> {rl / 'best.pt'}", flush=True)
    if "eval" in args.stages:
        from hw4_chatbot.evaluate import evaluate_models, markdown_table

        t0 = time.perf_counter()
        rows, samples = evaluate_models(
            args.models,
            str(s2s / "best.pt"),
            str(rl / "best.pt"),
            str(back / "best.pt"),
            torch.device("cpu"),
            args.limit,
        )
        table = markdown_table(rows)
        print(table, end="")
        print(f"eval: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        from hw4_chatbot.config import load_chatbot
        from hw4_chatbot.data import load_splits

        test = load_splits(load_chatbot(s2s / "best.pt").cfg.data).test
        with atomic_write(out / "table.md") as f:
            f.write(table)
        with atomic_write(out / "samples.txt") as f:
            for i in range(min(args.samples, len(test))):
                f.write(f"Q: {' '.join(test[i][0])}\nREF: {' '.join(test[i][1])}\n")
                for name in args.models:
                    f.write(f"{name}: {' '.join(samples[name][i])}\n")
                f.write("\n")
        print(f"table and sample replies in {out / 'table.md'} and {out / 'samples.txt'}")
    if "beam" in args.stages:
        print(f"beam: {args.split} split, latency on its first {args.latency_n} queries", flush=True)
        model = rl if args.decode_model == "rl" else s2s
        decoders(model / "best.pt", args.split, args.decode, args.latency_n, args.untrained)
    if args.plot:
        plot_rl(rl, Path(args.plot))
        print(f"RL curves in {args.plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="benchmarks/out/hw4_chatbot", help="folder for run folders and tables")
    p.add_argument(
        "--stages",
        nargs="*",
        default=["s2s", "backward", "rl", "eval"],
        choices=["s2s", "backward", "rl", "eval", "beam"],
        help="stages to run, in this order; later ones read the earlier ones' run folders in --out",
    )
    p.add_argument("--s2s-minutes", type=float, default=18.0, help="training time budget of the S2S model")
    p.add_argument(
        "--backward-minutes",
        type=float,
        default=5.0,
        help="training time budget of the backward (reply to query) model used by the RL reward",
    )
    p.add_argument("--rl-minutes", type=float, default=5.0, help="training time budget of the RL fine-tune")
    p.add_argument(
        "--models",
        nargs="+",
        default=["S2S", "S2S-beam5", "S2S-mmi", "S2S-sample", "RL", "RL-beam5", "RL-mmi", "BEST"],
        help="models and decoders in the table (names as hw4_chatbot.evaluate --models takes them)",
    )
    p.add_argument("--limit", type=int, default=0, help="evaluate on the first N test pairs only")
    p.add_argument("--samples", type=int, default=15, help="sample dialogues written to samples.txt")
    p.add_argument(
        "--decode-model", default="s2s", choices=["s2s", "rl"], help="beam stage: the run whose decoders are compared"
    )
    p.add_argument("--split", default="valid", choices=["valid", "test"], help="beam stage: the pairs it decodes")
    p.add_argument(
        "--decode",
        nargs="+",
        default=["strategy=beam,beam=5"],
        metavar="KEY=VALUE,...",
        help="beam stage: decoding settings compared with greedy, one comma-separated set per row",
    )
    p.add_argument("--latency-n", type=int, default=200, help="beam stage: queries timed one at a time")
    p.add_argument(
        "--untrained",
        action="store_true",
        help="beam stage: time a fresh model of the checkpoint's shapes, replies forced to 20 tokens (no metrics)",
    )
    p.add_argument("--plot", help="PNG to draw the RL run's rewards and validation curves into (from --out's rl/)")
    p.add_argument("--data", help="cornell_pairs folder (default: $MLDS_DATA/hw4/cornell_pairs)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the figures are measured with 1)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
