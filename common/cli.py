"""The flags every train / predict command shares."""

from __future__ import annotations

import argparse


def train_parser(homework: str, description: str) -> argparse.ArgumentParser:
    """``--config --set --run-dir --resume --device --quiet --debug``."""
    p = argparse.ArgumentParser(prog=f"python -m {homework}.train", description=description)
    p.add_argument("--config", default=f"{homework}/configs/default.yaml", help="YAML config file")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. --set train.lr=3e-4 model.hidden=512")
    p.add_argument("--run-dir", help=f"run folder (default: runs/{homework}/<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (overrides the config's device)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def add_checkpoint_arg(p: argparse.ArgumentParser, homework: str) -> None:
    p.add_argument("--checkpoint", help=f"model checkpoint (default: newest runs/{homework}/*/best.pt)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
