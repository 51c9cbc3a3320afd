"""The generator's weight average and the BatchNorm statistics re-estimated for it."""

import torch
from torch import nn

from hw3_gan.model import EMA, Generator, ModelConfig, recalibrate_batchnorm

CFG = ModelConfig(image_size=16, nz=8, ngf=8, embed_dim=4)


def test_ema_is_the_hand_computed_average_and_copies_buffers():
    gen = Generator(CFG, n_hair=3, n_eye=2)
    ema = EMA(gen, decay=0.9)
    start = [p.detach().clone() for p in gen.parameters()]
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(1.0)
        gen.net[1].running_mean.fill_(7.0)
    ema.update(gen, step=1000)  # past the warm-up, so the decay is 0.9
    for e, s in zip(ema.model.parameters(), start):
        torch.testing.assert_close(e, s + 0.1)  # 0.9 * s + 0.1 * (s + 1)
    assert torch.all(ema.model.net[1].running_mean == 7.0)
    ema.update(gen, step=0)  # warm-up: decay (1 + 0) / 10 = 0.1, so mostly the new weights
    for e, s in zip(ema.model.parameters(), start):
        torch.testing.assert_close(e, 0.1 * (s + 0.1) + 0.9 * (s + 1))


def test_recalibrated_statistics_are_those_of_the_averaged_weights():
    torch.manual_seed(0)
    gen = Generator(CFG, n_hair=3, n_eye=2)
    bns = [m for m in gen.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.running_mean.fill_(5.0)  # statistics that belong to other weights
    seen = {m: [] for m in bns}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen[mod].append(inp[0].detach())) for m in bns]
    recalibrate_batchnorm(gen, 3, 2, batches=3, batch_size=16, seed=1)
    for h in hooks:
        h.remove()
    assert not gen.training
    for m in bns:
        assert len(seen[m]) == 3
        expected = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen[m]]).mean(0)  # equal-weight average
        torch.testing.assert_close(m.running_mean, expected)
        assert m.momentum == 0.1  # restored for training
