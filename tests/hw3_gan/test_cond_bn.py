"""Class-conditional BatchNorm in the generator (``model.cond_bn``): the arithmetic, the tags reaching
every layer, EMA recalibration and a tiny run that learns its colours."""

import torch

from common.checkpoint import load_checkpoint
from hw3_gan import train
from hw3_gan.generate import TagSampler
from hw3_gan.model import CondBatchNorm, Generator, ModelConfig, recalibrate_batchnorm
from hw3_gan.sample_data import write_sample_data

from .conftest import tiny_train_args
from .test_train_generate import _judge

CFG = ModelConfig(image_size=16, nz=8, ngf=8, embed_dim=4, cond_bn=True)


def test_cond_batchnorm_by_hand():
    torch.manual_seed(0)
    norm = CondBatchNorm(2, 3)
    x, cond = torch.randn(4, 2, 3, 3), torch.randn(4, 3)
    plain = torch.nn.functional.batch_norm(x, None, None, training=True, eps=norm.bn.eps)
    scale = 1 + cond @ norm.gain.weight.T + norm.gain.bias
    shift = cond @ norm.shift.weight.T + norm.shift.bias
    expected = plain * scale[:, :, None, None] + shift[:, :, None, None]
    assert torch.allclose(norm(x, cond), expected, atol=1e-5)
    with torch.no_grad():
        for p in (*norm.gain.parameters(), *norm.shift.parameters()):
            p.zero_()
    assert torch.allclose(norm(x, cond), plain, atol=1e-5)  # zero maps: plain BatchNorm, unit scale, no shift


def _tag_effect(cond_bn: bool) -> float:
    """How much the images change with the tags when the tags do not enter the first layer."""
    torch.manual_seed(0)
    gen = Generator(ModelConfig(image_size=16, nz=8, ngf=8, embed_dim=4, cond_bn=cond_bn), 12, 11).eval()
    with torch.no_grad():
        gen.net[0].weight[8:] = 0  # the input channels that carry the tag embeddings
        if cond_bn:  # give the conditional scales and shifts a visible size
            for m in gen.modules():
                if isinstance(m, CondBatchNorm):
                    m.gain.weight.normal_(0, 0.5)
                    m.shift.weight.normal_(0, 0.5)
    z = torch.randn(4, 8).repeat(2, 1)
    hair, eye = torch.tensor([0] * 4 + [5] * 4), torch.tensor([1] * 4 + [7] * 4)
    with torch.no_grad():
        x = gen(z, hair, eye)
    return (x[:4] - x[4:]).abs().max().item()


def test_tags_reach_the_generator_past_its_first_layer_only_with_cond_bn():
    assert _tag_effect(False) == 0.0
    assert _tag_effect(True) > 0.05


def test_recalibration_resets_the_statistics_of_conditional_batchnorm():
    torch.manual_seed(0)
    gen = Generator(CFG, 12, 11)
    bns = [m.bn for m in gen.modules() if isinstance(m, CondBatchNorm)]
    assert len(bns) == 2 and all(not bn.affine for bn in bns)
    for bn in bns:
        bn.running_mean.fill_(5.0)
    recalibrate_batchnorm(gen, 12, 11, batches=2, batch_size=8)
    assert all(bn.running_mean.abs().max() < 5.0 for bn in bns)
    assert not gen.training


def test_tiny_gan_with_cond_bn_learns_colours(tmp_path):
    folder = write_sample_data(tmp_path / "data", n=320)
    run = tmp_path / "run"
    extra = ["model.image_size=16", "model.cond_bn=true", "train.max_steps=150"]
    assert train.main(tiny_train_args(run, folder, *extra)) == 0
    state = load_checkpoint(run / "best.pt", "hw3_gan")
    assert "net.1.gain.weight" in state["models"]["G_ema"]
    hair_acc, eye_acc = _judge(TagSampler(state, torch.device("cpu")).gen)
    assert hair_acc >= 0.9 and eye_acc >= 0.8, (hair_acc, eye_acc)
