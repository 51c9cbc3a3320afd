"""Best-of-n sampling: each image is the noise draw whose colours the run's own discriminator names best."""

import copy
import math

import numpy as np
import pytest
import torch

from common.checkpoint import load_checkpoint
from common.errors import UserError
from hw3_gan import generate, train
from hw3_gan.generate import TagSampler
from hw3_gan.sample_data import DEMO_EYES, DEMO_HAIR, write_sample_data
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS

from .conftest import own_cache, tiny_train_args

CPU = torch.device("cpu")
HAIR = [HAIR_COLOURS.index(h) for h in DEMO_HAIR for _ in DEMO_EYES for _ in range(8)]
EYE = [EYE_COLOURS.index(e) for _ in DEMO_HAIR for e in DEMO_EYES for _ in range(8)]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """A short ADC run: 40 steps on the synthetic faces."""
    root = tmp_path_factory.mktemp("candidates")
    with own_cache(root):
        folder = write_sample_data(root / "data", n=320)
        heads = ["model.aux_classifier=true", "model.aux_twin=true", "train.twin_loss=adc"]
        args = tiny_train_args(root / "run", folder, "model.image_size=16", "train.max_steps=40", *heads)
        assert train.main(args) == 0
    return root / "run" / "best.pt", load_checkpoint(root / "run" / "best.pt", "hw3_gan")


def _seed(n: int) -> torch.Generator:
    return torch.Generator().manual_seed(n)


def test_one_candidate_is_the_plain_draw(short_run):
    sampler = TagSampler(short_run[1], CPU)
    plain = sampler.render(torch.randn(len(HAIR), sampler.gen.nz, generator=_seed(3)), HAIR, EYE)
    assert np.array_equal(sampler.sample(HAIR, EYE, _seed(3)), plain)


def test_each_image_is_the_candidate_with_the_highest_real_tag_probability(short_run):
    sampler, n = TagSampler(short_run[1], CPU, candidates=4), 4
    got = sampler.sample(HAIR, EYE, _seed(5))
    # By hand: the same noise, every candidate drawn, the 2K-way ADC softmax read at "real <asked colour>".
    z = torch.randn(len(HAIR), n, sampler.gen.nz, generator=_seed(5))
    hair, eye = torch.tensor(HAIR).repeat_interleave(n), torch.tensor(EYE).repeat_interleave(n)
    with torch.no_grad():
        x = sampler.gen(z.flatten(0, 1), hair, eye)
        _, _, (h_real, e_real, h_gen, e_gen) = sampler.disc(x, hair, eye)
    rows = torch.arange(len(hair))
    hair_p = torch.softmax(torch.cat([h_real, h_gen], 1), 1)[rows, hair]
    eye_p = torch.softmax(torch.cat([e_real, e_gen], 1), 1)[rows, eye]
    best = (hair_p * eye_p).view(len(HAIR), n).argmax(1)
    want = sampler.render(z[torch.arange(len(HAIR)), best], HAIR, EYE)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # batched and single convolutions may round apart
    assert len(set(best.tolist())) > 1  # not always the first draw


def test_candidates_need_the_classifier_head_and_a_positive_count(short_run):
    plain = copy.deepcopy(short_run[1])
    plain["config"]["model"].update(aux_classifier=False, aux_twin=False)
    with pytest.raises(UserError, match="needs a run with model.aux_classifier"):
        TagSampler(plain, CPU, "run/best.pt", candidates=2)
    TagSampler(plain, CPU, candidates=1)  # one candidate needs no discriminator
    with pytest.raises(UserError, match="--candidates must be at least 1, got 0"):
        TagSampler(short_run[1], CPU, candidates=0)


def test_generate_cli_with_candidates(short_run, tmp_path, capsys):
    tags = tmp_path / "testing_text.txt"
    tags.write_text("1,blue hair red eyes\n2,green hair green eyes\n")
    for n, extra in ((1, []), (4, []), (4, ["--spread", "3"]), (4, ["--accept", "0.01"])):
        out = tmp_path / (f"c{n}" + (f"_{extra[0][2:]}" if extra else ""))
        argv = [str(tags), "--out", str(out), "--checkpoint", str(short_run[0]), "--device", "cpu"]
        assert generate.main([*argv, "--candidates", str(n), *extra]) == 0
    names = sorted(p.name for p in (tmp_path / "c4").iterdir())
    assert names == sorted(generate.output_names(generate.read_testing_text(str(tags))))
    assert any((tmp_path / "c1" / m).read_bytes() != (tmp_path / "c4" / m).read_bytes() for m in names)
    for kept_apart in ("c4_spread", "c4_accept"):
        assert sorted(p.name for p in (tmp_path / kept_apart).iterdir()) == names
        assert any((tmp_path / "c4" / m).read_bytes() != (tmp_path / kept_apart / m).read_bytes() for m in names)
    argv = [str(tags), "--out", str(tmp_path / "bad"), "--checkpoint", str(short_run[0]), "--candidates", "0"]
    assert generate.main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("--candidates must be at least 1, got 0")
    assert not (tmp_path / "bad").exists()
    grid = tmp_path / "grid.png"
    assert generate.main(["--colour-grid", str(grid), "--checkpoint", str(short_run[0]), "--candidates", "2"]) == 2
    assert "--accept and --picker pick among draws for a testing file" in capsys.readouterr().err
    for extra in (["--spread", "2"], ["--accept", "0.5"], ["--picker", "both"]):
        assert generate.main(["--colour-grid", str(grid), "--checkpoint", str(short_run[0]), *extra]) == 2
        assert "--candidates, --spread, --accept and --picker pick among draws" in capsys.readouterr().err
    assert not grid.exists()


def test_default_drawing_is_among_8_for_a_classifier_run_and_plain_otherwise(short_run, tmp_path):
    plain = copy.deepcopy(short_run[1])
    plain["config"]["model"].update(aux_classifier=False, aux_twin=False)
    assert generate.drawing(short_run[1], None, 1, None) == (8, 0.5)
    assert generate.drawing(short_run[1], None, 1, 0.3) == (8, 0.3)
    assert generate.drawing(short_run[1], None, 2, None) == (1, 0.0)  # --spread alone: TagSampler refuses it
    assert generate.drawing(short_run[1], 4, 1, None) == (4, 0.0)
    assert generate.drawing(plain, None, 1, None) == (1, 0.0)
    tags = tmp_path / "testing_text.txt"
    tags.write_text("1,blue hair red eyes\n2,green hair green eyes\n")
    for name, extra in (
        ("default", []),
        ("chosen", ["--candidates", "8", "--accept", "0.5"]),
        ("plain", ["--candidates", "1"]),
    ):
        argv = [str(tags), "--out", str(tmp_path / name), "--checkpoint", str(short_run[0]), "--device", "cpu"]
        assert generate.main([*argv, *extra]) == 0
    names = generate.output_names(generate.read_testing_text(str(tags)))
    read = {d: [(tmp_path / d / m).read_bytes() for m in names] for d in ("default", "chosen", "plain")}
    assert read["default"] == read["chosen"] != read["plain"]


def test_spread_pick_by_hand():
    log_p = torch.log(torch.tensor([[0.1, 0.6, 0.9], [0.8, 0.2, 0.7], [0.3, 0.4, 0.1]]))
    feats = torch.tensor(
        [
            [[9.0, 9.0], [0.0, 0.0], [5.0, 5.0]],  # the first image: its most probable draw, 2
            [[5.1, 5.0], [-9.0, -9.0], [0.0, 0.0]],  # its two most probable: 0 and 2; 2 is farther from (5, 5)
            [[-1.0, 0.0], [4.0, 4.0], [-5.0, -5.0]],  # 1 and 0; 1's nearest chosen image is farther; 2 not kept
        ]
    )
    assert generate.spread_pick(log_p, feats, 2).tolist() == [2, 2, 1]
    assert generate.spread_pick(log_p, feats, 1).tolist() == [2, 0, 1]  # keep 1: the most probable of each
    # Later images keep away from all earlier ones: the nearest chosen image counts, not the mean distance.
    log_p = torch.tensor([[0.0, -1.0, -2.0]] * 3)
    feats = torch.tensor([[[0.0], [5.0], [9.0]], [[0.0], [5.0], [10.0]], [[1.0], [6.0], [10.0]]])
    assert generate.spread_pick(log_p, feats, 3).tolist() == [0, 2, 1]


def test_accept_keeps_apart_among_the_likely_draws_by_hand():
    log_p = torch.log(torch.tensor([[0.1, 0.6, 0.9], [0.8, 0.2, 0.7], [0.3, 0.4, 0.05]]))
    feats = torch.tensor(
        [
            [[9.0, 9.0], [0.0, 0.0], [5.0, 5.0]],  # the first image: its most probable draw, 2
            [[5.1, 5.0], [-9.0, -9.0], [0.0, 0.0]],  # at 0.2 all three are likely; 1 is the farthest from (5, 5)
            [[-1.0, 0.0], [4.0, 4.0], [20.0, -20.0]],  # 0 and 1 are likely; 0 is the farther; 2 is 1/8 of 1
        ]
    )
    assert generate.spread_pick(log_p, feats, 1, accept=0.2).tolist() == [2, 1, 0]
    assert generate.spread_pick(log_p, feats, 1, accept=1.0).tolist() == [2, 0, 1]  # only the most probable
    assert generate.spread_pick(log_p, feats, 1, accept=0.1).tolist() == [2, 1, 2]  # every draw: the farthest
    # Relative to each image's best draw: the same choice when every probability is 100 times smaller.
    assert generate.spread_pick(log_p - math.log(100), feats, 1, accept=0.2).tolist() == [2, 1, 0]


@pytest.mark.parametrize("candidates, spread, accept", [(4, 1, 1.5), (4, 1, -0.5), (1, 1, 0.5), (4, 2, 0.5)])
def test_accept_is_a_ratio_with_candidates_and_no_spread(short_run, candidates, spread, accept):
    with pytest.raises(UserError, match=rf"--accept must be in \(0, 1\], .* got {accept}"):
        TagSampler(short_run[1], CPU, candidates=candidates, spread=spread, accept=accept)


def test_spread_picks_far_draws_among_the_most_probable(short_run):
    best, n = TagSampler(short_run[1], CPU, candidates=4), 4
    line = slice(0, 5)
    got = TagSampler(short_run[1], CPU, candidates=4, spread=3).sample(HAIR[line], EYE[line], _seed(7))
    z = torch.randn(5, n, best.gen.nz, generator=_seed(7))
    hair, eye = torch.tensor(HAIR[line]).repeat_interleave(n), torch.tensor(EYE[line]).repeat_interleave(n)
    with torch.no_grad():
        log_p, feats = best.judge(best.gen(z.flatten(0, 1), hair, eye), hair, eye)
    pick = generate.spread_pick(log_p.view(5, n), feats.view(5, n, -1), 3)
    want = best.render(z[torch.arange(5), pick], HAIR[line], EYE[line])
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert not np.array_equal(got, best.sample(HAIR[line], EYE[line], _seed(7)))


@pytest.mark.parametrize("candidates, spread", [(1, 2), (4, 0), (4, 5)])
def test_spread_is_between_one_and_the_candidates(short_run, candidates, spread):
    with pytest.raises(UserError, match=rf"--spread must be between 1 and --candidates \({candidates}\), got {spread}"):
        TagSampler(short_run[1], CPU, candidates=candidates, spread=spread)
