"""Training: maximum-likelihood seq2seq (forward, or backward with data.reverse=true), or RL fine-tuning.

python -m hw4_chatbot.train --config hw4_chatbot/configs/s2s.yaml
python -m hw4_chatbot.train --config hw4_chatbot/configs/rl.yaml --set rl.init_checkpoint=runs/.../best.pt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from common.cli import train_parser
from common.config import read_config_file
from common.errors import run_cli
from common.runs import resume_dir
from common.setup import Run, train_command
from hw4_chatbot import HOMEWORK
from hw4_chatbot.config import Config
from hw4_chatbot.rl import train_rl
from hw4_chatbot.s2s import train_s2s


def keep_rl_sections(args: argparse.Namespace) -> argparse.Namespace:
    """``--resume --config rl.yaml`` of an RL run: its model and data keys stay the run's own.

    An RL run records the initial S2S checkpoint's ``model`` and ``data`` sections (what it trained),
    not the file's, so the file given again is read with the run's sections in their place.
    """
    if not (args.resume and args.config):
        return args
    own = resume_dir(HOMEWORK, args.run_dir) / "config.yaml"
    saved = read_config_file(own) if own.is_file() else {}
    if saved.get("mode") != "rl":
        return args
    sections = [
        f"{key}={yaml.safe_dump(saved[key], default_flow_style=True, width=1 << 30).strip()}"
        for key in ("model", "data")
        if isinstance(saved.get(key), dict)
    ]
    return argparse.Namespace(**{**vars(args), "overrides": sections + list(args.overrides)})


def train_chatbot(run: Run[Config]) -> None:
    (train_rl if run.cfg.mode == "rl" else train_s2s)(run)


def _main(args: argparse.Namespace) -> int:
    return train_command(HOMEWORK, Config, keep_rl_sections(args), train_chatbot)


def main(argv: Sequence[str] | None = None) -> int:
    parser = train_parser(HOMEWORK, "Train the chatbot: seq2seq by maximum likelihood, or RL fine-tuning.")
    return run_cli(_main, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
