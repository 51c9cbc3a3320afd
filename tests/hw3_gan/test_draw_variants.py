"""benchmarks/hw3_draw_variants.py: the drawings tried beside --accept, checked by hand."""

import copy

import pytest
import torch

from benchmarks.hw3_draw_variants import colour_nets_judge, main, realness_judge, threshold_pick
from hw3_gan import generate
from hw3_gan.classifier import AttributeNet

from .test_candidates import CPU, EYE, HAIR, short_run  # noqa: F401  (the fixture)

P = torch.tensor([[0.2, 0.6, 0.7], [0.4, 0.1, 0.5], [0.1, 0.2, 0.3]]).log()
FEATS = torch.tensor([[[0.0, 1.0]] * 3, [[0.0, -1.0], [0.0, 0.0], [0.0, 0.9]], [[1.0, 0.0]] * 3])


def test_threshold_first_takes_the_first_eligible_draw_in_noise_order():
    # Row 0: draws 1 and 2 reach 0.5; row 1: draw 2 only; row 2: none, so its most probable (2).
    assert threshold_pick(0.5, first=True)(P, FEATS).tolist() == [1, 2, 2]


def test_threshold_apart_takes_the_eligible_draw_farthest_from_the_line_so_far():
    # Row 0 takes its most probable draw (2, at (0, 1)); row 1's eligible draws at 0.4 are 0 and 2,
    # and draw 0 at (0, -1) is the farther from (0, 1), though draw 2 is the more probable.
    assert threshold_pick(0.4, first=False)(P, FEATS).tolist() == [2, 0, 2]


def test_realness_adds_the_weighted_log_sigmoid_of_the_discriminator_score(short_run):  # noqa: F811
    sampler = generate.TagSampler(short_run[1], CPU, candidates=2)
    x = sampler.gen(
        torch.randn(len(HAIR), sampler.gen.nz, generator=torch.Generator().manual_seed(0)),
        torch.tensor(HAIR),
        torch.tensor(EYE),
    ).detach()
    hair, eye = torch.tensor(HAIR), torch.tensor(EYE)
    plain, feats = sampler.judge(x, hair, eye)
    same, _ = realness_judge(0.0)(sampler, x, hair, eye)
    more, more_feats = realness_judge(2.0)(sampler, x, hair, eye)
    with torch.no_grad():
        score = sampler.disc(x, hair, eye)[0]
    assert torch.allclose(same, plain) and torch.equal(more_feats, feats)
    assert torch.allclose(more - plain, 2 * torch.nn.functional.logsigmoid(score), atol=1e-5)


def test_a_bad_threshold_stops_before_any_drawing_and_nothing_stays_patched():
    judge, pick = generate.TagSampler.judge, generate.spread_pick
    with pytest.raises(SystemExit):
        main(["--threshold", "1.5", "--", "--all-pairs"])
    assert main(["--threshold", "0.5", "--", "--per-pair", "1", "--all-pairs"]) == 2  # evaluate's own error
    assert (generate.TagSampler.judge, generate.spread_pick) == (judge, pick)


def test_colour_nets_draw_an_older_checkpoint_as_one_that_carries_the_classifiers(short_run):  # noqa: F811
    nets = [AttributeNet(width=4).eval() for _ in range(2)]
    carried = copy.deepcopy(short_run[1])
    carried["models"].update({f"colour{k}": net.state_dict() for k, net in enumerate(nets)})
    x = torch.rand(len(HAIR), 3, 16, 16) * 2 - 1
    hair, eye = torch.tensor(HAIR), torch.tensor(EYE)
    for plus, picker in ((None, "classifiers"), (0.5, "both")):  # generate's "both" adds half the discriminator's
        older = generate.TagSampler(short_run[1], CPU, candidates=2)
        want = generate.TagSampler(carried, CPU, candidates=2, picker=picker).judge(x, hair, eye)
        got = colour_nets_judge(nets, plus, generate.TagSampler.judge)(older, x, hair, eye)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    plain = generate.TagSampler(short_run[1], CPU, candidates=2).judge(x, hair, eye)[0]
    alone = colour_nets_judge(nets, None, generate.TagSampler.judge)(older, x, hair, eye)[0]
    twice = colour_nets_judge(nets, 2.0, generate.TagSampler.judge)(older, x, hair, eye)[0]
    assert torch.allclose(twice, alone + 2 * plain, atol=1e-5)
