"""hw3 commands never harm the user's files: generate writes only its own files; bad inputs change nothing."""

import shutil

import pytest
import torch

from hw3_gan import evaluate, generate, train
from hw3_gan.sample_data import write_sample_data
from tests.safety import assert_refused, assert_user_file_kept, snapshot, user_folder

from .conftest import tiny_train_args

SMALL = ("model.image_size=16", "train.batch_size=16")


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw3safe")
    folder = write_sample_data(root / "data", n=64)
    run = user_folder(root / "run")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLDS_CACHE", str(root / "cache"))
    try:
        assert train.main(tiny_train_args(run, folder, *SMALL, "train.max_steps=4")) == 0
    finally:
        mp.undo()
    assert_user_file_kept(run)
    return folder, run


def _text(folder, name="t.txt"):
    path = folder / name
    path.write_text("1,blue hair red eyes\n2,green eyes\n")
    return path


def test_generate_into_a_folder_holding_user_files_keeps_them(gan, tmp_path, monkeypatch):
    _, run = gan
    d = user_folder(tmp_path / "d")
    text = _text(d)
    kept = snapshot(d)
    assert generate.main([str(text), "--out", str(d), "--checkpoint", str(run / "best.pt")]) == 0
    assert all(snapshot(d)[p] == v for p, v in kept.items())  # thesis.txt and the input as they were
    names = sorted(p.name for p in d.iterdir())
    assert names == ["grid.png"] + [f"sample_{i}_{k}.jpg" for i in (1, 2) for k in range(1, 6)] + [
        "t.txt",
        "thesis.txt",
    ]
    monkeypatch.chdir(d)  # --out . : the same, with no stray folder beside or inside
    assert generate.main(["t.txt", "--out", ".", "--checkpoint", str(run / "best.pt")]) == 0
    assert sorted(p.name for p in d.iterdir()) == names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_generate_refuses_outputs_it_must_not_write(gan, tmp_path, capsys):
    _, run = gan
    d = user_folder(tmp_path / "d")
    text = _text(d)
    ckpt = ["--checkpoint", str(run / "best.pt")]
    assert_refused(
        generate.main,
        [text, "--out", d / "thesis.txt", *ckpt],
        "thesis.txt: is a file, expected a folder",
        capsys,
        [tmp_path, run],
    )
    grid_input = _text(d, "grid.png")  # an input with the name of an output
    assert_refused(
        generate.main, [grid_input, "--out", d, *ckpt], "grid.png: is also an input", capsys, [tmp_path, run]
    )
    (d / "bad.pt").write_bytes(b"junk")
    assert_refused(
        generate.main,
        [text, "--out", d / "new", "--checkpoint", d / "bad.pt"],
        "bad.pt: not a readable checkpoint",
        capsys,
        [tmp_path, run],
    )
    assert_refused(
        generate.main,
        [text, "--out", d / "new", "--quality", "0", *ckpt],
        "--quality must be 1..100",
        capsys,
        [tmp_path, run],
    )


def test_evaluate_refuses_a_json_output_over_an_input(gan, tmp_path, capsys):
    _, run = gan
    d = user_folder(tmp_path / "d")
    text = _text(d)
    assert generate.main([str(text), "--out", str(d), "--checkpoint", str(run / "best.pt")]) == 0
    for out, needle in [
        (text, "t.txt: is also an input"),
        (d / "sample_1_1.jpg", "sample_1_1.jpg: is also an input"),
        (d, "is a folder, expected an output file"),
    ]:
        assert_refused(evaluate.main, [d, text, "--json", out], needle, capsys, [tmp_path])


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.batch_size=0", "config key 'train.batch_size' must be > 0, got 0"),
        ("train.epochs=-1", "config key 'train.epochs' must be > 0, got -1"),
        ("train.lr_d=-1", "config key 'train.lr_d' must be > 0, got -1"),
        ("train.ema_decay=1.5", "config key 'train.ema_decay' must be < 1, got 1.5"),
        ("model.nz=0", "config key 'model.nz' must be > 0, got 0"),
        ("train.betas=[2,0.9]", "config key 'train.betas' must be < 1, got [2.0, 0.9]"),
        ("train.betas=[0.5]", "config key 'train.betas' must hold 2 numbers, got [0.5]"),
    ],
)
def test_train_refuses_bad_values_before_writing(override, needle, gan, tmp_path, capsys):
    folder, _ = gan
    run = user_folder(tmp_path / "run")
    assert_refused(train.main, tiny_train_args(run, folder, override), needle, capsys, [tmp_path])


def test_finished_run_is_refused_and_resume_reads_its_own_config(gan, tmp_path, capsys, monkeypatch):
    folder, run = gan
    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))
    assert_refused(
        train.main,
        tiny_train_args(run, folder, *SMALL),
        "already holds a run (config.yaml); add --resume",
        capsys,
        [run],
    )
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    # no --config: image_size=16 comes from the run (default.yaml's 64 would not fit its weights)
    assert train.main(["--run-dir", str(copy), "--resume", "--quiet", "--set", "train.max_steps=6"]) == 0
    assert torch.load(copy / "last.pt", weights_only=True)["step"] == 6
    assert_user_file_kept(copy)
