"""HW1 training speed against the plain reference, in one process on the same batches.

    python benchmarks/hw1_speed.py --steps 20

The reference is pytorch/examples' word_language_model at the same width: 2x256 LSTM, tied
embeddings, full softmax over the same 50k vocabulary, SGD. Ours: the tied adaptive softmax and
fused Adam of ``configs/cpu.yaml``. Prints tokens/s of both, their ratio, and ours as a fraction of
the ``torch.mm`` ceiling measured here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common_bench import machine_line, matmul_ceiling  # noqa: E402
from common.batching import StreamBatcher  # noqa: E402
from hw1_cloze.model import LSTMLanguageModel, ModelConfig  # noqa: E402
from hw1_cloze.prepare import prepare_corpus  # noqa: E402


class ReferenceLM(nn.Module):
    """pytorch/examples' RNNModel (LSTM, tied): a full softmax over the vocabulary."""

    def __init__(self, vocab: int, dim: int = 256, layers: int = 2):
        super().__init__()
        self.encoder = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, layers, batch_first=True)
        self.decoder = nn.Linear(dim, vocab)
        self.decoder.weight = self.encoder.weight

    def forward(self, x, y, state=None):
        out, state = self.rnn(self.encoder(x), state)
        return F.cross_entropy(self.decoder(out).flatten(0, 1), y.flatten()), state


def tokens_per_second(model: nn.Module, opt: torch.optim.Optimizer, stream: StreamBatcher, steps: int) -> float:
    state = None
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            start = time.perf_counter()
        x, y = stream.window(i)
        loss, state = model(x, y, state)
        state = tuple(s.detach() for s in state)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * stream.batch_size * stream.bptt / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--data", default=os.environ.get("MLDS_DATA", "../shared/data"))
    args = p.parse_args()
    print(machine_line(), flush=True)
    corpus = prepare_corpus(Path(args.data) / "hw1" / "Holmes_Training_Data.tar.xz", quiet=True)
    ids = np.asarray(corpus.ids[:3_000_000])
    stream = StreamBatcher(ids, 128, 35)
    vocab = len(corpus.vocab)
    torch.manual_seed(0)
    ref = ReferenceLM(vocab)
    ref_speed = tokens_per_second(ref, torch.optim.SGD(ref.parameters(), lr=20.0), stream, args.steps)
    ours = LSTMLanguageModel(vocab, ModelConfig())
    our_speed = tokens_per_second(ours, torch.optim.Adam(ours.parameters(), 3e-3, fused=True), stream, args.steps)
    b = ours.softmax.bounds
    shares = [float(((ids >= lo) & (ids < hi)).mean()) for lo, hi in zip(b[1:], b[2:])]
    ceiling = matmul_ceiling()
    print(f"reference (full softmax over {vocab:,}): {ref_speed:,.0f} tokens/s")
    print(f"ours (tied adaptive softmax):           {our_speed:,.0f} tokens/s")
    print(f"speed-up: {our_speed / ref_speed:.1f}x")
    flops = our_speed * ours.flops_per_token(shares)
    print(
        f"ours: {flops / 1e9:.1f} GFLOP/s = {flops / ceiling:.2f} of the torch.mm ceiling ({ceiling / 1e9:.1f} GFLOP/s)"
    )


if __name__ == "__main__":
    main()
