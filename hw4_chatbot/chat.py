"""An interactive conversation in the terminal.

    python -m hw4_chatbot.chat [--model RL] [--checkpoint PATH] [--seed N]

Type a line, get a reply; an empty line, ``quit`` or end of input (Ctrl-D) stops.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.cli import add_checkpoint_arg, add_overrides_arg
from common.errors import run_cli
from common.setup import start_inference
from hw4_chatbot import HOMEWORK
from hw4_chatbot.predict import add_seed_arg, open_responder


def _main(args: argparse.Namespace) -> int:
    device = start_inference(args.device, args.threads, args.seed)
    responder = open_responder(args.model, args.checkpoint, args.backward, device, args.overrides, seed=args.seed)
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() in ("", "quit", "exit"):
            return 0
        reply = responder.replies([line])[0]
        print(f"bot> {reply}" if interactive else reply, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {HOMEWORK}.chat", description="Chat with a trained model.")
    p.add_argument("--model", default="RL", help="S2S, RL or BEST (a preset of configs/presets.yaml)")
    add_checkpoint_arg(p, HOMEWORK)
    p.add_argument("--backward", help="backward model for MMI presets")
    add_seed_arg(p)
    add_overrides_arg(p, "decoding overrides, e.g. --set temperature=0.9")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
