import numpy as np
import pytest
from PIL import Image

import hw3_gan.data as data_mod
from common.errors import UserError
from hw3_gan.data import holdout_mask, load_faces, to_tensor, to_uint8
from hw3_gan.sample_data import DEMO_EYES, DEMO_HAIR, judge_colours, synthetic_faces, write_sample_data
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS


def test_2018_format_with_missing_image_and_sparse_ids(tmp_path, capsys):
    folder = write_sample_data(tmp_path, n=40)
    faces = load_faces(folder)
    _, hair, eye = synthetic_faces(40, DEMO_HAIR, DEMO_EYES, seed=0)
    assert faces.images.shape == (40, 64, 64, 3) and faces.images.dtype == np.uint8
    assert faces.hair.tolist() == hair.tolist() and faces.eye.tolist() == eye.tolist()
    assert faces.ids[:3] == ["7", "10", "13"]
    assert faces.stats == {"lines": 41, "missing": 1, "corrupt": 0}
    assert f"image missing for tag line: {folder / 'tags.csv'}:41" in capsys.readouterr().err
    # The decoded colours are the written ones (JPEG keeps the regions' colours).
    jh, je = judge_colours(faces.images, DEMO_HAIR, DEMO_EYES)
    assert (jh == faces.hair).all() and (je == faces.eye).all()


def test_2017_format_handwritten_file(tmp_path):
    faces_dir = tmp_path / "faces"
    faces_dir.mkdir()
    for i in range(5):
        Image.new("RGB", (96, 96), (10 * i, 0, 0)).save(faces_dir / f"{i}.jpg")
    (tmp_path / "tags_clean.csv").write_text(
        "0,blonde hair:25457\tdoll:1040\tred eyes:3000\t\n"  # kept
        "1,long hair:195231\tblue hair:4000\n"  # no eye colour
        "2,blue hair:4000\tpink hair:3000\tblue eyes:20\n"  # two hair colours
        "3,smile:4\tGreen Eyes:2\tGrey Hair:9\n"  # kept: case and 'grey'
        "4,\n",
        encoding="utf-8",
    )
    faces = load_faces(tmp_path)
    assert faces.ids == ["0", "3"] and faces.images.shape == (2, 64, 64, 3)
    assert [HAIR_COLOURS[h] for h in faces.hair] == ["blonde", "gray"]
    assert [EYE_COLOURS[e] for e in faces.eye] == ["red", "green"]
    assert faces.stats["without one hair and one eye colour"] == 3
    assert abs(int(faces.images[1, 30, 30, 0]) - 30) <= 3  # resized from 96, colour kept


def test_2017_sample_writer_round_trip(tmp_path):
    faces = load_faces(write_sample_data(tmp_path, n=30, fmt="2017"))
    assert len(faces) == 30 and faces.stats["missing"] == 1
    assert faces.stats["without one hair and one eye colour"] == 2


def test_corrupt_image_is_skipped_and_counted(tmp_path, capsys):
    folder = write_sample_data(tmp_path, n=20)
    bad = folder / "images" / "10.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    faces = load_faces(folder)
    assert len(faces) == 19 and faces.stats["corrupt"] == 1 and "10" not in faces.ids
    assert f"corrupt image skipped: {bad}" in capsys.readouterr().err
    assert "corrupt 1" in faces.summary()


@pytest.mark.parametrize(
    "line,needle",
    [
        ("13,blue hair", "needs both"),
        ("13;blue hair red eyes", "expected '<id>,"),
        ("13,teal hair red eyes", "unknown hair colour 'teal'"),
    ],
)
def test_bad_tag_line_names_file_and_line(tmp_path, line, needle):
    folder = write_sample_data(tmp_path, n=5)
    lines = (folder / "tags.csv").read_text().splitlines()
    lines[2] = line
    (folder / "tags.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as err:
        load_faces(folder)
    assert f"{folder / 'tags.csv'}:3: " in str(err.value) and needle in str(err.value)


def test_missing_folders(tmp_path):
    folder = write_sample_data(tmp_path, n=5)
    (folder / "images").rename(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="images: image folder not found"):
        load_faces(folder)
    with pytest.raises(UserError, match="no tags.csv"):
        load_faces(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="data folder not found"):
        load_faces(tmp_path / "nope")


def test_decoded_array_is_cached(tmp_path, monkeypatch):
    folder = write_sample_data(tmp_path, n=10)
    first = load_faces(folder)

    def fail(*_a, **_k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(data_mod, "decode_image", fail)
    second = load_faces(folder)
    assert np.array_equal(first.images, second.images) and second.ids == first.ids
    assert second.stats == first.stats


def test_holdout_is_stable_and_near_the_percentage():
    ids = [str(i) for i in range(0, 30000, 2)]
    mask = holdout_mask(ids, 20.0)
    assert 0.18 < mask.mean() < 0.22
    assert holdout_mask(ids[::-1], 20.0)[::-1].tolist() == mask.tolist()
    assert not holdout_mask(ids, 0).any()


def test_tensor_round_trip():
    img = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = to_tensor(img, 8)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(x), img)
