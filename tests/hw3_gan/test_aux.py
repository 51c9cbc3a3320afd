"""The auxiliary tag classifier (configs/cpu60_ac.yaml): trained on real images only, and a tiny run learns."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from common.checkpoint import load_checkpoint
from common.config import load_config
from common.errors import UserError
from hw3_gan import train
from hw3_gan.config import Config, TrainConfig
from hw3_gan.generate import TagSampler
from hw3_gan.model import Discriminator, ModelConfig
from hw3_gan.sample_data import write_sample_data

from .conftest import CONFIGS, tiny_train_args
from .test_train_generate import _judge


def _disc() -> Discriminator:
    torch.manual_seed(0)
    return Discriminator(ModelConfig(image_size=16, ndf=8, aux_classifier=True), 12, 11)


def test_the_discriminator_loss_adds_the_classifier_loss_on_real_images_only():
    disc, cfg = _disc(), TrainConfig(penalty="none", wrong_weight=0.0)
    real, fake = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)  # minibatch-std groups of 4 never mix them
    hair, eye = torch.arange(8), torch.arange(8) + 3
    torch.manual_seed(1)
    with_aux, stats = train.d_loss(disc, real, fake, hair, eye, cfg, False, 12, 11)
    torch.manual_seed(1)
    without, _ = train.d_loss(disc, real, fake, hair, eye, dataclasses.replace(cfg, aux_weight=0.0), False, 12, 11)
    disc.eval()  # the hand computation: cross-entropy of the real images' logits under their own tags
    _, _, (h, e) = disc(real, hair, eye)
    expected = F.cross_entropy(h, hair) + F.cross_entropy(e, eye)
    assert abs(stats["d_aux"] - expected.item()) < 1e-5
    assert abs((with_aux - without).item() - expected.item()) < 1e-5


def test_without_the_switch_there_is_no_classifier():
    disc = Discriminator(ModelConfig(image_size=16, ndf=8), 12, 11)
    assert disc.classifier is None
    assert (
        disc(torch.randn(2, 3, 16, 16), torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))[2] is None
    )


@pytest.mark.parametrize("heads", [[], ["model.aux_twin=true", "train.twin_loss=adc"]], ids=["ac", "adc"])
def test_tiny_gan_with_the_auxiliary_classifier_learns_colours(tmp_path, heads):
    folder = write_sample_data(tmp_path / "data", n=320)
    run = tmp_path / "run"
    args = tiny_train_args(run, folder, "model.image_size=16", "model.aux_classifier=true", "train.max_steps=150")
    assert train.main([*args, *heads]) == 0
    state = load_checkpoint(run / "best.pt", "hw3_gan")
    assert "classifier.weight" in state["models"]["D"]
    hair_acc, eye_acc = _judge(TagSampler(state, torch.device("cpu")).gen)
    assert hair_acc >= 0.9 and eye_acc >= 0.8, (hair_acc, eye_acc)


def test_ac_config_is_cpu60_with_only_the_classifier_added():
    base, ac = (dataclasses.asdict(load_config(Config, CONFIGS / n, [])) for n in ("cpu60.yaml", "cpu60_ac.yaml"))
    assert ac["model"] == {**base["model"], "aux_classifier": True}
    assert ac["train"] == {**base["train"], "aux_weight": 0.25}
    assert {k: v for k, v in ac.items() if k not in ("model", "train")} == {
        k: v for k, v in base.items() if k not in ("model", "train")
    }


def test_adc_config_is_cpu60_ac_with_only_the_twin_and_its_loss_and_share_added():
    ac, adc = (dataclasses.asdict(load_config(Config, CONFIGS / n, [])) for n in ("cpu60_ac.yaml", "cpu60_adc.yaml"))
    assert adc["model"] == {**ac["model"], "aux_twin": True}
    assert adc["train"] == {**ac["train"], "twin_loss": "adc", "twin_share": 0.75}
    assert {k: v for k, v in adc.items() if k not in ("model", "train")} == {
        k: v for k, v in ac.items() if k not in ("model", "train")
    }


def test_the_decay_config_is_cpu60_adc_with_only_the_measured_switches():
    names = ("cpu60_adc.yaml", "cpu60_adc_decay.yaml")
    adc, decay = (dataclasses.asdict(load_config(Config, CONFIGS / n, [])) for n in names)
    switches = {"reuse_fakes": True, "penalty_every": 16, "aux_weight": 0.5, "twin_share": 0.9375}
    assert decay["train"] == {**adc["train"], **switches, "lr_schedule": "linear", "lr_hold": 0.5}
    assert {k: v for k, v in decay.items() if k != "train"} == {k: v for k, v in adc.items() if k != "train"}


def test_the_retag_config_is_the_decay_config_on_cleaned_tags_in_54_minutes():
    names = ("cpu60_adc_decay.yaml", "cpu60_adc_retag.yaml")
    decay, cleaned = (dataclasses.asdict(load_config(Config, CONFIGS / n, [])) for n in names)
    assert cleaned["data"] == {**decay["data"], "retag": 0.3}
    assert cleaned["train"] == {**decay["train"], "max_minutes": 54}
    assert {k: v for k, v in cleaned.items() if k not in ("data", "train")} == {
        k: v for k, v in decay.items() if k not in ("data", "train")
    }


def test_the_gpu_config_trains_as_the_best_cpu_hour_at_its_own_widths_and_length():
    names = ("cpu60_adc_retag.yaml", "default.yaml")
    best, gpu = (dataclasses.asdict(load_config(Config, CONFIGS / n, [])) for n in names)
    assert gpu["model"] == {**best["model"], "ngf": 64, "ndf": 64}
    assert gpu["data"] == best["data"] and gpu["data"]["retag"] == 0.3
    budget = {"epochs": 150, "max_minutes": 0.0, "save_every_steps": 1000, "channels_last": False}
    assert gpu["train"] == {**best["train"], **budget}
    assert (gpu["device"], best["device"]) == ("auto", "cpu")


def test_a_confident_tag_adds_no_generator_gradient():
    # hair: the head gives the asked colour 0.8 (confident at 0.5) and 0.2 (not); eye: 0.25 each.
    hair_logits = torch.log(torch.tensor([[0.8, 0.2], [0.8, 0.2]])).requires_grad_(True)
    eye_logits = torch.zeros(2, 4, requires_grad=True)
    hair, eye = torch.tensor([0, 1]), torch.tensor([0, 3])
    loss = train.tag_loss(hair_logits, eye_logits, hair, eye, confident=0.5)
    # hand computed: hair max(-log 0.8, -log 0.5) and -log 0.2, eye -log 0.25 twice, each tag's mean
    expected = (math.log(2) - math.log(0.2)) / 2 - math.log(0.25)
    assert abs(loss.item() - expected) < 1e-6
    loss.backward()
    assert hair_logits.grad[0].abs().max() == 0 and hair_logits.grad[1].abs().max() > 0
    assert eye_logits.grad.abs().min() > 0
    plain = train.tag_loss(hair_logits, eye_logits, hair, eye)
    assert abs(plain.item() - (-math.log(0.8) - math.log(0.2)) / 2 + math.log(0.25)) < 1e-6


def test_without_aux_features_the_classifier_loss_trains_the_head_not_the_shared_features():
    real, fake = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    hair, eye = torch.arange(8), torch.arange(8) + 3
    grads = {}
    for shared in (True, False):
        disc = _disc()
        cfg = TrainConfig(penalty="none", wrong_weight=0.0, aux_features=shared)
        torch.manual_seed(1)
        with_aux, _ = train.d_loss(disc, real, fake, hair, eye, cfg, False, 12, 11)
        torch.manual_seed(1)
        without, _ = train.d_loss(disc, real, fake, hair, eye, dataclasses.replace(cfg, aux_weight=0.0), False, 12, 11)
        (with_aux - without).backward()  # the classifier term alone
        trunk, head = disc.features[0].weight.grad, disc.classifier.weight.grad
        grads[shared] = (trunk.abs().max().item(), head.abs().max().item())
    assert grads[True][0] > 0 and grads[False][0] == 0  # the trunk: shaped by the head only when shared
    assert grads[False][1] > 0 and abs(grads[False][1] - grads[True][1]) < 1e-6  # the head learns the same either way
    # the generator's side is unchanged: its classifier loss still reaches the images through the trunk
    images = torch.randn(4, 3, 16, 16, requires_grad=True)
    _, _, logits = _disc()(images, hair[:4], eye[:4])
    train.tag_loss(*logits, hair[:4], eye[:4]).backward()
    assert images.grad.abs().max() > 0


def _twin_disc() -> Discriminator:
    torch.manual_seed(0)
    return Discriminator(ModelConfig(image_size=16, ndf=8, aux_classifier=True, aux_twin=True), 12, 11)


def test_the_twin_classifier_learns_the_generated_images_asked_tags():
    disc, cfg = _twin_disc(), TrainConfig(penalty="none", wrong_weight=0.0, aux_weight=0.5)
    real, fake = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    hair, eye = torch.arange(8), torch.arange(8) + 3
    loss, stats = train.d_loss(disc, real, fake, hair, eye, cfg, False, 12, 11)
    disc.eval()  # by hand: the twin's logits for the fakes, the classifier's for the reals
    _, _, (h, e, _, _) = disc(real, hair, eye)
    _, _, (_, _, th, te) = disc(fake, hair, eye)
    aux, twin = F.cross_entropy(h, hair) + F.cross_entropy(e, eye), F.cross_entropy(th, hair) + F.cross_entropy(te, eye)
    assert abs(stats["d_aux"] - aux.item()) < 1e-5 and abs(stats["d_twin"] - twin.item()) < 1e-5
    without, _ = train.d_loss(disc, real, fake, hair, eye, dataclasses.replace(cfg, aux_weight=0.0), False, 12, 11)
    assert abs((loss - without).item() - 0.5 * (aux + twin).item()) < 1e-4  # both heads, at the weight


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_the_generator_is_pushed_away_from_the_twin_and_towards_the_classifier(share):
    disc, gen_cfg = _twin_disc(), TrainConfig(aux_weight=0.5, twin_share=share, mode_seeking=0.0)
    torch.manual_seed(2)
    z, hair, eye = torch.randn(4, 8), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    images = torch.randn(4, 3, 16, 16)
    gen = lambda z, hair, eye: images  # noqa: E731  (a generator whose images are known)
    loss, stats = train.g_loss(gen, disc, z, hair, eye, gen_cfg)
    _, _, (h, e, th, te) = disc(images, hair, eye)
    aux, twin = F.cross_entropy(h, hair) + F.cross_entropy(e, eye), F.cross_entropy(th, hair) + F.cross_entropy(te, eye)
    assert abs(stats["g_aux"] - aux.item()) < 1e-5 and abs(stats["g_twin"] - twin.item()) < 1e-5
    plain, _ = train.g_loss(gen, disc, z, hair, eye, dataclasses.replace(gen_cfg, aux_weight=0.0))
    assert abs((loss - plain).item() - 0.5 * (aux - share * twin).item()) < 1e-4


def test_a_twin_needs_the_classifier():
    with pytest.raises(ValueError, match="aux_twin needs model.aux_classifier"):
        Discriminator(ModelConfig(image_size=16, ndf=8, aux_twin=True), 12, 11)


def test_adc_names_real_and_generated_tags_in_one_softmax():
    disc, cfg = _twin_disc(), TrainConfig(penalty="none", wrong_weight=0.0, aux_weight=0.5, twin_loss="adc")
    real, fake = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    hair, eye = torch.arange(8), torch.arange(8) + 3
    loss, stats = train.d_loss(disc, real, fake, hair, eye, cfg, False, 12, 11)
    disc.eval()  # by hand: 24 hair and 22 eye classes, the generated ones after the real ones
    for images, shift, key in ((real, 0, "d_aux"), (fake, 1, "d_twin")):
        _, _, (h, e, th, te) = disc(images, hair, eye)
        want = F.cross_entropy(torch.cat([h, th], 1), hair + 12 * shift)
        want = want + F.cross_entropy(torch.cat([e, te], 1), eye + 11 * shift)
        assert abs(stats[key] - want.item()) < 1e-5
    without, _ = train.d_loss(disc, real, fake, hair, eye, dataclasses.replace(cfg, aux_weight=0.0), False, 12, 11)
    assert abs((loss - without).item() - 0.5 * (stats["d_aux"] + stats["d_twin"])) < 1e-4
    # the generator: the two cross-entropies' difference is the "generated k" logit minus the "real k" one
    images, z = torch.randn(4, 3, 16, 16), torch.randn(4, 8)
    gen = lambda z, hair, eye: images  # noqa: E731
    gen_cfg = TrainConfig(aux_weight=0.5, mode_seeking=0.0, twin_loss="adc")
    loss, stats = train.g_loss(gen, disc, z, hair[:4], eye[:4], gen_cfg)
    plain, _ = train.g_loss(gen, disc, z, hair[:4], eye[:4], dataclasses.replace(gen_cfg, aux_weight=0.0))
    _, _, (h, e, th, te) = disc(images, hair[:4], eye[:4])
    rows = torch.arange(4)
    gap = (th[rows, hair[:4]] - h[rows, hair[:4]]).mean() + (te[rows, eye[:4]] - e[rows, eye[:4]]).mean()
    assert abs((loss - plain).item() - 0.5 * gap.item()) < 1e-4
    assert abs(stats["g_aux"] - stats["g_twin"] - gap.item()) < 1e-4
    part, _ = train.g_loss(gen, disc, z, hair[:4], eye[:4], dataclasses.replace(gen_cfg, twin_share=0.75))
    assert abs((part - plain).item() - 0.5 * (stats["g_aux"] - 0.75 * stats["g_twin"])) < 1e-4  # cpu60_adc's share


def test_adc_needs_the_twin_head():
    cfg = load_config(Config, CONFIGS / "cpu60_ac.yaml", ["train.twin_loss=adc"])
    with pytest.raises(UserError, match="train.twin_loss adc needs model.aux_twin"):
        train.build(cfg, torch.device("cpu"))
