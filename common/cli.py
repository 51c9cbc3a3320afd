"""The flags every train / predict command shares."""

from __future__ import annotations

import argparse


def add_overrides_arg(p: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE ...`` into ``args.overrides`` (repeatable; read by :mod:`common.config`)."""
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help=help)


def model_file_parser(
    prog: str, description: str, config: str | None, example: str, out: str
) -> argparse.ArgumentParser:
    """``--config --set --out --quiet``: a command that builds one model file from a config."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    default = f"default: {config}" if config else "default: the built-in settings"
    p.add_argument("--config", default=config, help=f"YAML config file ({default})")
    add_overrides_arg(p, f"override config keys, e.g. --set {example}")
    p.add_argument("--out", required=True, help=f"where to write the {out} (.npz)")
    p.add_argument("--quiet", action="store_true", help="no status lines")
    return p


def train_parser(homework: str, description: str) -> argparse.ArgumentParser:
    """``--config --set --run-dir --resume --device --quiet --debug``."""
    p = argparse.ArgumentParser(prog=f"python -m {homework}.train", description=description)
    p.add_argument(
        "--config",
        help=f"YAML config file (default: {homework}/configs/default.yaml; with --resume: the run's own config.yaml)",
    )
    add_overrides_arg(p, "override config keys, e.g. --set train.lr=3e-4 model.hidden=512")
    p.add_argument("--run-dir", help=f"run folder (default: runs/{homework}/<timestamp>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its last.pt and config.yaml (--set may change "
        "only its time and step limits, logging, device and threads)",
    )
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (overrides the config's device)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(default_config=f"{homework}/configs/default.yaml")  # read when neither --config nor --resume
    return p


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts and sizes that must be at least 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse ``type`` for counts where 0 means "all" or "automatic"."""
    return _whole_number(text, 0)


def add_checkpoint_arg(p: argparse.ArgumentParser, homework: str) -> None:
    """``--checkpoint --device --threads --debug``, read by :func:`common.setup.start_inference`."""
    p.add_argument("--checkpoint", help=f"model checkpoint (default: newest runs/{homework}/*/best.pt)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads (0: the cores that are free)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
