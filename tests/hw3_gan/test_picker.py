"""generate --picker: the colours of a draw named by data.retag's two tag classifiers, checked by hand."""

import copy
import math

import numpy as np
import pytest
import torch

from common.errors import UserError
from hw3_gan.classifier import AttributeNet, fused
from hw3_gan.data import to_tensor, to_uint8
from hw3_gan.generate import TagSampler

from .test_candidates import CPU, EYE, HAIR, short_run  # noqa: F401  (the fixture)


def constant_net(hair_logits: list[float], eye_logits: list[float]) -> AttributeNet:
    """A classifier that gives every image the same colour logits (zero weights, these biases)."""
    net = AttributeNet(width=4).eval()
    for head, logits in ((net.hair, hair_logits), (net.eye, eye_logits)):
        torch.nn.init.zeros_(head.weight)
        head.bias.data = torch.tensor(logits)
    return net


def carrying(state: dict, nets: list[AttributeNet]) -> dict:
    """``state`` as a run trained with data.retag saves it: with its two tag classifiers."""
    state = copy.deepcopy(state)
    state["models"].update({f"colour{k}": net.state_dict() for k, net in enumerate(nets)})
    return state


def test_the_classifiers_average_their_probabilities_and_both_adds_half_the_discriminator(short_run):  # noqa: F811
    # Net A raises hair H (the first image's) to logit 1 and gives every eye 1/11; net B gives every
    # hair 1/12 and raises eye E to logit 2. The picker averages the two nets' probabilities, then logs.
    h0, e0 = HAIR[0], EYE[0]
    a = constant_net([float(i == h0) for i in range(12)], [0.0] * 11)
    b = constant_net([0.0] * 12, [2.0 * (i == e0) for i in range(11)])
    e = math.e
    p_hair = {True: (e / (e + 11) + 1 / 12) / 2, False: (1 / (e + 11) + 1 / 12) / 2}  # asked H or not
    p_eye = {True: (1 / 11 + e**2 / (e**2 + 10)) / 2, False: (1 / 11 + 1 / (e**2 + 10)) / 2}
    want = torch.tensor([math.log(p_hair[h == h0] * p_eye[k == e0]) for h, k in zip(HAIR, EYE)])
    assert {h == h0 for h in HAIR} == {True, False} and {k == e0 for k in EYE} == {True, False}
    state = carrying(short_run[1], [a, b])
    x = torch.rand(len(HAIR), 3, 16, 16) * 2 - 1
    hair, eye = torch.tensor(HAIR), torch.tensor(EYE)
    disc, feats = TagSampler(state, CPU, candidates=2, picker="discriminator").judge(x, hair, eye)
    ours, ours_feats = TagSampler(state, CPU, candidates=2, picker="classifiers").judge(x, hair, eye)
    both, _ = TagSampler(state, CPU, candidates=2).judge(x, hair, eye)  # the default where carried
    assert torch.allclose(ours, want, atol=1e-5) and torch.equal(ours_feats, feats)  # kept apart as before
    assert torch.allclose(both, want + 0.5 * disc, atol=1e-5)


def test_each_image_is_the_draw_the_classifiers_rate_highest(short_run):  # noqa: F811
    torch.manual_seed(0)
    nets = [AttributeNet(width=4).eval() for _ in range(2)]  # untrained, but their reads differ per image
    sampler, n = TagSampler(carrying(short_run[1], nets), CPU, candidates=4, picker="classifiers"), 4
    got = sampler.sample(HAIR, EYE, torch.Generator().manual_seed(5))
    # By hand: the same noise, every draw rendered as 8-bit images, each net's softmax averaged.
    z = torch.randn(len(HAIR), n, sampler.gen.nz, generator=torch.Generator().manual_seed(5))
    hair, eye = torch.tensor(HAIR).repeat_interleave(n), torch.tensor(EYE).repeat_interleave(n)
    rows = torch.arange(len(hair))
    with torch.no_grad():
        images = to_tensor(to_uint8(sampler.gen(z.flatten(0, 1), hair, eye)))
        feats = [net.features(images) for net in nets]
        p_hair = sum(net.hair(f).softmax(1) for net, f in zip(nets, feats)) / 2
        p_eye = sum(net.eye(f).softmax(1) for net, f in zip(nets, feats)) / 2
    best = (p_hair[rows, hair] * p_eye[rows, eye]).view(len(HAIR), n).argmax(1)
    want = sampler.render(z[torch.arange(len(HAIR)), best], HAIR, EYE)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert len(set(best.tolist())) > 1  # not always the first draw


def test_the_picker_needs_the_classifiers_and_draws_to_choose_among(short_run):  # noqa: F811
    assert TagSampler(short_run[1], CPU, candidates=2).picker == "discriminator"  # none carried
    with pytest.raises(UserError, match="run/best.pt: --picker classifiers needs a run with data.retag's"):
        TagSampler(short_run[1], CPU, "run/best.pt", candidates=2, picker="classifiers")
    state = carrying(short_run[1], [AttributeNet(width=4), AttributeNet(width=4)])
    with pytest.raises(UserError, match="--picker .* goes with --candidates above 1"):
        TagSampler(state, CPU, candidates=1, picker="both")
    with pytest.raises(UserError, match="--picker must be one of discriminator, classifiers, both, got 'eyes'"):
        TagSampler(state, CPU, candidates=2, picker="eyes")
    assert TagSampler(state, CPU).colour == []  # plain draws read no classifier


def test_the_fused_classifier_reads_images_as_the_trained_one_does():
    """fused(): BatchNorm folded into the convolutions, pooling before ReLU, NHWC: the same outputs."""
    torch.manual_seed(0)
    net = AttributeNet(width=4)
    for m in net.modules():  # statistics far from the identity, so that a wrong fold shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 3)
            m.weight.data.uniform_(-2, 2)
            m.bias.data.uniform_(-1, 1)
    net.eval()
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8))
    fast = fused(net)
    with torch.no_grad():
        for a, b in zip(net(x), fast(x)):
            assert torch.allclose(a, b, atol=1e-5) and a.abs().max() > 1e-2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert fast.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the trained net is left as it was
