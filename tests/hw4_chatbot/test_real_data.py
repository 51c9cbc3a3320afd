"""Readers and the course command on the real files (skipped without MLDS_DATA)."""

import pytest

from hw4_chatbot import predict
from hw4_chatbot.config import DataConfig
from hw4_chatbot.data import load_splits, read_pairs
from tests.conftest import real_data

DATA = real_data()
pytestmark = pytest.mark.skipif(DATA is None, reason="MLDS_DATA not set")


def test_real_formats_read():
    hw4 = DATA / "hw4"
    cornell = read_pairs(hw4 / "cornell")
    assert len(cornell) > 2000 and all(isinstance(q, str) for q, _ in cornell[:10])
    pairs = read_pairs(hw4 / "cornell_pairs")
    assert len(pairs) == 28000
    text = "".join(q + r for q, r in pairs)
    assert "\u2019" in text and "\ufffd" not in text  # Windows-1252 byte 0x92 decoded as a curly quote
    assert len(read_pairs(hw4 / "opensubtitles" / "chat.in")) == 5000
    assert len(read_pairs(hw4 / "movie_subtitles" / "chat.in")) == 5000
    splits = load_splits(DataConfig(path=str(hw4 / "cornell_pairs")))
    assert len(splits.valid) == len(splits.test) == 838 and len(splits.train) > 26000


def test_predict_on_every_real_sample_input(tiny_run, tmp_path):
    for src in sorted((DATA / "hw4" / "sample_inputs").glob("*.txt")):
        out = tmp_path / (src.name + ".out")
        assert predict.main(["BEST", str(src), str(out), "--checkpoint", str(tiny_run / "best.pt")]) == 0
        n_in = len(src.read_bytes().replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n"))
        assert len(out.read_text(encoding="utf-8").splitlines()) == n_in, src.name
