"""Padding, length-bucketed batches, and contiguous token streams for language models."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from common.errors import UserError


def pad_batch(
    seqs: Sequence[Sequence[int] | torch.Tensor], pad_id: int = 0, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences to ``(B, T)`` longs; returns ``(padded, lengths)``.

    Sequences longer than ``max_len`` are cut. Empty sequences get length 0.
    """
    lengths = [min(len(s), max_len) if max_len else len(s) for s in seqs]
    width = max(lengths, default=0)
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, (s, n) in enumerate(zip(seqs, lengths)):
        if n:
            out[i, :n] = torch.as_tensor(list(s[:n]) if not torch.is_tensor(s) else s[:n], dtype=torch.long)
    return out, torch.tensor(lengths, dtype=torch.long)


def length_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``(B, T)`` bool mask, True at real (non-pad) positions."""
    width = int(lengths.max()) if max_len is None and len(lengths) else (max_len or 0)
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose lengths are similar, so little compute goes to padding.

    Each epoch: shuffle (seeded by ``seed + epoch``), cut into pools of ``pool`` batches, sort each
    pool by length, batch it, shuffle the batches. With ``world_size > 1`` every rank takes its own
    share of the batches (same count on every rank), like ``DistributedSampler``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        pool: int = 50,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.pool = drop_last, pool
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        chunk = self.batch_size * self.pool
        batches = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            for b in range(0, len(part), self.batch_size):
                batch = part[b : b + self.batch_size].tolist()
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        per_rank = len(batches) // self.world_size if self.world_size > 1 else len(batches)
        yield from batches[self.rank :: self.world_size][:per_rank]

    def __len__(self) -> int:
        total = len(self._all_batches())
        return total // self.world_size if self.world_size > 1 else total


class StreamBatcher:
    """A token stream cut into ``batch_size`` parallel rows for truncated BPTT.

    Window ``i`` is ``(x, y)`` of shape ``(B, T)`` where ``y`` is ``x`` shifted by one token. Rows
    continue across windows, so a recurrent state can be carried from window ``i`` to ``i + 1``.
    With ``world_size > 1`` the stream is cut into ``batch_size * world_size`` rows and each rank
    keeps its own ``batch_size`` of them.
    """

    def __init__(self, ids: np.ndarray | torch.Tensor, batch_size: int, bptt: int, rank: int = 0, world_size: int = 1):
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        rows = len(ids) // (batch_size * world_size)
        if rows < 2:  # a config asking for more rows than the data has: the user's to fix
            raise UserError(
                f"a stream of {len(ids):,} tokens is too short for {batch_size * world_size} rows of at "
                "least 2 tokens: lower the batch size or use more data"
            )
        data = ids[: rows * batch_size * world_size].view(batch_size * world_size, rows)
        self.data = data[rank::world_size].contiguous()  # (B, N)
        self.batch_size, self.bptt = batch_size, bptt

    @property
    def tokens(self) -> int:
        return self.data.numel()

    def __len__(self) -> int:
        return math.ceil((self.data.size(1) - 1) / self.bptt)

    def window(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = i * self.bptt
        end = min(start + self.bptt, self.data.size(1) - 1)
        return self.data[:, start:end], self.data[:, start + 1 : end + 1]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(len(self)):
            yield self.window(i)
