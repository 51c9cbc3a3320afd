"""The course command line: caption the test (and peer-review) videos of a course data folder.

    python -m hw2_video_caption.predict <data_dir> <test_output.txt> [<peer_review_output.txt>]

Writes one ``id,caption`` line per video in the order of ``testing_id.txt`` (and
``peer_review_id.txt``). ``--ids`` restricts the output to given videos (the "special mission").
By default the caption is the consensus (MBR) choice among the model's n-best list, by expected
CIDEr-D against the other candidates mixed with a prior from the training captions; the captions
of the nearest training videos and a pool of generic training captions can join (see
``decode.py``); ``--rerank none`` gives the plain top beam.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import load_checkpoint
from common.cli import add_checkpoint_arg
from common.config import config_from_dict
from common.errors import UserError, run_cli
from common.files import check_outputs
from common.metrics import say
from common.runs import latest_checkpoint
from common.setup import start_inference
from common.vocab import Vocab
from hw2_video_caption import HOMEWORK
from hw2_video_caption.consensus import CaptionPrior, CiderD, NeighbourCaptioner, tokenize_sets
from hw2_video_caption.data import (
    available_ids,
    load_features,
    load_labels,
    mean_frames,
    read_ids,
    split_ids,
    write_captions,
)
from hw2_video_caption.decode import Decoding, caption_videos
from hw2_video_caption.heatmap import attention_png
from hw2_video_caption.model import ModelConfig, VideoCaptioner

# The one decoding setting benchmarks/hw2_caption.py found best over its folds' inner held-out videos
# (training videos only; see docs/RESULTS.md).
DEFAULT_DECODING = {
    "beam": 10,
    "alpha": 0.7,
    "rerank": "cider",
    "model_weight": 0.0,
    "neighbours": 0,
    "prior": 0.45,
    "pool": 0,
}


def load_model(path: str | os.PathLike, device: torch.device) -> tuple[VideoCaptioner, Vocab, dict]:
    """Model, vocabulary and extra info from a checkpoint; nothing else is needed."""
    state = load_checkpoint(path, HOMEWORK)
    extra = state.get("extra", {})
    try:
        vocab = Vocab(extra["vocab"])
        cfg = config_from_dict(ModelConfig, extra["model"])
        model = VideoCaptioner(cfg, len(vocab))
        model.load_state_dict(state["models"]["captioner"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path}: checkpoint does not hold a video captioner ({type(exc).__name__})") from None
    return model.to(device).eval(), vocab, extra


def _select(ids: list[str], wanted: list[str] | None) -> list[str]:
    """The ids of a list that ``--ids`` asks for, in the list's own order."""
    if wanted is None:
        return ids
    keep = set(wanted)
    return [v for v in ids if v in keep]


def _wanted_ids(items: Sequence[str] | None) -> list[str] | None:
    """``--ids`` items are ids, comma lists, or files of ids (one per line)."""
    if not items:
        return None
    out: list[str] = []
    for item in items:
        if "," not in item and os.path.isfile(item):  # isfile: False (no OSError) for names too long
            out.extend(read_ids(item))
        else:
            out.extend(v.strip() for v in item.split(",") if v.strip())
    if not out:
        raise UserError(f"--ids {' '.join(items)!r}: no video ids")
    return out


def training_side(
    data_dir: str | os.PathLike, dec: Decoding
) -> tuple[NeighbourCaptioner | None, CiderD | None, CaptionPrior | None]:
    """What ``dec`` needs from the training split: the videos that have features as a neighbour
    index, CIDEr-D statistics and the caption prior from all training captions. Without training
    features there are no neighbours (a note says so) and the model's captions are chosen alone."""
    if not (dec.neighbours or dec.rerank == "cider" or dec.uses_prior):
        return None, None, None
    label_file = Path(data_dir) / "training_label.json"
    if not label_file.is_file():
        say(f"{HOMEWORK}: no {label_file}: no neighbours, prior or CIDEr-D statistics")
        return None, None, None
    feat_dir, ids = split_ids(data_dir, "training")
    labels = load_labels(label_file)
    cider = CiderD(tokenize_sets(labels.values())) if dec.rerank == "cider" else None
    prior = CaptionPrior(labels.values()) if dec.uses_prior else None
    have = available_ids(feat_dir, ids) if dec.neighbours else []
    if dec.neighbours and not have:
        say(f"{HOMEWORK}: no training features in {feat_dir}: no neighbours, candidates from the model alone")
    if not have:
        return None, cider, prior
    pooled = mean_frames(load_features(feat_dir, have, cache=False, lazy=True))  # 3.8 GB read, 24 MB kept
    return NeighbourCaptioner(pooled, [labels[v] for v in have]), cider, prior


def write_attention(
    model: VideoCaptioner,
    feats,
    ids: Sequence[str],
    captions: Sequence[str],
    vocab: Vocab,
    folder: Path,
    device: torch.device,
) -> None:
    """One ``<id>.png`` per video: the attention over frames while the model writes its caption."""
    for i, (vid, caption) in enumerate(zip(ids, captions)):
        x = torch.from_numpy(np.ascontiguousarray(feats[i : i + 1])).to(device)
        words = caption.split()
        weights = model.attention_map(x, vocab.encode(words), vocab.bos_id, vocab.eos_id).cpu().numpy()
        attention_png(weights, [*words, "<eos>"], folder / f"{vid}.png", model.cfg.frame_stride)


def _decoding(args: argparse.Namespace) -> Decoding:
    if args.beam < 1 or args.batch_size < 1 or min(args.max_len, args.neighbours, args.pool) < 0:
        raise UserError("--beam and --batch-size must be >= 1, --max-len, --neighbours and --pool >= 0")
    if not 0 <= args.prior <= 1:
        raise UserError("--prior must be between 0 and 1")
    return Decoding(
        beam=args.beam,
        alpha=args.alpha,
        rerank=args.rerank,
        model_weight=args.model_weight,
        neighbours=args.neighbours,
        prior=args.prior,
        pool=args.pool,
    )


def _main(args: argparse.Namespace) -> int:
    dec = _decoding(args)
    outputs = [(args.test_output, "testing")] + ([(args.peer_output, "peer_review")] if args.peer_output else [])
    if args.attention and Path(args.attention).exists() and not Path(args.attention).is_dir():
        raise UserError(f"{args.attention}: not a folder (--attention writes one PNG per video into a folder)")
    wanted = _wanted_ids(args.ids)
    jobs = []
    for path, split in outputs:
        feat_dir, ids = split_ids(args.data_dir, split)
        jobs.append((path, feat_dir, ids, _select(ids, wanted)))
    course = ("testing_id.txt", "peer_review_id.txt", "training_label.json", "testing_label.json")
    inputs = [Path(args.data_dir) / n for n in course] + list(args.ids or [])
    inputs += [feat_dir / f"{v}.npy" for _, feat_dir, _, ids in jobs for v in ids] + [args.checkpoint]
    check_outputs([path for path, _ in outputs], inputs)  # fail before the slow part, not after it
    if wanted is not None:
        known = {v for *_, ids, _ in jobs for v in ids}
        unknown = [v for v in wanted if v not in known]
        if unknown:
            names = {"testing": "testing_id.txt", "peer_review": "peer_review_id.txt"}
            lists = " or ".join(str(Path(args.data_dir) / names[split]) for _, split in outputs)
            raise UserError(f"--ids: {len(unknown)} ids not in {lists} (first: {', '.join(unknown[:3])})")
    feats = [load_features(feat_dir, ids, cache=False) for _, feat_dir, _, ids in jobs]  # inputs checked first
    device = start_inference(args.device, args.threads)
    ckpt = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(HOMEWORK)
    model, vocab, extra = load_model(ckpt, device)
    neighbour_index, cider, prior = training_side(args.data_dir, dec)
    if dec.rerank == "cider" and cider is None:
        dec = replace(dec, rerank="none")  # CIDEr-D needs the training captions: the model's top caption
    say(f"{HOMEWORK}: using checkpoint {ckpt}")
    max_len = args.max_len or int(extra.get("max_len", 20))
    results = []
    for (path, _, _, ids), x in zip(jobs, feats):
        start = time.perf_counter()
        captions = caption_videos(model, x, vocab, device, dec, max_len, neighbour_index, cider, prior, args.batch_size)
        results.append((path, list(zip(ids, captions)), time.perf_counter() - start))
        if args.attention:
            write_attention(model, x, ids, captions, vocab, Path(args.attention), device)
    how = f"beam {dec.beam}"
    if neighbour_index is not None and dec.neighbours:
        how += f", {dec.neighbours} neighbours"
    if dec.rerank != "none":
        how += f", MBR {dec.rerank}" + (f", prior {dec.prior}" if prior is not None and dec.prior else "")
        how += f", pool {dec.pool}" if prior is not None and dec.pool else ""
    for path, lines, seconds in results:
        write_captions(path, lines)
        say(f"{HOMEWORK}: wrote {len(lines)} captions to {path} ({seconds:.1f}s decoding, {how})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {HOMEWORK}.predict", description=__doc__.splitlines()[0])
    p.add_argument("data_dir", help="course data folder (testing_id.txt, testing_data/feat/, ...)")
    p.add_argument("test_output", help="output file for the test videos: id,caption lines")
    p.add_argument("peer_output", nargs="?", help="output file for the peer-review videos")
    p.add_argument("--ids", nargs="+", help="only these videos: ids, comma lists or files of ids")
    d = Decoding(**DEFAULT_DECODING)
    p.add_argument("--beam", type=int, default=d.beam, help="beam width = n-best list size (1 = greedy)")
    p.add_argument("--alpha", type=float, default=d.alpha, help="length normalisation: score / length**alpha")
    p.add_argument(
        "--rerank",
        choices=("none", "bleu1", "cider"),
        default=d.rerank,
        help="consensus (MBR) choice among the candidates by BLEU@1 or CIDEr-D; none = the top beam",
    )
    p.add_argument(
        "--model-weight",
        type=float,
        default=d.model_weight,
        help="MBR value + this * the model's length-normalised log-probability",
    )
    p.add_argument(
        "--neighbours",
        type=int,
        default=d.neighbours,
        help="nearest training videos whose captions join the candidates and stand in for the "
        "references (needs training_data/feat; 0 = off)",
    )
    p.add_argument(
        "--prior",
        type=float,
        default=d.prior,
        help="weight (0-1) of the training captions' prior in MBR: towards captions that fit most videos",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=d.pool,
        help="the N training captions with the best mean BLEU@1 over all training videos join the candidates",
    )
    p.add_argument("--attention", metavar="DIR", help="also write <id>.png attention heat maps into this folder")
    p.add_argument("--max-len", type=int, default=0, help="longest caption in words (0 = the training value)")
    p.add_argument("--batch-size", type=int, default=100, help="videos decoded together")
    add_checkpoint_arg(p, HOMEWORK)
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
