import numpy as np
import pytest
import torch
from PIL import Image

from common.checkpoint import load_checkpoint
from common.config import config_from_dict
from hw3_gan import generate, train
from hw3_gan.config import Config, TrainConfig
from hw3_gan.data import to_uint8
from hw3_gan.generate import TagSampler
from hw3_gan.model import Discriminator, Generator, ModelConfig
from hw3_gan.sample_data import DEMO_EYES, DEMO_HAIR, judge_colours, write_sample_data
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS

from .conftest import tiny_train_args


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny GAN (16x16, 150 steps) trained on the synthetic two-colour faces."""
    root = tmp_path_factory.mktemp("gan")
    folder = write_sample_data(root / "data", n=320)
    run = root / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLDS_CACHE", str(root / "cache"))
    try:
        assert train.main(tiny_train_args(run, folder, "model.image_size=16", "train.max_steps=150")) == 0
    finally:
        mp.undo()
    return root, folder, run


def _judge(gen: torch.nn.Module) -> tuple[float, float]:
    hair = [HAIR_COLOURS.index(h) for h in DEMO_HAIR for _ in DEMO_EYES for _ in range(6)]
    eye = [EYE_COLOURS.index(e) for _ in DEMO_HAIR for e in DEMO_EYES for _ in range(6)]
    z = torch.randn(len(hair), gen.nz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = to_uint8(gen.eval()(z, torch.tensor(hair), torch.tensor(eye)))
    jh, je = judge_colours(images, DEMO_HAIR, DEMO_EYES)
    return float((jh == np.array(hair)).mean()), float((je == np.array(eye)).mean())


def test_tiny_gan_puts_asked_colours_in_the_right_places(trained):
    _, _, run = trained
    state = load_checkpoint(run / "best.pt", "hw3_gan")
    assert {"G", "D", "G_ema"} <= set(state["models"]) and {"G", "D"} <= set(state["optimizers"])
    assert state["step"] == 150 and "torch" in state["rng"]
    sampler = TagSampler(state, torch.device("cpu"))
    hair_acc, eye_acc = _judge(sampler.gen)
    assert hair_acc >= 0.9 and eye_acc >= 0.8, (hair_acc, eye_acc)
    # The same judge calls an untrained generator near chance (1/3), so the check can fail.
    cfg = config_from_dict(Config, state["config"])
    untrained = Generator(cfg.model, len(HAIR_COLOURS), len(EYE_COLOURS))
    assert min(_judge(untrained)) < 0.7
    assert sorted(p.name for p in (run / "grids").iterdir())[-1] == "epoch_015.png"
    _assert_labelled_rows(run / "grids" / "epoch_015.png", rows=len(DEMO_HAIR) * len(DEMO_EYES), cols=6, size=16)


def test_generate_five_64px_jpegs_per_line_same_seed_same_images(trained, tmp_path):
    root, _, run = trained
    text = root / "data" / "sample_testing_text.txt"
    args = [str(text), "--checkpoint", str(run / "best.pt"), "--device", "cpu"]
    assert generate.main([*args, "--out", str(tmp_path / "a"), "--seed", "3"]) == 0
    assert generate.main([*args, "--out", str(tmp_path / "b"), "--seed", "3"]) == 0
    assert generate.main([*args, "--out", str(tmp_path / "c"), "--seed", "4"]) == 0
    files = sorted(p.name for p in (tmp_path / "a").glob("sample_*.jpg"))
    assert files == sorted(f"sample_{i}_{k}.jpg" for i in range(1, 6) for k in range(1, 6))
    assert {p.name for p in (tmp_path / "a").iterdir()} == set(files) | {"grid.png"}
    for name in files:
        with Image.open(tmp_path / "a" / name) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert any((tmp_path / "a" / n).read_bytes() != (tmp_path / "c" / n).read_bytes() for n in files)
    _assert_labelled_rows(tmp_path / "a" / "grid.png", rows=5, cols=5, size=64)


def test_generate_warns_of_tags_no_training_image_has(trained, tmp_path, capsys):
    # The sample faces have blue, red or blonde hair and green, blue or red eyes, in every pair.
    _, _, run = trained
    text = tmp_path / "tags.txt"
    text.write_text("1,green hair\n2,blue hair gray eyes\n3,red eyes blonde hair\n4,red eyes\n5,blue hair\n")
    args = [str(text), "--checkpoint", str(run / "best.pt"), "--device", "cpu", "--out", str(tmp_path / "out")]
    assert generate.main(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert warnings == [
        "warning: line 1: the training data has no 'green hair' image",
        "warning: line 2: the training data has no 'blue hair gray eyes' image",
    ]
    assert len(list((tmp_path / "out").glob("sample_*.jpg"))) == 25


def _assert_labelled_rows(path, rows: int, cols: int, size: int) -> None:
    """A grid of ``rows`` x ``cols`` images with 2-pixel gaps, and dark label text left of every row."""
    with Image.open(path) as im:
        grid = np.asarray(im.convert("RGB"))
    strip = grid.shape[1] - (cols * (size + 2) + 2)
    assert grid.shape[0] == rows * (size + 2) + 2 and strip > 30, grid.shape
    for r in range(rows):
        label = grid[2 + r * (size + 2) : 2 + r * (size + 2) + size, :strip]
        assert (label < 100).all(axis=-1).sum() > 20, f"row {r} has no label"


def test_generate_bad_inputs_exit_2_and_leave_nothing(trained, tmp_path, capsys):
    _, _, run = trained
    ckpt = ["--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "out")]
    cases = [
        (b"1,blue hair red eyes\n2,teal hair\n", ":2: unknown hair colour 'teal' (valid: orange"),
        (b"", "no testing lines"),
        (b"1 blue hair\n", ":1: expected '<id>,<tags>'"),
    ]
    for content, needle in cases:
        text = tmp_path / "t.txt"
        text.write_bytes(content)
        assert generate.main([str(text), *ckpt]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {text}") and needle in err[0], err
    text.write_bytes(b"1,blue hair\n")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert generate.main([str(text), "--checkpoint", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert f"{bad}: not a readable checkpoint" in capsys.readouterr().err
    assert generate.main([str(text), "--out", str(tmp_path / "out")]) == 2  # no runs yet
    assert "train first" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_mode_seeking_term_punishes_noise_blind_generators():
    class Blind(torch.nn.Module):
        def forward(self, z, hair, eye):
            return torch.zeros(len(z), 3, 8, 8) + hair.float()[:, None, None, None] / 12 + 0 * z.sum()

    class Critic(torch.nn.Module):
        def forward(self, x, hair, eye):
            return x.mean((1, 2, 3)), None, None

    z, tags = torch.randn(8, 4), torch.arange(8) % 3
    cfg = TrainConfig(mode_seeking=0.5)
    blind, _ = train.g_loss(Blind(), Critic(), z, tags, tags, cfg)
    plain, _ = train.g_loss(Blind(), Critic(), z, tags, tags, TrainConfig(mode_seeking=0.0))
    assert blind.item() > 1000 and plain.item() < 1  # 0.5 / 1e-5 when noise changes nothing


def test_feature_mode_seeking_pairs_share_their_augmentation():
    """In D's features a noise-blind generator's pairs are alike even under random translation and
    cutout (each pair is augmented as one), and a generator that uses its noise is punished far less."""

    class Painter(torch.nn.Module):
        def __init__(self, noise: float):
            super().__init__()
            self.noise, self.base = noise, torch.rand(1, 3, 16, 16) * 2 - 1

        def forward(self, z, hair, eye):
            shift = self.noise * z[:, :3, None, None] + hair.float()[:, None, None, None] / 12
            return torch.tanh(self.base + shift)

    torch.manual_seed(0)
    disc = Discriminator(ModelConfig(image_size=16, ndf=8), 12, 11)
    z, tags = torch.randn(8, 4), torch.arange(8) % 3
    cfg = TrainConfig(mode_seeking=0.0, mode_seeking_features=0.5, augment=["translation", "cutout"])
    blind, _ = train.g_loss(Painter(0.0), disc, z, tags, tags, cfg)
    seeing, stats = train.g_loss(Painter(1.0), disc, z, tags, tags, cfg)
    assert blind.item() > 1000 and seeing.item() < 100, (blind.item(), seeing.item())
    assert stats["feature_per_noise_distance"] > 0.005


def test_resume_continues_exactly(tmp_path):
    folder = write_sample_data(tmp_path / "data", n=160)
    extra = ("model.image_size=16", "train.batch_size=16")
    assert train.main(tiny_train_args(tmp_path / "a", folder, *extra, "train.max_steps=30")) == 0
    assert train.main([*tiny_train_args(tmp_path / "a", folder, *extra, "train.max_steps=50"), "--resume"]) == 0
    assert train.main(tiny_train_args(tmp_path / "b", folder, *extra, "train.max_steps=50")) == 0
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in "ab")
    assert a["step"] == b["step"] == 50
    for net in ("G", "D", "G_ema"):
        for k, v in a["models"][net].items():
            assert torch.allclose(v.float(), b["models"][net][k].float(), atol=1e-5), (net, k)


def test_learning_rate_schedule_sets_both_rates_and_keeps_its_clock(tmp_path):
    folder = write_sample_data(tmp_path / "data", n=160)
    extra = ("model.image_size=16", "train.batch_size=16", "train.max_steps=20", "train.lr_d=0.002")
    schedule = ("train.lr_schedule=linear", "train.lr_hold=0.5", "train.lr_floor=0.1")
    assert train.main(tiny_train_args(tmp_path / "run", folder, *extra, *schedule)) == 0
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    # the last step (index 19) is 95% into the run: 0.45 of the 0.5 after the hold, factor 0.1 + 0.9 * 0.1
    factor = 0.1 + 0.9 * (1 - 0.45 / 0.5)
    assert state["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(0.001 * factor)
    assert state["optimizers"]["D"]["param_groups"][0]["lr"] == pytest.approx(0.002 * factor)
    assert state["extra"]["train_seconds"] > 0
    resume = [*tiny_train_args(tmp_path / "run", folder, *extra, *schedule, "train.max_steps=24"), "--resume"]
    assert train.main(resume) == 0
    resumed = load_checkpoint(tmp_path / "run" / "last.pt")
    assert resumed["extra"]["train_seconds"] > state["extra"]["train_seconds"]  # the clock goes on, not from 0
    # resumed to 24 steps: the last step (index 23) is 23/24 into the run
    factor = 0.1 + 0.9 * (1 - (23 / 24 - 0.5) / 0.5)
    assert resumed["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(0.001 * factor)


def test_train_bad_data_is_one_line(tmp_path, capsys):
    folder = write_sample_data(tmp_path / "data", n=10)
    assert train.main(tiny_train_args(tmp_path / "run", folder, "model.image_size=48")) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: model config: image_size must be a power of two >= 8, got 48"
    )
    assert train.main(tiny_train_args(tmp_path / "run", folder, "train.bogus=1")) == 2
    assert "unknown config key 'train.bogus'" in capsys.readouterr().err
    (folder / "images").rename(tmp_path / "moved")
    assert train.main(tiny_train_args(tmp_path / "run", folder)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {folder / 'images'}: image folder not found"
