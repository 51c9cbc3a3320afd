from collections import Counter

import pytest

from common.errors import UserError
from common.text import read_lines, read_text, tokenize
from common.vocab import Vocab


def test_windows_1252_crlf(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("caf\xe9 \x93quoted\x94\r\nline two\r\n".encode("latin-1"))
    assert read_lines(p) == ["café “quoted”", "line two"]


def test_utf8_bom_and_blank_lines(tmp_path):
    p = tmp_path / "b.txt"
    p.write_bytes("\ufeffnaïve\n\nend".encode())
    assert read_lines(p) == ["naïve", "", "end"]


def test_binary_and_missing_are_user_errors(tmp_path):
    p = tmp_path / "x.tar.xz"
    p.write_bytes(b"\xfd7zXZ\x00\x00\x04")
    with pytest.raises(UserError, match="x.tar.xz: looks like a binary file"):
        read_text(p)
    with pytest.raises(UserError, match="nope.txt: file not found"):
        read_text(tmp_path / "nope.txt")


def test_tokenize():
    assert tokenize("I don't know, Mr. Holmes's dog!") == ["i", "don't", "know", ",", "mr", ".", "holmes's", "dog", "!"]
    assert tokenize("It’s 42") == ["it's", "42"]


def test_vocab_build_is_deterministic():
    tokens = "b a c a b d".split()
    v = Vocab.build(tokens)
    assert v.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c", "d"]  # ties broken by token
    assert Vocab.build(reversed(tokens)) == v
    assert Vocab.build(Counter(tokens), min_freq=2).itos[4:] == ["a", "b"]
    assert len(Vocab.build(tokens, max_size=6)) == 6


def test_vocab_encode_decode_save(tmp_path):
    v = Vocab.build("the cat sat".split())
    ids = v.encode(["the", "dog"], bos=True, eos=True)
    assert ids == [v.bos_id, v.id("the"), v.unk_id, v.eos_id]
    assert v.decode(ids + [v.id("cat")]) == ["the", "<unk>"]
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == v
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="bad.json: not a vocabulary file"):
        Vocab.load(tmp_path / "bad.json")
