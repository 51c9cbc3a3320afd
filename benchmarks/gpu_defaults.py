"""Each homework's ``configs/default.yaml`` for a short while on one GPU: throughput and peak memory.

    python benchmarks/gpu_defaults.py --minutes 1.5 --out benchmarks/out/gpu

Data: ``$MLDS_DATA`` in the course layout (hw1 novels, hw3 ``extra_data.zip``, hw4 ``cornell_pairs``);
hw2 trains on the project's synthetic data set in the course layout (``--hw2-videos`` training
videos of 80×4096 float64 features), written under ``--out``. A bf16 matrix-multiply ceiling is
measured in the same process, so the LSTM's achieved rate can be read as a ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.metrics import read_metrics  # noqa: E402


def matmul_ceiling(n: int = 8192, reps: int = 10) -> float:
    """bf16 ``n×n×n`` products per second on the GPU, in FLOP/s (mean of ``reps`` after warm-up)."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def lstm_train_flops_per_token(emb: int, hidden: int, layers: int, head: int) -> float:
    """Multiply-adds ×2 ×3 (forward + backward) of the LSTM layers and the adaptive softmax's head."""
    macs, width = 0, emb
    for _ in range(layers):
        macs += 4 * hidden * (width + hidden)
        width = hidden
    macs += hidden * emb + emb * head  # projection to the tied embedding width, then the head's logits
    return 6.0 * macs


def last(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return values[-1] if values else None


def timed(name: str, fn: Callable[[], dict], results: dict) -> None:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    try:
        row = fn()
    except BaseException as exc:  # one homework failing must not hide the others' figures
        row = {"error": f"{type(exc).__name__}: {exc}"}
    row["wall_s"] = round(time.perf_counter() - t0, 1)
    row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    results[name] = row
    print(name, json.dumps(row), flush=True)


def run_hw1(out: Path, minutes: float, ceiling: float) -> dict:
    from common.config import load_config
    from hw1_cloze import train
    from hw1_cloze.config import Config

    config = "hw1_cloze/configs/default.yaml"
    code = train.main(
        [
            "--config",
            config,
            "--run-dir",
            str(out / "hw1"),
            "--quiet",
            "--set",
            f"train.max_minutes={minutes}",
            "train.log_every=20",
        ]
    )
    rows = read_metrics(out / "hw1" / "metrics.jsonl")
    tok_s = last(rows, "tok_s") or 0.0
    cfg = load_config(Config, config, [])
    flops = lstm_train_flops_per_token(cfg.model.emb, cfg.model.hidden, cfg.model.layers, cfg.model.cutoffs[0] + 2)
    return {
        "exit": code,
        "tokens_per_s": round(tok_s),
        "steps": last(rows, "step"),
        "val_ppl": last(rows, "val_ppl"),
        "ratio_to_matmul_ceiling": round(tok_s * flops / ceiling, 3),
    }


def run_hw2(out: Path, videos: int, epochs: int) -> dict:
    from hw2_video_caption import sample_data, train

    data = out / "hw2_data"
    if not data.is_dir():
        sample_data.main([str(data), "--train", str(videos), "--test", "10", "--peer", "2"])
    t0 = time.perf_counter()
    code = train.main(
        [
            "--config",
            "hw2_video_caption/configs/default.yaml",
            "--run-dir",
            str(out / "hw2"),
            "--quiet",
            "--set",
            f"data.data_dir={data}",
            f"train.epochs={epochs}",
        ]
    )
    seconds = time.perf_counter() - t0
    rows = read_metrics(out / "hw2" / "metrics.jsonl")
    return {
        "exit": code,
        "epochs": epochs,
        "videos": videos,
        "videos_per_s_incl_loading": round(videos * epochs / seconds, 1),
        "videos_per_s": last(rows, "videos_per_s"),
        "bleu1_new": last(rows, "bleu1_new"),
    }


def run_hw3(out: Path, minutes: float) -> dict:
    from hw3_gan import train

    code = train.main(
        [
            "--config",
            "hw3_gan/configs/default.yaml",
            "--run-dir",
            str(out / "hw3"),
            "--quiet",
            "--set",
            f"train.max_minutes={minutes}",
        ]
    )
    rows = read_metrics(out / "hw3" / "metrics.jsonl")
    return {"exit": code, "images_per_s": last(rows, "images_per_s"), "steps": last(rows, "step")}


def run_hw4(out: Path, minutes: float) -> dict:
    from hw4_chatbot import train

    code = train.main(
        [
            "--config",
            "hw4_chatbot/configs/default.yaml",
            "--run-dir",
            str(out / "hw4"),
            "--quiet",
            "--set",
            f"train.max_minutes={minutes}",
            "train.eval_every=200",
        ]
    )
    rows = read_metrics(out / "hw4" / "metrics.jsonl")
    return {
        "exit": code,
        "tokens_per_s": last(rows, "tokens_per_s"),
        "steps": last(rows, "step"),
        "valid_ppl": last(rows, "valid_ppl"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=1.5, help="training budget per homework (hw1, hw3, hw4)")
    p.add_argument("--hw2-videos", type=int, default=600, help="synthetic hw2 training videos")
    p.add_argument("--hw2-epochs", type=int, default=3, help="hw2 epochs (it has no time budget)")
    p.add_argument("--only", nargs="+", default=["hw1", "hw2", "hw3", "hw4"], help="homeworks to run")
    p.add_argument("--out", default="benchmarks/out/gpu", help="output folder (run folders, results.json)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark measures a GPU", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ceiling = matmul_ceiling()
    results: dict = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "bf16_matmul_tflops": round(ceiling / 1e12, 1),
    }
    print(json.dumps(results), flush=True)
    jobs = {
        "hw1": lambda: run_hw1(out, args.minutes, ceiling),
        "hw2": lambda: run_hw2(out, args.hw2_videos, args.hw2_epochs),
        "hw3": lambda: run_hw3(out, args.minutes),
        "hw4": lambda: run_hw4(out, args.minutes),
    }
    for name in args.only:
        timed(name, jobs[name], results)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
