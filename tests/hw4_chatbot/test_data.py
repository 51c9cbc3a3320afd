import pytest

from common.errors import UserError
from hw4_chatbot.config import DataConfig
from hw4_chatbot.data import load_splits, normalize, read_alternating, read_cornell, read_pairs


def test_cornell_raw_with_cp1252_and_crlf(tmp_path):
    (tmp_path / "movie_lines.txt").write_bytes(
        b"L3 +++$+++ u0 +++$+++ m0 +++$+++ A +++$+++ Caf\xe9 ?\r\n"
        b"L2 +++$+++ u1 +++$+++ m0 +++$+++ B +++$+++ I don\x92t know.  \r\n"
        b"L1 +++$+++ u0 +++$+++ m0 +++$+++ A +++$+++ Hello there.\r\n"
        b"L9 +++$+++ u0 +++$+++ m0 +++$+++ A +++$+++ \r\n"
    )
    (tmp_path / "movie_conversations.txt").write_bytes(b"u0 +++$+++ u1 +++$+++ m0 +++$+++ ['L1', 'L2', 'L3']\r\n")
    pairs = read_cornell(tmp_path)
    assert pairs == [("Hello there.", "I don\u2019t know."), ("I don\u2019t know.", "Caf\xe9 ?")]
    assert normalize(pairs[0][1]) == ["i", "don't", "know", "."]  # curly apostrophe folded


def test_cornell_bad_lines_name_file_and_line(tmp_path):
    (tmp_path / "movie_lines.txt").write_text("L1 +++$+++ u0 +++$+++ m0 +++$+++ A +++$+++ Hi\nbroken line\n")
    (tmp_path / "movie_conversations.txt").write_text("u0 +++$+++ u1 +++$+++ m0 +++$+++ ['L1']\n")
    with pytest.raises(UserError, match=r"movie_lines.txt:2"):
        read_cornell(tmp_path)
    (tmp_path / "movie_lines.txt").write_text("L1 +++$+++ u0 +++$+++ m0 +++$+++ A +++$+++ Hi\n")
    (tmp_path / "movie_conversations.txt").write_text("u0 +++$+++ u1 +++$+++ m0 +++$+++ ['L1', 'L7']\n")
    with pytest.raises(UserError, match=r"movie_conversations.txt:1: line id L7"):
        read_cornell(tmp_path)


def test_parallel_files_cp1252_and_misaligned(tmp_path):
    (tmp_path / "pairs.enc").write_bytes(b"Caf\xe9?\r\nHow are you?   \r\n\r\n")
    (tmp_path / "pairs.dec").write_bytes(b"Oui.\r\nFine.\r\nNothing.\r\n")
    pairs = read_pairs(tmp_path)
    assert pairs == [("Caf\xe9?", "Oui."), ("How are you?   ", "Fine."), ("", "Nothing.")]
    (tmp_path / "pairs.dec").write_bytes(b"Oui.\n")
    with pytest.raises(UserError, match="must align"):
        read_pairs(tmp_path / "pairs.enc")


def test_chat_in_alternating_lines(tmp_path):
    path = tmp_path / "chat.in"
    path.write_bytes(b"hi .\r\nhello .\r\nhow are you ?\r\nfine .\r\ndangling\r\n")
    assert read_alternating(path) == [("hi .", "hello ."), ("how are you ?", "fine .")]
    assert read_pairs(tmp_path) == read_alternating(path)


def test_splits_filter_cut_and_are_disjoint(sample):
    cfg = DataConfig(path=str(sample / "cornell_pairs"), max_query_len=3, max_reply_len=2)
    s = load_splits(cfg)
    everything = s.train + s.valid + s.test
    assert all(0 < len(q) <= 3 and 0 < len(r) <= 2 for q, r in everything)
    assert len(everything) == 601  # 602 lines, the pair with an empty query is dropped
    back = load_splits(DataConfig(path=str(sample / "cornell_pairs"), reverse=True))
    fwd = load_splits(DataConfig(path=str(sample / "cornell_pairs")))
    assert [(r, q) for q, r in fwd.test] == back.test  # the backward model holds out the same pairs


def test_all_sample_formats_read(sample):
    assert len(read_pairs(sample / "cornell")) == 2 * (600 // 3)
    assert len(read_pairs(sample / "opensubtitles" / "chat.in")) == 200
