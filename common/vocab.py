"""A word vocabulary with the four special tokens, reproducible ids and JSON save/load."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.errors import UserError
from common.files import atomic_write

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


class Vocab:
    """Token <-> id. Ids 0..3 are ``<pad> <bos> <eos> <unk>``; the rest by falling count, then token."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}")
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in vocabulary")

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(
        cls,
        tokens: Iterable[str] | Counter,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """From a token stream or a ``Counter``. ``max_size`` counts the specials too.

        Ties in count are broken by the token itself, so two builds give identical ids.
        """
        counts = tokens if isinstance(tokens, Counter) else Counter(tokens)
        words = [(-n, w) for w, n in counts.items() if n >= min_freq and w not in SPECIALS]
        words.sort()
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + [w for _, w in words])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def id(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, self.unk_id) for t in tokens]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Tokens for ``ids``, stopping at ``<eos>`` and dropping ``<pad>``/``<bos>`` when stripping."""
        out = []
        for i in ids:
            i = int(i)
            if strip_specials:
                if i == self.eos_id:
                    break
                if i in (self.pad_id, self.bos_id):
                    continue
            out.append(self.itos[i])
        return out

    def to_json(self) -> str:
        return json.dumps({"tokens": self.itos}, ensure_ascii=False)

    @classmethod
    def from_tokens_dict(cls, data: dict, source: object = "<vocab>") -> Vocab:
        try:
            return cls(data["tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{source}: not a vocabulary file ({exc})") from None

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: vocabulary file not found") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read vocabulary ({exc})") from None
        return cls.from_tokens_dict(data, path)
