import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from hw3_gan import evaluate
from hw3_gan.classifier import save_classifier, train_classifier
from hw3_gan.data import FaceData, load_faces
from hw3_gan.evaluate import frechet_distance, mean_pairwise, tag_matched_sets
from hw3_gan.sample_data import write_sample_data
from hw3_gan.tags import read_testing_text

from ..conftest import needs_data, real_data
from .conftest import own_cache


def test_frechet_distance_matches_hand_values():
    a = np.array([[1.0, 0], [-1, 0], [0, 2], [0, -2]])  # mean 0, covariance diag(2/3, 8/3)
    b = a * 3 + [1.0, 2.0]  # mean (1, 2), covariance diag(6, 24)
    hand = 1 + 4 + (2 / 3 + 6 - 2 * np.sqrt(4)) + (8 / 3 + 24 - 2 * np.sqrt(64))
    assert frechet_distance(a, b) == pytest.approx(hand)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)


def test_mean_pairwise_hand_value():
    assert mean_pairwise(np.array([[0.0], [3.0], [4.0]])) == pytest.approx((3 + 4 + 1) / 3)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    with own_cache(root):
        faces = load_faces(write_sample_data(root / "data", n=400))
    net = train_classifier(faces.subset(np.arange(400) < 160), epochs=20, batch=32, width=8, quiet=True)
    clf = root / "clf.pt"
    save_classifier(net, clf, {"holdout_percent": 0.0})
    return root, faces.subset(np.arange(400) >= 160), net, clf


def _write_samples(folder, reqs, real: FaceData, copies: bool = False):
    folder.mkdir()
    for req in reqs:
        idx = evaluate._matching(real, req)
        for k in range(1, 6):
            img = real.images[idx[0 if copies else k]]
            Image.fromarray(img).save(folder / f"sample_{req.id}_{k}.jpg", quality=95)


def test_real_images_score_like_real_and_copies_show_collapse(scored, tmp_path):
    root, real, net, clf = scored
    reqs = read_testing_text(root / "data" / "sample_testing_text.txt")
    _write_samples(tmp_path / "good", reqs, real)
    res = evaluate.evaluate(evaluate.read_samples(tmp_path / "good", reqs), reqs, net, real)
    assert res["hair_accuracy"] >= 0.9 and res["eye_accuracy"] >= 0.9 and res["joint_accuracy"] >= 0.8
    assert res["diversity_ratio"] > 0.6
    _write_samples(tmp_path / "same", reqs, real, copies=True)
    res = evaluate.evaluate(evaluate.read_samples(tmp_path / "same", reqs), reqs, net, real)
    assert res["diversity_ratio"] < 0.05 and "mode collapse" in evaluate.format_report(res)


def test_tag_matched_real_sets_are_disjoint(scored):
    root, real, _, _ = scored
    reqs = read_testing_text(root / "data" / "sample_testing_text.txt")
    a, b, short = tag_matched_sets(real, reqs, np.random.default_rng(0))
    assert len(a) == len(b) == 25 and short == 0 and not set(a) & set(b)
    assert all(real.hair[a[i * 5]] == reqs[i].hair for i in range(5) if reqs[i].hair is not None)


def test_evaluate_cli_and_bad_samples(scored, tmp_path, capsys):
    root, real, _, clf = scored
    text = root / "data" / "sample_testing_text.txt"
    reqs = read_testing_text(text)
    _write_samples(tmp_path / "s", reqs, real)
    args = [
        str(tmp_path / "s"),
        str(text),
        "--classifier",
        str(clf),
        "--data",
        str(root / "data" / "extra_data"),
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert evaluate.main(args) == 0
    out = capsys.readouterr().out
    assert "accuracy   hair" in out and (tmp_path / "r.json").is_file()
    bad = tmp_path / "s" / "sample_4_2.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    assert evaluate.main(args) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {bad}: not a readable image")
    bad.unlink()
    assert evaluate.main(args) == 2
    assert f"{bad}: sample missing (testing line 4)" in capsys.readouterr().err


@needs_data
def test_cascade_finds_faces_in_real_images():
    pytest.importorskip("cv2")
    hw3 = real_data() / "hw3"
    images = []
    with zipfile.ZipFile(hw3 / "extra_data.zip") as zf:
        names = [n for n in zf.namelist() if n.endswith(".jpg")][:200]
        images = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB")) for n in names])
    assert evaluate.face_rate(images, hw3 / "lbpcascade_animeface.xml") >= 0.9
    noise = np.random.default_rng(0).integers(0, 256, (50, 64, 64, 3), dtype=np.uint8)
    assert evaluate.face_rate(noise, hw3 / "lbpcascade_animeface.xml") <= 0.05
