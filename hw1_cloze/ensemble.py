"""The ensemble's members: finding the newest of each kind, loading their scorers, ``ensemble.yaml``.

``python -m hw1_cloze.tune`` writes ``runs/hw1_cloze/ensemble.yaml``; ``predict`` with no member
flags reads the newest one. Its shape::

    members:
      - {name: forward, path: runs/hw1_cloze/fwd/best.pt, weight: 1.0}
      - {name: ngram, path: runs/hw1_cloze/kn4.npz, weight: 0.4}
    dev: {questions: 2000, accuracy: 0.7, stderr: 0.01, ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from common.checkpoint import load_checkpoint
from common.errors import UserError
from common.files import atomic_write
from common.runs import runs_root
from hw1_cloze import HOMEWORK
from hw1_cloze.cooc import CoocScorer
from hw1_cloze.scoring import LSTMScorer, NgramScorer, SentenceScorer
from hw1_cloze.semantic import SkipGramScorer

KINDS = ("forward", "backward", "ngram", "skipgram", "cooc")  # the order of weights everywhere
# each kind's flag in predict and tune
FLAGS = {"forward": "checkpoint", "backward": "backward", "ngram": "ngram", "skipgram": "semantic", "cooc": "cooc"}
ENSEMBLE_FILE = "ensemble.yaml"


@dataclass
class Member:
    name: str  # one of KINDS
    path: Path
    weight: float = 1.0


def load_scorer(member: Member, device: torch.device, batch_size: int = 256) -> SentenceScorer:
    if member.name in ("forward", "backward"):
        scorer = LSTMScorer(load_checkpoint(member.path, HOMEWORK), device, batch_size)
        if scorer.direction != member.name:
            raise UserError(f"{member.path}: a {scorer.direction} LSTM, given as the {member.name} one")
        return scorer
    if member.name == "ngram":
        return NgramScorer(member.path)
    if member.name == "cooc":
        return CoocScorer(member.path)
    return SkipGramScorer(member.path)


def _run_direction(run_dir: Path) -> str:
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return (cfg.get("data") or {}).get("direction", "forward")


def _npz_kind(path: Path) -> str:
    try:
        with np.load(path) as z:
            names = set(z.files)
    except (OSError, ValueError):
        return ""
    kinds = {"order": "ngram", "vectors": "skipgram", "sentences": "cooc"}
    return next((kind for key, kind in kinds.items() if key in names), "")


def find_members(root: Path | None = None) -> dict[str, Path]:
    """The newest checkpoint of each kind under ``runs/hw1_cloze/`` (kinds with none are absent)."""
    root = root or runs_root() / HOMEWORK
    found: dict[str, list[Path]] = {k: [] for k in KINDS}
    if root.is_dir():
        for path in root.glob("*/best.pt"):
            direction = _run_direction(path.parent)
            if direction in found:
                found[direction].append(path)
        for path in [*root.glob("*.npz"), *root.glob("*/*.npz")]:
            kind = _npz_kind(path)
            if kind:
                found[kind].append(path)
    return {k: max(v, key=lambda p: p.stat().st_mtime) for k, v in found.items() if v}


def newest_ensemble(root: Path | None = None) -> Path | None:
    root = root or runs_root() / HOMEWORK
    found = [*root.glob(ENSEMBLE_FILE), *root.glob(f"*/{ENSEMBLE_FILE}")] if root.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def write_ensemble(path: str | os.PathLike, members: list[Member], dev: dict) -> None:
    rows = [{"name": m.name, "path": str(m.path), "weight": round(float(m.weight), 6)} for m in members]
    with atomic_write(path) as f:
        f.write("# written by python -m hw1_cloze.tune: weights chosen on dev questions only\n")
        yaml.safe_dump({"members": rows, "dev": dev}, f, sort_keys=False)


def read_ensemble(path: str | os.PathLike) -> tuple[list[Member], dict]:
    """Members (with weight > 0 or not) and the dev record; any fault is one line naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: not valid YAML") from None
    rows = data.get("members") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{path}: expected a 'members' list of {{name, path, weight}}")
    members = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or row.get("name") not in KINDS:
            raise UserError(f"{path}: member {i} needs a name, one of {', '.join(KINDS)}")
        weight = row.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise UserError(f"{path}: member {i} ({row['name']}) needs a weight >= 0, got {weight!r}")
        if not isinstance(row.get("path"), str):
            raise UserError(f"{path}: member {i} ({row['name']}) needs a path")
        member = Member(row["name"], Path(row["path"]), float(weight))
        if member.weight > 0 and not member.path.is_file():
            raise UserError(f"{path}: member {i} ({member.name}): {member.path} not found")
        members.append(member)
    if not any(m.weight > 0 for m in members):
        raise UserError(f"{path}: every weight is 0")
    return members, data.get("dev") or {}
