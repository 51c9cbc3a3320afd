"""DiffAugment, class-balanced batches and the hinge loss: the training switches of configs/cpu60.yaml."""

import numpy as np
import pytest
import torch

from common.config import ConfigError, load_config
from common.errors import UserError
from hw3_gan import data, train
from hw3_gan.augment import cutout, diff_augment, translation
from hw3_gan.config import Config, TrainConfig

from .conftest import CONFIGS


def test_translation_shifts_whole_images_within_an_eighth():
    torch.manual_seed(0)
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 3, 1, 1) + 1  # no zeros before the shift
    y = translation(torch.nn.functional.interpolate(x, size=16))
    assert y.shape == (64, 3, 16, 16)
    shifted = 0
    for img in y[:, 0]:
        rows, cols = (img.abs().sum(d) > 0 for d in (1, 0))
        # 16 * 0.125 = 2 pixels at most: at most 2 zero rows and 2 zero columns, all at one border
        assert rows.sum() >= 14 and cols.sum() >= 14
        shifted += int(rows.sum() < 16 or cols.sum() < 16)
    assert shifted > 32  # most of 64 images moved


def test_cutout_zeroes_one_square_per_image_and_keeps_gradients():
    torch.manual_seed(0)
    x = torch.ones(32, 3, 16, 16, requires_grad=True)
    y = cutout(x)
    zero = (y[:, 0] == 0).flatten(1).sum(1)
    assert (zero > 0).all() and (zero <= 8 * 8).all()  # half the side: an 8x8 square, clipped at borders
    assert (y[:, 0] == 0).equal(y[:, 2] == 0)  # the same square in every channel
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float())
    assert diff_augment(x, []) is x


def test_colour_augmentation_is_refused_because_tags_are_colours():
    with pytest.raises(ConfigError, match="train.augment.*must be one of translation, cutout"):
        load_config(Config, CONFIGS / "cpu60.yaml", ["train.augment=[translation,color]"])
    cfg = load_config(Config, CONFIGS / "cpu60.yaml", [])
    assert cfg.train.augment == ["translation", "cutout"] and cfg.train.balance == 0.5
    assert cfg.train.lr_d > cfg.train.lr_g and cfg.train.max_minutes == 60


class Spy(torch.nn.Module):
    """A discriminator that records its inputs and scores each image by its mean."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, hair, eye, wrong=None, detach_head=False):
        self.seen.append(x.detach())
        s = x.mean((1, 2, 3))
        return s, (s if wrong is not None else None), None  # no auxiliary classifier


def test_both_players_see_augmented_real_and_fake_images():
    torch.manual_seed(0)
    cfg = TrainConfig(augment=["cutout"], penalty="none", mode_seeking=0.0)
    ones, tags = torch.ones(8, 3, 16, 16), torch.zeros(8, dtype=torch.long)
    d = Spy()
    train.d_loss(d, ones, ones, tags, tags, cfg, False, 12, 11)
    train.g_loss(lambda z, h, e: torch.ones(len(z), 3, 16, 16), d, torch.randn(8, 4), tags, tags, cfg)
    d_step, g_step = d.seen
    assert len(d_step) == 16 and len(g_step) == 8
    for batch in (d_step, g_step):  # every real and every generated image has its cut-out square
        assert ((batch == 0).flatten(1).sum(1) > 0).all()


def test_hinge_losses_match_hand_values():
    real, fake = torch.full((4, 3, 8, 8), 0.5), torch.full((4, 3, 8, 8), -0.25)
    tags = torch.zeros(4, dtype=torch.long)
    cfg = TrainConfig(loss="hinge", penalty="none", wrong_weight=0.5, mode_seeking=0.0)
    loss, _ = train.d_loss(Spy(), real, fake, tags, tags, cfg, False, 12, 11)
    # relu(1 - 0.5) + relu(1 - 0.25) + 0.5 * relu(1 + 0.5): the spy scores real images the same under wrong tags
    assert loss.item() == pytest.approx(0.5 + 0.75 + 0.75)
    g, _ = train.g_loss(lambda z, h, e: torch.full((len(z), 3, 8, 8), 0.3), Spy(), torch.randn(4, 2), tags, tags, cfg)
    assert g.item() == pytest.approx(-0.3)
    ns, _ = train.d_loss(Spy(), real, fake, tags, tags, TrainConfig(penalty="none"), False, 12, 11)
    assert ns.item() == pytest.approx(np.log1p(np.exp(-0.5)) + np.log1p(np.exp(-0.25)) + 0.5 * np.log1p(np.exp(0.5)))


def _faces(common: int, rare: int) -> data.FaceData:
    hair = np.array([0] * common + [1] * rare)
    n = len(hair)
    return data.FaceData(np.zeros((n, 8, 8, 3), np.uint8), hair, np.zeros(n, np.int64), [str(i) for i in range(n)])


def test_balanced_batches_show_rare_pairs_as_the_square_root_of_their_count():
    faces = _faces(common=360, rare=40)
    draws = {0.0: [], 0.5: []}
    for balance in draws:
        batches = data.Batches(faces, 40, seed=0, rank=0, world=1, size=8, flip=False, balance=balance)
        for epoch in range(20):
            draws[balance] += [h for _, h, _ in batches.epoch(epoch)]
    plain, balanced = (torch.cat(v).float().mean().item() for v in draws.values())
    assert plain == pytest.approx(0.1)  # without balance every image once per epoch: 40 of 400
    # inverse-sqrt weights: the rare pair's share is sqrt(40) / (sqrt(40) + sqrt(360)) = 0.25
    assert balanced == pytest.approx(0.25, abs=0.02)


def test_tag_groups_keep_one_pair_per_run_and_the_balance():
    faces = _faces(common=360, rare=40)
    faces.eye = np.arange(400) % 3  # six pairs: 120 / 120 / 120 common, 14 / 13 / 13 rare
    faces.images[:, 0, 0, 0] = np.arange(400) % 200  # which image it is, up to the pair
    batches = data.Batches(faces, 40, seed=0, rank=0, world=1, size=8, flip=False, balance=0.5, groups=4)
    hairs, mixed_groups, repeats, groups = [], 0, 0, 0
    for epoch in range(20):
        for x, hair, eye in batches.epoch(epoch):
            pairs = (hair * 3 + eye).view(10, 4)
            mixed_groups += int((pairs != pairs[:, :1]).any(1).sum())
            marks = x[:, 0, 0, 0].view(10, 4)
            repeats += sum(len(set(g.tolist())) < 4 for g in marks)
            groups += 10
            hairs.append(hair)
    assert mixed_groups == 0
    # the others of a group are drawn from its pair, not copies of the first: about 0.14 repeat by chance
    assert repeats < 0.3 * groups
    assert torch.cat(hairs).float().mean().item() == pytest.approx(0.25, abs=0.03)  # the balance is kept
    with pytest.raises(UserError, match="batch_size 42 is not a multiple of train.tag_groups 4"):
        data.Batches(faces, 42, seed=0, rank=0, world=1, size=8, flip=False, groups=4)
    cfg = load_config(Config, CONFIGS / "cpu60_ac.yaml", ["train.tag_groups=8"])  # D's groups stay at 4
    with pytest.raises(UserError, match="train.tag_groups 8 must equal model.mbstd_group 4"):
        train.build(cfg, torch.device("cpu"))


def test_channels_last_changes_the_memory_order_not_the_step():
    """train.channels_last: NHWC weights and batches, and the same training step as NCHW up to rounding."""
    after = {}
    for channels_last in (False, True):
        cfg = load_config(Config, CONFIGS / "cpu60_adc.yaml", ["model.ngf=8", "model.ndf=8"])
        cfg.train.channels_last = channels_last
        torch.manual_seed(0)
        nets = train.build(cfg, torch.device("cpu"))
        before = [p.detach().clone() for p in nets.gen.parameters()]
        x = (torch.rand(8, 3, 64, 64) * 2 - 1).contiguous(memory_format=train.memory_format(cfg.train))
        hair, eye = torch.arange(8) % 12, torch.arange(8) % 11
        stats = train.train_step(nets, nets.gen, nets.disc, x, hair, eye, cfg, step=0)  # step 0 takes R1 too
        conv = nets.disc.features[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
        after[channels_last] = (stats, [p.detach().clone() for p in nets.gen.parameters()])
        assert not all(torch.equal(a, b) for a, b in zip(before, after[channels_last][1]))  # the step moved G
    for key, value in after[False][0].items():
        assert after[True][0][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    for a, b in zip(after[False][1], after[True][1]):
        assert torch.allclose(a, b, atol=1e-6)


def test_translation_keeps_the_memory_order():
    x = torch.rand(4, 3, 16, 16)
    assert translation(x).is_contiguous()
    assert translation(x.contiguous(memory_format=torch.channels_last)).is_contiguous(memory_format=torch.channels_last)


class Counting(torch.nn.Module):
    """A generator wrapper that records the tags of every forward pass."""

    def __init__(self, gen):
        super().__init__()
        self.gen, self.calls = gen, []

    def forward(self, z, hair, eye):
        self.calls.append((hair.clone(), eye.clone()))
        return self.gen(z, hair, eye)


@pytest.mark.parametrize("reuse", [False, True])
def test_reused_fakes_take_one_generator_pass_with_the_paired_tags(reuse):
    cfg = load_config(Config, CONFIGS / "cpu60_adc.yaml", ["model.ngf=8", "model.ndf=8", f"train.reuse_fakes={reuse}"])
    torch.manual_seed(0)
    nets = train.build(cfg, torch.device("cpu"))
    before = [[p.detach().clone() for p in net.parameters()] for net in (nets.gen, nets.disc)]
    gen = Counting(nets.gen)
    x = (torch.rand(8, 3, 64, 64) * 2 - 1).contiguous(memory_format=train.memory_format(cfg.train))
    hair, eye = torch.arange(8) % 12, torch.arange(8) % 11
    stats = train.train_step(nets, gen, nets.disc, x, hair, eye, cfg, step=0)
    assert all(np.isfinite(v) for v in stats.values())
    for net, old in zip((nets.gen, nets.disc), before):
        assert not all(torch.equal(a, b) for a, b in zip(old, net.parameters()))  # both players moved
    paired = (hair[:4].repeat(2), eye[:4].repeat(2))  # mode seeking's halves: same tags, other noise
    if reuse:
        assert len(gen.calls) == 1
        assert all(torch.equal(a, b) for a, b in zip(gen.calls[0], paired))
    else:
        assert len(gen.calls) == 2 and torch.equal(gen.calls[0][0], hair)


def test_g_loss_on_handed_fakes_equals_drawing_them():
    run = load_config(Config, CONFIGS / "cpu60_adc.yaml", ["model.ngf=8", "model.ndf=8"])
    cfg = run.train
    torch.manual_seed(0)
    nets = train.build(run, torch.device("cpu"))
    z, hair, eye = torch.randn(7, 100), torch.arange(7) % 12, torch.arange(7) % 11
    inputs = train.g_inputs(z, hair, eye, cfg)
    assert len(inputs[0]) == 6 and torch.equal(inputs[1], hair[:3].repeat(2))
    assert all(torch.equal(a, b) for a, b in zip(train.g_inputs(*inputs, cfg), inputs))  # idempotent
    torch.manual_seed(1)
    drawn, _ = train.g_loss(nets.gen, nets.disc, z, hair, eye, cfg)
    fake = nets.gen(*inputs)
    torch.manual_seed(1)
    handed, _ = train.g_loss(nets.gen, nets.disc, z, hair, eye, cfg, fake)
    assert handed.item() == pytest.approx(drawn.item(), rel=1e-6)


def test_reused_fakes_save_exactly_the_d_steps_generator_forward():
    from benchmarks.hw3_flops import step_flops

    cfgs = [
        load_config(Config, CONFIGS / "cpu60_adc.yaml", ["model.ngf=8", "model.ndf=8", f"train.reuse_fakes={r}"])
        for r in (False, True)
    ]
    two, one = (step_flops(cfg, 4) for cfg in cfgs)
    assert sum(two.values()) - sum(one.values()) == pytest.approx(two["G forward (D step)"])
    assert two["G forward (D step)"] > 0 and "G forward (D step)" not in one


@pytest.mark.parametrize("reuse, passes", [(False, 2), (True, 1)])
def test_benchmark_step_runs_the_generator_as_training_does(monkeypatch, reuse, passes):
    import benchmarks.hw3_gan as bench

    cfg = load_config(Config, CONFIGS / "cpu60_adc.yaml", ["model.ngf=4", "model.ndf=4", f"train.reuse_fakes={reuse}"])
    calls = []
    forward = bench.Generator.forward
    monkeypatch.setattr(bench.Generator, "forward", lambda self, *a: calls.append(1) or forward(self, *a))
    assert bench.step_time(cfg.model, cfg.train, 2) > 0
    assert len(calls) == 3 * passes  # a warm-up step and two timed ones
