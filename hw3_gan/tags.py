"""Colour tags: the vocabulary, tag-line parsing for tags.csv, and the course's testing text.

Tag ids are positions in HAIR_COLOURS / EYE_COLOURS; checkpoints store these lists so a model
keeps meaning the same colours even if the lists here grow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError, where
from common.text import read_lines

HAIR_COLOURS = ["orange", "white", "aqua", "gray", "green", "red", "purple", "pink", "blue", "black", "brown", "blonde"]
# Gray eyes were a 2017 tag; the 2018 extra_data has none, so a model trained on it cannot draw them.
EYE_COLOURS = ["black", "orange", "pink", "yellow", "aqua", "purple", "green", "brown", "red", "blue", "gray"]
ALIASES = {"grey": "gray", "blond": "blonde"}
PER_LINE = 5  # images the course asks for per testing line
_ID = re.compile(r"[A-Za-z0-9_.-]+")
_TAG = re.compile(r"([a-z]+)\s+(hair|eyes|eye)\b")


@dataclass(frozen=True)
class TagRequest:
    """One testing line: an id and the colours asked for (None: not asked, any colour will do)."""

    id: str
    hair: int | None
    eye: int | None
    line: int = 0


def _colour(word: str, kind: str, source: str) -> int:
    names = HAIR_COLOURS if kind == "hair" else EYE_COLOURS
    word = ALIASES.get(word, word)
    if word not in names:
        raise UserError(f"{source}: unknown {kind} colour '{word}' (valid: {', '.join(names)})")
    return names.index(word)


def parse_tags(text: str, source: str) -> tuple[int | None, int | None]:
    """``'blue hair red eyes'``, ``'aqua eyes purple hair'`` or ``'red hair'`` → (hair id, eye id)."""
    text = " ".join(text.lower().split())
    found = list(_TAG.finditer(text))
    leftover = _TAG.sub("", text).strip()
    if not found or leftover:
        raise UserError(f"{source}: expected '<colour> hair' and/or '<colour> eyes', got '{text}'")
    hair = eye = None
    for m in found:
        kind = "hair" if m.group(2) == "hair" else "eye"
        value = _colour(m.group(1), kind, source)
        if kind == "hair":
            if hair is not None:
                raise UserError(f"{source}: two hair colours in '{text}'")
            hair = value
        else:
            if eye is not None:
                raise UserError(f"{source}: two eye colours in '{text}'")
            eye = value
    return hair, eye


def split_id(line: str, source: str) -> tuple[str, str]:
    """``'<id>,<rest>'`` → (id, rest); a line without a usable id is an error naming ``source``."""
    ident, sep, rest = line.partition(",")
    ident = ident.strip()
    if not sep or not ident:
        raise UserError(f"{source}: expected '<id>,<tags>', got '{line.strip()[:60]}'")
    if not _ID.fullmatch(ident):
        raise UserError(f"{source}: id '{ident[:30]}' may only hold letters, digits, '_', '-' and '.'")
    return ident, rest


def read_testing_text(path: str | os.PathLike) -> list[TagRequest]:
    """The course's ``testing_text.txt``: ``<id>,<tags>`` per line, tags in either order, one may be missing."""
    path = Path(path)
    requests: list[TagRequest] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        source = where(path, n)
        ident, rest = split_id(line, source)
        if ident in seen:
            raise UserError(f"{source}: id '{ident}' already used on line {seen[ident]}")
        seen[ident] = n
        hair, eye = parse_tags(rest, source)
        requests.append(TagRequest(ident, hair, eye, n))
    if not requests:
        raise UserError(f"{path}: no testing lines (the file is empty)")
    return requests


def describe(hair: int | None, eye: int | None) -> str:
    parts = ([f"{HAIR_COLOURS[hair]} hair"] if hair is not None else []) + (
        [f"{EYE_COLOURS[eye]} eyes"] if eye is not None else []
    )
    return " ".join(parts)
