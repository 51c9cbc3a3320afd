"""The course command line: caption the test (and peer-review) videos of a course data folder.

    python -m hw2_video_caption.predict <data_dir> <test_output.txt> [<peer_review_output.txt>]

Writes one ``id,caption`` line per video in the order of ``testing_id.txt`` (and
``peer_review_id.txt``). ``--ids`` restricts the output to given videos (the "special mission").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
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
from hw2_video_caption.data import load_features, read_ids, split_ids, write_captions
from hw2_video_caption.model import ModelConfig, VideoCaptioner

HOMEWORK = "hw2_video_caption"


def decode_captions(model: VideoCaptioner, feats: np.ndarray, vocab: Vocab, device: torch.device, beam: int = 5,
                    alpha: float = 0.7, max_len: int = 20, batch_size: int = 100) -> list[str]:
    """Captions for ``(N, 80, D)`` features, decoded ``batch_size`` videos at a time."""
    was_training = model.training
    model.eval()
    banned = [vocab.pad_id, vocab.bos_id, vocab.unk_id]
    out: list[str] = []
    for start in range(0, len(feats), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(feats[start:start + batch_size])).to(device)
        seqs = model.beam_search(x, vocab.bos_id, vocab.eos_id, max_len, beam, alpha, banned)
        out.extend(" ".join(vocab.decode(s)) for s in seqs)
    model.train(was_training)
    return out


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


def _run(args: argparse.Namespace) -> int:
    if args.beam < 1 or args.batch_size < 1 or args.max_len < 0:
        raise UserError("--beam and --batch-size must be >= 1, --max-len >= 0")
    outputs = [(args.test_output, "testing")] + ([(args.peer_output, "peer_review")] if args.peer_output else [])
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
    say(f"{HOMEWORK}: using checkpoint {ckpt}")
    max_len = args.max_len or int(extra.get("max_len", 20))
    results = []
    for (path, _, _, ids), x in zip(jobs, feats):
        start = time.perf_counter()
        captions = decode_captions(model, x, vocab, device, args.beam, args.alpha, max_len, args.batch_size)
        results.append((path, list(zip(ids, captions)), time.perf_counter() - start))
    for path, lines, seconds in results:
        write_captions(path, lines)
        say(f"{HOMEWORK}: wrote {len(lines)} captions to {path} ({seconds:.1f}s decoding, beam {args.beam})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {HOMEWORK}.predict", description=__doc__.splitlines()[0])
    p.add_argument("data_dir", help="course data folder (testing_id.txt, testing_data/feat/, ...)")
    p.add_argument("test_output", help="output file for the test videos: id,caption lines")
    p.add_argument("peer_output", nargs="?", help="output file for the peer-review videos")
    p.add_argument("--ids", nargs="+", help="only these videos: ids, comma lists or files of ids")
    p.add_argument("--beam", type=int, default=5, help="beam width (1 = greedy)")
    p.add_argument("--alpha", type=float, default=0.7, help="length normalisation: score / length**alpha")
    p.add_argument("--max-len", type=int, default=0, help="longest caption in words (0 = the training value)")
    p.add_argument("--batch-size", type=int, default=100, help="videos decoded together")
    add_checkpoint_arg(p, HOMEWORK)
    return run_cli(_run, p, argv)


if __name__ == "__main__":
    sys.exit(main())
