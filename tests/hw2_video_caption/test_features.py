"""Features read per batch from disk equal features read all at once; the full-size path at small size."""

import numpy as np
import pytest

from benchmarks.hw2_full_scale import full_scale
from common.errors import UserError
from hw2_video_caption.data import FeatureStore, load_features, load_labels, read_ids, split_ids


def test_lazy_store_equals_eager_loading(sample_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))  # the float32 copy goes here, not into the repo
    feat_dir, ids = split_ids(sample_dir, "training")
    eager = load_features(feat_dir, ids[:10], cache=False)
    files = np.stack([np.load(feat_dir / f"{v}.npy").astype(np.float32) for v in ids[:10]])
    assert eager.dtype == np.float32 and np.array_equal(eager, files)
    for cache in (False, True):  # straight from the float64 files, and from the float32 cache copy
        lazy = load_features(feat_dir, ids[:10], cache=cache, lazy=True)
        assert isinstance(lazy, FeatureStore) and lazy.shape == eager.shape and len(lazy) == 10
        assert np.array_equal(np.asarray(lazy), eager)
        view = lazy[np.array([7, 2, 5])][1:]  # a view of a view: rows 2 and 5
        assert isinstance(view, FeatureStore) and np.array_equal(np.ascontiguousarray(view), eager[[2, 5]])
        assert np.array_equal(lazy[3], eager[3])


def test_lazy_store_checks_values_when_it_reads_them(sample_dir, tmp_path):
    vid = read_ids(sample_dir / "testing_id.txt")[0]
    np.save(tmp_path / f"{vid}.npy", np.full((80, 4096), np.nan))
    store = load_features(tmp_path, [vid], cache=False, lazy=True)  # the header is fine
    with pytest.raises(UserError, match=f"{vid}.npy: feature contains NaN or inf"):
        np.asarray(store)
    np.save(tmp_path / f"{vid}.npy", np.zeros((80, 100)))
    with pytest.raises(UserError, match=r"feature shape \(80, 100\)"):
        load_features(tmp_path, [vid], cache=False, lazy=True)


def test_full_scale_path_at_small_size(sample_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert (
        full_scale(
            out,
            labels=sample_dir / "training_label.json",
            n_train=6,
            n_test=3,
            n_peer=2,
            config_sets=[
                "train.batch_size=8",
                "data.val_fraction=0.2",
                "model.proj=16",
                "model.hidden=16",
                "model.embed=8",
                "model.frame_stride=8",
            ],
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "generated 6 + 3 + 2 videos" in printed and "peak RSS" in printed and "videos/s" in printed
    assert len((out / "test_output.txt").read_text().splitlines()) == 3
    assert len((out / "peer_review_output.txt").read_text().splitlines()) == 2
    assert not (tmp_path / "cache" / "hw2_video_caption" / "full_scale").exists()  # the generated set is gone
    assert load_labels(sample_dir / "training_label.json")  # the captions' source is untouched
