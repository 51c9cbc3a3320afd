"""data.retag: tags that a classifier trained on the other half contradicts confidently are replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.checkpoint import load_checkpoint
from common.errors import UserError
from hw3_gan import retag, train
from hw3_gan.data import FaceData
from hw3_gan.sample_data import synthetic_faces, write_sample_data
from hw3_gan.tags import EYE_COLOURS

from .conftest import tiny_train_args


def test_replace_only_confident_contradictions():
    tags = np.array([0, 1, 2, 0])
    probs = np.array(
        [
            [0.95, 0.05, 0.0],  # agrees
            [0.92, 0.08, 0.0],  # contradicts at 0.92: replaced by 0
            [0.50, 0.10, 0.4],  # contradicts at 0.50 only: kept
            [0.05, 0.05, 0.9],  # contradicts at exactly 0.9: replaced by 2
        ]
    )
    assert retag.replace(tags, probs, 0.9).tolist() == [0, 0, 2, 2]
    assert retag.replace(tags, probs, 0.5).tolist() == [0, 0, 0, 2]


def test_halves_follow_the_id_not_the_order():
    ids = [str(i) for i in range(200)]
    half = retag.halves(ids)
    assert 60 < half.sum() < 140
    assert dict(zip(ids[::-1], retag.halves(ids[::-1]))) == dict(zip(ids, half))


@pytest.fixture(scope="module")
def noisy():
    """400 synthetic faces, every fifth eye tag moved to the next colour of the set."""
    eyes = ["blue", "red", "green", "yellow"]
    images, hair, eye = synthetic_faces(400, ["blonde", "black"], eyes, seed=3)
    wrong = np.arange(400) % 5 == 0
    order = [EYE_COLOURS.index(e) for e in eyes]
    moved = np.array([order[(order.index(e) + 1) % len(order)] for e in eye])
    clean = FaceData(images, hair, eye, [f"img{i}" for i in range(400)], "synthetic")
    tagged = FaceData(images, hair, np.where(wrong, moved, eye), clean.ids, "synthetic")
    return clean, tagged, wrong


def small_classifiers(monkeypatch, epochs: int) -> list[int]:
    """Make ``retag.out_of_fold`` train narrow classifiers for ``epochs``; the list it returns grows by
    the number of images at every call."""
    calls, full = [], retag.out_of_fold

    def small(data, seed=0, epochs_=retag.EPOCHS, quiet=False, device="cpu"):
        calls.append(len(data))
        return full(data, seed, epochs=epochs, quiet=True, width=8, device=device)

    monkeypatch.setattr(retag, "out_of_fold", small)
    return calls


def test_out_of_fold_reads_find_the_wrong_tags(noisy, monkeypatch):
    clean, tagged, wrong = noisy
    calls = small_classifiers(monkeypatch, epochs=30)
    cleaned = retag.retag(tagged, 0.5, quiet=True)
    fixed = cleaned.eye == clean.eye
    assert fixed[wrong].mean() >= 0.8  # most wrong tags are put right
    assert fixed[~wrong].mean() >= 0.97  # and right ones stay
    assert (cleaned.hair == clean.hair).all() and cleaned.ids == tagged.ids
    assert "eye tags of 400 images replaced" in retag.changes(tagged, cleaned)
    again = retag.retag(tagged, 0.99, quiet=True)  # another confidence: the cached reads, no new classifiers
    assert calls == [400]
    assert (again.eye != tagged.eye).sum() <= (cleaned.eye != tagged.eye).sum()


def test_too_few_images_is_a_clear_error():
    images, hair, eye = synthetic_faces(50, ["blonde"], ["blue"])
    with pytest.raises(UserError, match="too few images to retag"):
        retag.out_of_fold(FaceData(images, hair, eye, [str(i) for i in range(50)], "tiny.zip"))


def test_a_run_that_trains_the_classifiers_draws_as_one_that_reads_them_cached(tmp_path, monkeypatch):
    folder = write_sample_data(tmp_path / "data", n=200)
    monkeypatch.setattr(retag, "EPOCHS", 1)
    extra = ("model.image_size=16", "train.batch_size=16", "train.max_steps=10", "data.retag=0.5")
    assert train.main(tiny_train_args(tmp_path / "a", folder, *extra)) == 0
    assert len(list((tmp_path / "cache").rglob("retag-*.npz"))) == 1
    assert train.main(tiny_train_args(tmp_path / "b", folder, *extra)) == 0
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in "ab")
    for name in ("G", "colour0", "colour1"):  # the tag classifiers travel with the checkpoint, cached or not
        for k, v in a["models"][name].items():
            assert torch.equal(v, b["models"][name][k]), f"{name}.{k}"
    assert not torch.equal(a["models"]["colour0"]["hair.weight"], a["models"]["colour1"]["hair.weight"])


def test_a_cache_without_the_classifiers_is_made_again_once(noisy, monkeypatch, tmp_path):
    _, tagged, _ = noisy
    calls = small_classifiers(monkeypatch, epochs=2)
    monkeypatch.setenv("MLDS_CACHE", str(tmp_path))
    hair, eye, nets = retag.cached_out_of_fold(tagged, quiet=True)
    (path,) = tmp_path.rglob("retag-*.npz")
    np.savez(path, hair=hair, eye=eye)  # as the cache was before it kept the classifiers
    again = retag.cached_out_of_fold(tagged, quiet=True)
    third = retag.cached_out_of_fold(tagged, quiet=True)
    assert calls == [400, 400]
    for got in (again, third):
        assert np.array_equal(got[0], hair) and np.array_equal(got[1], eye)  # the same seeds, the same reads
        for net, want in zip(got[2], nets):
            assert all(torch.equal(v, want.state_dict()[k]) for k, v in net.state_dict().items())
