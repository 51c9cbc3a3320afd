"""The all-pairs evaluation and the two pictures, on a tiny GAN trained on the synthetic faces."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from common.checkpoint import load_checkpoint
from hw3_gan import all_pairs, evaluate, generate, train
from hw3_gan.classifier import predict, save_classifier, train_classifier
from hw3_gan.data import load_faces
from hw3_gan.evaluate import tag_matched_sets
from hw3_gan.sample_data import write_sample_data
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS, TagRequest

from .conftest import own_cache, tiny_train_args


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 30-step GAN and a small classifier on 240 synthetic faces (9 pairs of uneven counts)."""
    root = tmp_path_factory.mktemp("pairs")
    with own_cache(root):
        folder = write_sample_data(root / "data", n=240)
        assert train.main(tiny_train_args(root / "run", folder, "model.image_size=16", "train.max_steps=30")) == 0
        faces = load_faces(folder)
    net = train_classifier(faces, epochs=15, batch=32, width=8, quiet=True)
    save_classifier(net, root / "clf.pt", {"holdout_percent": 0.0})
    return root, folder, faces, net


def _hand_count(folder, min_count: int) -> set[tuple[str, str]]:
    lines = (folder / "tags.csv").read_text().splitlines()
    tags = Counter(line.split(",")[1] for line in lines if (folder / "images" / f"{line.split(',')[0]}.jpg").exists())
    return {(t.split()[0], t.split()[2]) for t, n in tags.items() if n >= min_count}


def test_pair_filter_matches_a_hand_count(tiny):
    _, folder, faces, _ = tiny
    counts = sorted(faces.pair_counts()[faces.pair_counts() > 0])
    cut = counts[len(counts) // 2]  # about half the pairs pass
    got = {(HAIR_COLOURS[h], EYE_COLOURS[e]) for h, e in all_pairs.frequent_pairs(faces.pair_counts(), cut)}
    assert got == _hand_count(folder, cut) and 0 < len(got) < len(counts)


def test_real_images_score_well_and_copies_show_collapse(tiny):
    _, _, faces, net = tiny
    pairs = all_pairs.frequent_pairs(faces.pair_counts(), 10)
    idx = [np.flatnonzero((faces.hair == h) & (faces.eye == e)) for h, e in pairs]
    real = np.concatenate([faces.images[i[-3:]] for i in idx])  # 3 real images per pair
    pooled, rows = all_pairs.score_pairs(real, pairs, 3, net, faces)
    assert pooled["joint_accuracy"] >= 0.8 and pooled["diversity_ratio"] > 0.5 and len(rows) == len(pairs)
    copies = np.concatenate([faces.images[i[[-1] * 3]] for i in idx])
    pooled, rows = all_pairs.score_pairs(copies, pairs, 3, net, faces)
    assert pooled["diversity_ratio"] < 0.05 and max(r["diversity_ratio"] for r in rows) < 0.05
    feats = predict(net, copies)[0]
    assert pooled["diversity_generated"] == pytest.approx(0.0, abs=1e-4) and feats.shape[0] == 3 * len(pairs)


def test_real_joint_accuracy_is_the_classifiers_on_the_reference_images(tiny):
    _, _, faces, net = tiny
    pairs = all_pairs.frequent_pairs(faces.pair_counts(), 10)
    requests = [TagRequest(str(i), h, e) for i, (h, e) in enumerate(pairs, 1)]
    set_a = tag_matched_sets(faces, requests, np.random.default_rng(0), per_line=3)[0]  # score_pairs' own draw
    _, hair, eye = predict(net, faces.images[set_a])
    want = np.mean([(hair[i] == pairs[i // 3][0]) & (eye[i] == pairs[i // 3][1]) for i in range(len(set_a))])
    pooled, _ = all_pairs.score_pairs(np.zeros_like(faces.images[set_a]), pairs, 3, net, faces)
    assert pooled["joint_accuracy_real"] == pytest.approx(want) and 0 < want
    pooled, _ = all_pairs.score_pairs(faces.images[set_a], pairs, 3, net, faces)  # the reference images themselves
    assert pooled["joint_accuracy"] == pytest.approx(want)


def _args(root, folder, *extra):
    ckpt, clf = root / "run" / "best.pt", root / "clf.pt"
    return ["--all-pairs", "--checkpoint", str(ckpt), "--classifier", str(clf), "--data", str(folder), *extra]


def test_all_pairs_cli_writes_one_row_per_pair(tiny, tmp_path, capsys, monkeypatch):
    root, folder, faces, _ = tiny
    monkeypatch.setenv("MLDS_CACHE", str(root / "cache"))
    out = ["--csv", str(tmp_path / "p.csv"), "--json", str(tmp_path / "p.json"), "--min-count", "20"]
    assert evaluate.main(_args(root, folder, *out)) == 0
    printed = capsys.readouterr().out
    assert "all pairs:" in printed and "worst pairs:" in printed
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert {(r["hair"], r["eye"]) for r in rows} == _hand_count(folder, 20)
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["pooled"]["images"] == 5 * len(rows) and len(saved["pairs"]) == len(rows)
    assert all(0 <= float(r["joint_accuracy"]) <= 1 and float(r["frechet_floor"]) > 0 for r in rows)


def test_all_pairs_come_from_the_data_not_the_runs_own_tag_counts(tiny, tmp_path, monkeypatch):
    root, folder, _, _ = tiny
    monkeypatch.setenv("MLDS_CACHE", str(root / "cache"))
    state = load_checkpoint(root / "run" / "best.pt")
    state["extra"]["pair_counts"] = np.ones_like(state["extra"]["pair_counts"]).tolist()  # a run on other tags
    torch.save(state, tmp_path / "retagged.pt")
    args = _args(root, folder, "--csv", str(tmp_path / "p.csv"), "--min-count", "20")
    args[args.index("--checkpoint") + 1] = str(tmp_path / "retagged.pt")
    assert evaluate.main(args) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert {(r["hair"], r["eye"]) for r in rows} == _hand_count(folder, 20)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--per-pair", "1"], "--per-pair must be at least 2"),
        (["--min-count", "6"], "--min-count must be at least twice --per-pair"),
        (["samples"], "give no samples folder or testing file"),
        (["--min-count", "1000"], "no hair/eye pair has 1000 training images"),
        (["--candidates", "2"], "--candidates 2 needs a run with model.aux_classifier"),
        (["--spread", "2"], "--spread must be between 1 and --candidates (1), got 2"),
        (["--accept", "0.5"], "--accept must be in (0, 1], with --candidates above 1 and no --spread, got 0.5"),
    ],
)
def test_all_pairs_bad_flags_are_one_line(tiny, tmp_path, capsys, monkeypatch, extra, needle):
    root, folder, _, _ = tiny
    monkeypatch.setenv("MLDS_CACHE", str(root / "cache"))
    assert evaluate.main(_args(root, folder, "--csv", str(tmp_path / "p.csv"), *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "p.csv").exists()
    assert evaluate.main(["--csv", str(tmp_path / "p.csv"), "s", "t.txt"]) == 2
    assert "--csv goes with --all-pairs" in capsys.readouterr().err
    for flag, value in (("--spread", "2"), ("--accept", "0.5")):
        assert evaluate.main([flag, value, "s", "t.txt"]) == 2
        assert f"{flag} goes with --all-pairs" in capsys.readouterr().err


def test_colour_grid_and_interpolation_strip(tiny, tmp_path, capsys):
    root, _, _, _ = tiny
    ckpt = ["--checkpoint", str(root / "run" / "best.pt"), "--device", "cpu"]
    grid, strip = tmp_path / "grid.png", tmp_path / "strip.png"
    assert generate.main(["--colour-grid", str(grid), "--interpolate", str(strip), "--steps", "5", *ckpt]) == 0
    assert "12 hair x 11 eye colours" in capsys.readouterr().err
    with Image.open(grid) as im:
        cells = np.asarray(im.convert("RGB"))
    # 12 rows x 11 columns of 64-pixel faces with 2-pixel gaps, a label strip left and a header above
    assert cells.shape[0] == 12 * 66 + 2 + 16 and (cells.shape[1] - 2) % 66 > 0
    sampler = generate.TagSampler(load_checkpoint(root / "run" / "best.pt", "hw3_gan"), torch.device("cpu"))
    with Image.open(strip) as im:
        row = np.asarray(im.convert("RGB"))
    assert row.shape[0] == 68
    a = torch.randn(sampler.gen.nz, generator=torch.Generator().manual_seed(0))
    blonde, blue = HAIR_COLOURS.index("blonde"), EYE_COLOURS.index("blue")
    first = sampler.render(a[None], [blonde], [blue])[0]
    left = row.shape[1] - 5 * 66 + 2 - 2  # the first image's column
    assert np.abs(row[2:66, left : left + 64].astype(int) - first).max() <= 1  # batch vs single rounding
    assert generate.main(["--interpolate", str(tmp_path / "x.png"), "--steps", "1", *ckpt]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --steps must be at least 2, got 1"]
    assert not (tmp_path / "x.png").exists()
