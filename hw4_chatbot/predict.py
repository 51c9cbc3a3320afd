"""The course command: one reply per input line, same order.

    python -m hw4_chatbot.predict {S2S,RL,BEST} input.txt output.txt [--checkpoint PATH] [--seed N]

A model name is a preset in ``configs/presets.yaml`` (which checkpoint kind, which decoding). The
checkpoint defaults to the newest ``runs/hw4_chatbot/*/best.pt`` of that kind (s2s or rl). Sampling
presets draw from their own generator seeded by ``--seed``, so one input file and one seed always
give the same output file.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml

from common.batching import pad_batch
from common.cli import add_checkpoint_arg, add_overrides_arg, non_negative_int
from common.config import config_from_dict, load_config
from common.errors import UserError, run_cli
from common.files import atomic_write, check_outputs
from common.metrics import say
from common.runs import latest_checkpoint
from common.setup import start_inference
from common.text import read_lines
from hw4_chatbot import HOMEWORK
from hw4_chatbot.config import Chatbot, load_chatbot
from hw4_chatbot.data import DULL_REPLIES, encode_query, normalize
from hw4_chatbot.decode import DecodeConfig, decode_batch
from hw4_chatbot.rewards import vocab_map

PRESETS_FILE = Path(__file__).parent / "configs" / "presets.yaml"


@dataclasses.dataclass
class Preset:
    model: str = "s2s"  # s2s or rl
    decode: DecodeConfig = dataclasses.field(default_factory=DecodeConfig)


def presets() -> dict[str, Preset]:
    data = yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))
    return {name: config_from_dict(Preset, value) for name, value in data.items()}


def preset(name: str) -> Preset:
    table = presets()
    if name not in table:
        raise UserError(f"unknown model '{name}' (choose from {', '.join(table)})")
    return table[name]


def run_kind(run_dir: Path) -> str:
    """What a run trained (s2s, backward or rl), read from its saved config.yaml ("" if unreadable)."""
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return "rl" if cfg.get("mode") == "rl" else "backward" if cfg.get("data", {}).get("reverse") else "s2s"


def find_checkpoint(kind: str, flag: str = "--checkpoint") -> Path:
    """The newest ``best.pt`` of a run that trained ``kind`` (s2s, backward or rl); ``flag`` names one instead."""
    return latest_checkpoint(HOMEWORK, accept=lambda run_dir: run_kind(run_dir) == kind, kind=kind, flag=flag)


class Responder:
    """Text in, text out: tokenise queries, decode in batches, detokenise replies."""

    def __init__(self, bot: Chatbot, decode: DecodeConfig, device: torch.device, batch_size: int = 64, seed: int = 0):
        self.bot, self.decode, self.device, self.batch_size = bot, decode, device, batch_size
        # its own generator: the draws depend on the seed and the queries, not on what else used torch's
        self.generator = torch.Generator(device).manual_seed(seed)
        vocab = bot.vocab
        self.dull = [vocab.encode(r.split()) for r in DULL_REPLIES if all(t in vocab for t in r.split())]
        if decode.mmi_weight and bot.backward is None:
            raise UserError(f"{bot.path}: MMI reranking needs a backward model (pass --backward PATH)")
        self.mapping = vocab_map(bot.vocab, bot.backward_vocab) if bot.backward_vocab is not None else None

    def reply_ids(self, queries: list[list[str]]) -> list[list[str]]:
        """Reply tokens for tokenised queries (sorted by length inside, returned in input order)."""
        vocab, max_q = self.bot.vocab, self.bot.cfg.data.max_query_len
        order = sorted(range(len(queries)), key=lambda i: len(queries[i]))
        out: list[list[str]] = [[] for _ in queries]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            src, src_len = pad_batch([encode_query(vocab, queries[i], max_q) for i in idx], vocab.pad_id)
            ids = decode_batch(
                self.bot.model,
                src.to(self.device),
                src_len,
                self.decode,
                self.bot.backward,
                vocab.bos_id,
                vocab.eos_id,
                self.mapping,
                self.generator,
                self.dull,
            )
            for i, reply in zip(idx, ids):
                out[i] = vocab.decode(reply)
        return out

    def replies(self, lines: list[str]) -> list[str]:
        return [detokenize(r) for r in self.reply_ids([normalize(line) for line in lines])]


def detokenize(tokens: list[str]) -> str:
    """Tokens joined by spaces (the course's outputs were tokenised text); never an empty line."""
    return " ".join(tokens) if tokens else "..."


def open_responder(
    name: str,
    checkpoint: str | None,
    backward: str | None,
    device: torch.device,
    overrides: Sequence[str] = (),
    flag: str = "--checkpoint",
    seed: int = 0,
) -> Responder:
    """A preset's model and decoding; prints which checkpoint it used (``flag``: the option naming one).

    ``seed`` seeds the responder's sampling generator.
    """
    chosen = preset(name)
    decode = load_config(DecodeConfig, None, [f"{k}={v}" for k, v in _flat(chosen.decode)] + list(overrides))
    path = Path(checkpoint) if checkpoint else find_checkpoint(chosen.model, flag)
    bot = load_chatbot(path, device)
    say(f"{name}: using checkpoint {path} ({bot.kind})")
    if decode.mmi_weight and (backward or bot.backward is None):
        back_path = Path(backward) if backward else find_checkpoint("backward", "--backward")
        back = load_chatbot(back_path, device)
        bot.backward, bot.backward_vocab = back.model, back.vocab
        say(f"{name}: using backward model {back_path}")
    return Responder(bot, decode, device, seed=seed)


def _flat(cfg: DecodeConfig) -> list[tuple[str, object]]:
    return list(dataclasses.asdict(cfg).items())


def _main(args: argparse.Namespace) -> int:
    device = start_inference(args.device, args.threads, args.seed)
    preset(args.model)  # an unknown name fails before any work
    check_outputs([args.output], [args.input, args.checkpoint, args.backward])
    lines = read_lines(args.input)  # UserError naming the file when missing, a folder or binary
    if not lines:
        say(f"{args.input}: empty file, writing an empty reply file")
    responder = open_responder(args.model, args.checkpoint, args.backward, device, args.overrides, seed=args.seed)
    replies = responder.replies(lines)
    with atomic_write(args.output) as f:
        f.writelines(r + "\n" for r in replies)
    say(f"wrote {len(replies)} replies to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {HOMEWORK}.predict", description="Reply to every input line.")
    p.add_argument("model", help="S2S, RL or BEST (or another preset of configs/presets.yaml)")
    p.add_argument("input", help="text file, one query per line")
    p.add_argument("output", help="where to write one reply per line")
    add_checkpoint_arg(p, HOMEWORK)
    p.add_argument("--backward", help="backward model for MMI presets (default: newest backward run)")
    add_seed_arg(p)
    add_overrides_arg(p, "decoding overrides, e.g. --set strategy=beam beam=10")
    return p


def add_seed_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the sampling presets' draws (same seed and input: same replies)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
