"""Spectral norm with the hinge loss (configs/cpu60_hinge.yaml): unit-gain layers and a tiny run that learns."""

import dataclasses

import torch

from common.checkpoint import load_checkpoint
from common.config import load_config
from hw3_gan import train
from hw3_gan.config import Config
from hw3_gan.generate import TagSampler
from hw3_gan.model import Discriminator, ModelConfig
from hw3_gan.sample_data import write_sample_data

from .conftest import CONFIGS, tiny_train_args
from .test_train_generate import _judge


def _top_singular_values(disc: Discriminator) -> list[float]:
    return [
        torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        for m in disc.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))
    ]


def _inflated(spectral_norm: bool) -> Discriminator:
    torch.manual_seed(0)
    disc = Discriminator(ModelConfig(image_size=16, ndf=8, spectral_norm=spectral_norm), 12, 11)
    with torch.no_grad():
        for p in disc.parameters():
            p.mul_(50)  # raw weights far above unit gain
    x, tags = torch.randn(8, 3, 16, 16), torch.zeros(8, dtype=torch.long)
    for _ in range(30):  # each training-mode forward runs one power iteration
        disc(x, tags, tags)
    return disc


def test_spectral_norm_holds_every_discriminator_layer_at_unit_gain():
    with_sn = _top_singular_values(_inflated(True))
    assert len(with_sn) == 5  # two convolutions at 16x16, psi and the two projection embeddings
    assert all(abs(s - 1) < 0.05 for s in with_sn), with_sn
    assert min(_top_singular_values(_inflated(False))) > 2  # the same weights without it


def test_tiny_hinge_gan_with_spectral_norm_and_no_penalty_learns_colours(tmp_path):
    folder = write_sample_data(tmp_path / "data", n=320)
    run = tmp_path / "run"
    extra = ["model.image_size=16", "model.spectral_norm=true", "train.loss=hinge", "train.penalty=none"]
    assert train.main(tiny_train_args(run, folder, *extra, "train.max_steps=150")) == 0
    state = load_checkpoint(run / "best.pt", "hw3_gan")
    assert "psi.weight_orig" in state["models"]["D"]  # the checkpoint holds the normalised discriminator
    hair_acc, eye_acc = _judge(TagSampler(state, torch.device("cpu")).gen)
    assert hair_acc >= 0.9 and eye_acc >= 0.8, (hair_acc, eye_acc)


def test_hinge_config_is_cpu60_with_only_loss_spectral_norm_and_penalty_changed():
    base, hinge = (dataclasses.asdict(load_config(Config, CONFIGS / n, [])) for n in ("cpu60.yaml", "cpu60_hinge.yaml"))
    assert hinge["model"] == {**base["model"], "spectral_norm": True}
    assert hinge["train"] == {**base["train"], "loss": "hinge", "penalty": "none"}
    assert {k: v for k, v in hinge.items() if k not in ("model", "train")} == {
        k: v for k, v in base.items() if k not in ("model", "train")
    }


def test_minibatch_std_by_hand():
    from hw3_gan.model import minibatch_std

    h = torch.tensor([[1.0, 3.0], [3.0, 5.0], [0.0, 0.0], [2.0, 4.0]]).view(4, 2, 1, 1)
    out = minibatch_std(h, 2)  # groups (images 0, 1) and (2, 3)
    # group 1: per-channel std of (1, 3) and (3, 5) = 1 and 1 -> 1; group 2: (0, 2), (0, 4) -> 1 and 2 -> 1.5
    expected = torch.tensor([1.0, 1.0, 1.5, 1.5])
    assert out.shape == (4, 3, 1, 1) and torch.equal(out[:, :2], h)
    assert torch.allclose(out[:, 2, 0, 0], expected, atol=1e-4)
