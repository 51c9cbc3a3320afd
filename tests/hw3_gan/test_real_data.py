"""Checks on the real course files (skipped without MLDS_DATA)."""

import zipfile

from common.text import read_lines
from hw3_gan.tags import EYE_COLOURS, parse_tags, read_testing_text, split_id

from ..conftest import needs_data, real_data


@needs_data
def test_course_testing_files_parse():
    hw3 = real_data() / "hw3"
    tags = read_testing_text(hw3 / "testing_tags.txt")
    assert len(tags) == 25 and all(t.hair is not None and t.eye is not None for t in tags)
    assert len(read_testing_text(hw3 / "sample_testing_text.txt")) == 4


@needs_data
def test_real_tags_csv_parses_without_gray_eyes(tmp_path):
    with zipfile.ZipFile(real_data() / "hw3" / "extra_data.zip") as zf:
        (tmp_path / "tags.csv").write_bytes(zf.read("extra_data/tags.csv"))
        images = {n for n in zf.namelist() if n.startswith("extra_data/images/")}
    rows = [split_id(line, f"tags.csv:{n}") for n, line in enumerate(read_lines(tmp_path / "tags.csv"), 1)]
    assert len(rows) == 15000
    ids = [int(i) for i, _ in rows]
    assert max(ids) > len(ids)  # not contiguous
    pairs = [parse_tags(rest, "tags.csv") for _, rest in rows]
    assert all(h is not None and e is not None for h, e in pairs)
    assert EYE_COLOURS.index("gray") not in {e for _, e in pairs}
    assert all(f"extra_data/images/{i}.jpg" in images for i, _ in rows)
