"""The sentence co-occurrence (PMI) scorer: its index, its arithmetic, what it learns, and its place
among the ensemble's members."""

import math

import numpy as np
import pytest

from common.errors import UserError
from common.vocab import SPECIALS, Vocab
from hw1_cloze import cooc, predict
from hw1_cloze.cooc import CoocScorer, build_index, save_index
from hw1_cloze.data import read_answers
from hw1_cloze.ensemble import Member, find_members, load_scorer
from tests.hw1_cloze.conftest import public_accuracy

ITOS = [*SPECIALS, "x", "y", "z", "a", "b", "."]


def _ids(text: str) -> list[int]:
    vocab = Vocab(ITOS)
    return [vocab.eos_id if w == "|" else vocab.id(w) for w in text.split()]


def _index(tmp_path, text: str):
    vocab = Vocab(ITOS)
    keep = np.array([w not in SPECIALS and w != "." for w in ITOS])
    index = build_index(np.array(_ids(text)), vocab.eos_id, keep)
    save_index(tmp_path / "c.npz", index, ITOS, unk_types=3, config={}, stream=np.array(_ids(text)))
    return index


# five sentences: 0 = "x a", 1 = "x a a", 2 = "y b .", 3 = "x b", 4 = "z"
CORPUS = "x a | x a a | y b . | x b | z |"


def test_the_index_lists_each_words_sentences_once(tmp_path):
    indptr, sentences, n = _index(tmp_path, CORPUS)
    vocab = Vocab(ITOS)
    assert n == 6  # five sentences and the empty tail after the last <eos>

    def where(w):
        i = vocab.id(w)
        return sentences[indptr[i] : indptr[i + 1]].tolist()

    assert where("x") == [0, 1, 3] and where("a") == [0, 1] and where("b") == [2, 3]
    assert where("y") == [2] and where("z") == [4] and where(".") == []  # punctuation is not kept


def test_pmi_equals_hand_counts(tmp_path):
    _index(tmp_path, CORPUS)
    vocab = Vocab(ITOS)
    x, y, a, b = (vocab.id(w) for w in "xyab")
    scorer = CoocScorer(tmp_path / "c.npz", shift=0.5)
    table = scorer.pmi(np.array([a, b]), np.array([x, y]))
    # n(a, x) = 2 of S = 6 sentences, n(a) = 2, n(x) = 3; n(b, x) = 1, n(b) = 2; n(b, y) = 1, n(y) = 1; a never with y
    want = [[math.log(2 * 6 / (2 * 3)) - 0.5, 0.0], [math.log(1 * 6 / (2 * 3)) - 0.5, math.log(1 * 6 / (2 * 1)) - 0.5]]
    assert table == pytest.approx(np.array(want))


def test_score_weighs_context_by_rarity_over_distance(tmp_path):
    _index(tmp_path, CORPUS)
    scorer = CoocScorer(tmp_path / "c.npz", shift=0.0, distance_power=1.0)
    # options fill the blank of "x _ y": x stands 1 left of it, y 1 right; each weighted log(S / n) / 2
    sentences = [["x", w, "y"] for w in ("a", "b", "z", "zzz", "a")]
    got = scorer.score(sentences)
    wx, wy = math.log(6 / 3) / 2, math.log(6 / 1) / 2
    pmi_ax, pmi_bx, pmi_by = math.log(2), math.log(1), math.log(3)
    want = [wx * pmi_ax, wx * pmi_bx + wy * pmi_by, 0.0, 0.0, wx * pmi_ax]  # z never with x or y; zzz unknown
    assert got == pytest.approx(want)


def test_the_phrases_at_the_blank_add_their_own_company(tmp_path):
    # sentences: 0 = "x a z", 1 = "x a", 2 = "a z", 3 = "a z", 4 = "b z", 5 = "x b"; S = 7 with the tail
    text = "x a z | x a | a z | a z | b z | x b |"
    _index(tmp_path, text)
    scorer = CoocScorer(tmp_path / "c.npz", shift=0.0, distance_power=1.0)
    got = scorer.score([["z", "x", w] for w in ("a", "b", "z", "zzz", "a")])  # "z x _": z 2 left, x 1 left
    wz, wx = math.log(7 / 4) / 3, math.log(7 / 3) / 2
    words = {
        "a": wz * math.log(3 * 7 / (4 * 4)) + wx * math.log(2 * 7 / (4 * 3)),
        "b": wz * math.log(1 * 7 / (2 * 4)) + wx * math.log(1 * 7 / (2 * 3)),
        "z": wz * math.log(4 * 7 / (4 * 4)) + wx * math.log(1 * 7 / (4 * 3)),
    }
    # "x a" is in sentences 0 and 1, with z in 0: PMI log(1 * 7 / (2 * 4)) against z only (x is in the
    # phrase); "x b" (sentence 5) never meets z: 0; "x z" never occurs: 0
    phrase_a = wz * math.log(7 / 8)
    assert got == pytest.approx([words["a"] + phrase_a, words["b"], words["z"], 0.0, words["a"] + phrase_a])
    # an index saved before the stream was kept scores the candidate alone
    with np.load(tmp_path / "c.npz") as z:
        np.savez(tmp_path / "old.npz", **{k: z[k] for k in z.files if k != "stream"})
    old = CoocScorer(tmp_path / "old.npz", shift=0.0, distance_power=1.0)
    assert old.score([["z", "x", w] for w in ("a", "b", "z", "zzz", "a")]) == pytest.approx(
        [words["a"], words["b"], words["z"], 0.0, words["a"]]
    )


def test_score_needs_whole_questions(tmp_path):
    _index(tmp_path, CORPUS)
    with pytest.raises(ValueError, match="five sentences each"):
        CoocScorer(tmp_path / "c.npz").score([["x", "a"]] * 4)


def test_a_file_that_is_no_index_is_one_line(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz: not a readable co-occurrence index"):
        CoocScorer(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def index(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("co") / "cooc.npz"
    corpus = f"data.corpus={sample / 'Holmes_Training_Data'}"
    assert cooc.main(["--out", str(out), "--quiet", "--set", corpus, "data.valid_tokens=2000"]) == 0
    return out


def test_counts_learn_which_thing_fits_the_sentence_beside_a_chance_control(index, sample):
    scorer = CoocScorer(index)
    assert public_accuracy(scorer, sample) >= 0.9
    # the same counts with each word's sentences handed to another word: the knowledge is gone
    rng = np.random.default_rng(0)
    scorer.matrix = scorer.matrix[:, rng.permutation(scorer.matrix.shape[1])]
    scorer.counts = np.asarray(scorer.matrix.sum(0)).ravel()
    assert public_accuracy(scorer, sample) <= 0.5


def test_the_index_is_an_ensemble_member_found_and_named(index, sample, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs" / "hw1_cloze").mkdir(parents=True)
    (tmp_path / "runs" / "hw1_cloze" / "cooc.npz").write_bytes(index.read_bytes())
    found = find_members()
    assert list(found) == ["cooc"] and isinstance(load_scorer(Member("cooc", found["cooc"]), None), CoocScorer)
    out = tmp_path / "out.csv"
    assert predict.main([str(sample / "testing_data.csv"), str(out)]) == 0
    assert "missing: forward, backward, ngram, skipgram" in capsys.readouterr().err
    assert predict.main([str(sample / "testing_data.csv"), str(tmp_path / "flag.csv"), "--cooc", str(index)]) == 0
    assert out.read_text() == (tmp_path / "flag.csv").read_text()
    key = read_answers(sample / "test_answer.csv")
    assert np.mean([read_answers(out)[i] == a for i, a in key.items()]) >= 0.9
