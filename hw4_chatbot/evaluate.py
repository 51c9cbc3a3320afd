"""Held-out metrics for several chatbot configurations side by side.

    python -m hw4_chatbot.evaluate --models S2S S2S-beam5 RL BEST [--s2s PATH] [--rl PATH] [--out table.md]

Perplexity (teacher forced, per reply token incl. <eos>), distinct-1/2, mean reply length, dull-reply
rate, corpus BLEU-4 against the reference replies, and per-reply latency with batch size 1. The
pairs are the test split of the S2S run's own data config, never used for any choice in training.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from common.cli import non_negative_int
from common.errors import run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say
from common.setup import start_inference
from common.vocab import UNK
from hw4_chatbot.data import DULL_REPLIES, PairBatches, load_splits

DULL = frozenset(DULL_REPLIES)


@torch.no_grad()
def perplexity(model: torch.nn.Module, data: PairBatches, device: torch.device, batch_size: int = 128) -> float:
    """exp(mean negative log-likelihood per reply token), ``<eos>`` included, dropout off."""
    was_training = model.training
    model.eval()
    nll, tokens = 0.0, 0
    order = sorted(range(len(data)), key=lambda i: len(data.src[i]))
    for start in range(0, len(order), batch_size):
        b = data.batch(order[start : start + batch_size], device)
        logits = model(b["src"], b["src_len"], b["tgt_in"]).float()
        nll += F.cross_entropy(
            logits.flatten(0, 1), b["tgt_out"].flatten(), ignore_index=data.vocab.pad_id, reduction="sum"
        ).item()
        tokens += int((b["tgt_out"] != data.vocab.pad_id).sum())
    model.train(was_training)
    return math.exp(nll / max(tokens, 1))


def distinct(replies: list[list[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of all replies (Li et al. 2016a); 0 when there are none."""
    grams = [tuple(r[i : i + n]) for r in replies for i in range(len(r) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def dull_rate(replies: list[list[str]]) -> float:
    return sum(" ".join(r) in DULL for r in replies) / max(len(replies), 1)


def top_reply_share(replies: list[list[str]]) -> float:
    """Share of replies equal to the most frequent one: catches a catch-all reply the dull list lacks."""
    counts = Counter(tuple(r) for r in replies)
    return max(counts.values()) / len(replies) if replies else 0.0


def unk_rate(replies: list[list[str]]) -> float:
    """Share of replies holding an unknown word: rare words the vocabulary cut, said as <unk>."""
    return sum(UNK in r for r in replies) / max(len(replies), 1)


def corpus_bleu(hyps: list[list[str]], refs: list[list[str]], max_n: int = 4) -> float:
    """Papineni's corpus BLEU (one reference each), 0..100; an n-gram order with no match counts 0.1
    matches (Chen & Cherry's smoothing 1) so short dialogue replies do not give a flat zero."""
    match, total = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs):
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, max_n + 1):
            hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0 or any(t == 0 for t in total):
        return 0.0
    log_p = sum(math.log((m if m else 0.1) / t) for m, t in zip(match, total)) / max_n
    brevity = min(0.0, 1 - ref_len / hyp_len)
    return 100 * math.exp(log_p + brevity)


def reply_metrics(replies: list[list[str]], refs: list[list[str]]) -> dict[str, float]:
    return {
        "distinct1": distinct(replies, 1),
        "distinct2": distinct(replies, 2),
        "length": sum(map(len, replies)) / max(len(replies), 1),
        "dull": dull_rate(replies),
        "top_share": top_reply_share(replies),
        "unk": unk_rate(replies),
        "bleu": corpus_bleu(replies, refs),
    }


def latency_ms(responder: object, queries: list[list[str]]) -> float:
    """Mean milliseconds per reply answering one query at a time (the chat use case)."""
    responder.reply_ids(queries[:2])  # warm-up
    start = time.perf_counter()
    for q in queries:
        responder.reply_ids([q])
    return 1000 * (time.perf_counter() - start) / max(len(queries), 1)


def evaluate_models(
    names: list[str],
    s2s: str | None,
    rl: str | None,
    backward: str | None,
    device: torch.device,
    limit: int = 0,
    latency_n: int = 100,
    seed: int = 0,
) -> tuple[list[dict], dict]:
    """Rows of metrics (one per preset name) and the sample replies of each, on the S2S run's test split.

    Every sampling preset draws from a generator seeded with ``seed``, so a rerun gives the same table.
    """
    # here, not at the top: the metrics above serve training, which never loads the prediction set-up
    from hw4_chatbot.predict import open_responder, preset

    rows, samples, test, cache = [], {}, None, {}
    for name in names:
        kind = preset(name).model
        responder = open_responder(
            name, s2s if kind == "s2s" else rl, backward, device, flag="--s2s" if kind == "s2s" else "--rl", seed=seed
        )
        if test is None:
            test = load_splits(responder.bot.cfg.data).test
            test = test[:limit] if limit else test
            say(f"evaluating on {len(test)} held-out pairs")
        queries, refs = [q for q, _ in test], [r for _, r in test]
        key = (kind, responder.bot.path)
        if key not in cache:  # perplexity depends on the model, not on the decoding
            cache[key] = perplexity(responder.bot.model, PairBatches(test, responder.bot.vocab), device)
        t0 = time.perf_counter()
        replies = responder.reply_ids(queries)
        batched_ms = 1000 * (time.perf_counter() - t0) / len(queries)
        row = {
            "model": name,
            "ppl": cache[key],
            **reply_metrics(replies, refs),
            "latency_ms": latency_ms(responder, queries[:latency_n]),
            "batched_ms": batched_ms,
        }
        rows.append(row)
        samples[name] = replies
        say(format_row(row))
    return rows, samples


COLUMNS = (
    "model",
    "ppl",
    "distinct1",
    "distinct2",
    "length",
    "dull",
    "top_share",
    "unk",
    "bleu",
    "latency_ms",
    "batched_ms",
)


def format_row(row: dict) -> str:
    return " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS)


def markdown_table(rows: list[dict]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join(f"| {format_row(r)} |\n" for r in rows)


def _main(args: argparse.Namespace) -> int:
    device = start_inference(args.device, args.threads, args.seed)
    check_outputs([args.out], [args.s2s, args.rl, args.backward])
    rows, _ = evaluate_models(
        args.models, args.s2s, args.rl, args.backward, device, args.limit, args.latency_n, args.seed
    )
    table = markdown_table(rows)
    print(table, end="")
    if args.out:
        with atomic_write(args.out) as f:
            f.write(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hw4_chatbot.evaluate", description=__doc__.split("\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        default=["S2S", "S2S-beam5", "RL", "RL-beam5", "BEST"],
        help="presets from configs/presets.yaml",
    )
    p.add_argument("--s2s", help="S2S checkpoint (default: newest s2s best.pt)")
    p.add_argument("--rl", help="RL checkpoint (default: newest rl best.pt)")
    p.add_argument("--backward", help="backward model for MMI presets (default: the one inside the RL checkpoint)")
    p.add_argument("--limit", type=non_negative_int, default=0, help="use only the first N test pairs")
    p.add_argument("--latency-n", type=non_negative_int, default=100, help="queries timed one at a time")
    p.add_argument("--out", help="also write the markdown table here")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampling presets' draws")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads (0: the cores that are free)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
