"""The course BLEU@1 (both variants), CIDEr-D and the evaluate command against hand-computed values."""

import math

import pytest

from hw2_video_caption import evaluate
from hw2_video_caption.evaluate import bleu1, bleu1_original, cider_d, score_all


def test_perfect_match_ignores_case_and_trailing_period():
    assert bleu1("a man is playing a guitar", ["A man is playing a guitar."]) == 1.0
    assert bleu1("A MAN", ["a man"]) == 1.0


def test_clipped_unigram_precision():
    # "a" occurs twice in the candidate but once in the reference: clipped to 1 -> 2/4, c == r so no penalty.
    assert bleu1("a man a man", ["a man is here"]) == pytest.approx(0.5)


def test_brevity_penalty_uses_closest_reference_length():
    # c = 2; reference lengths 4 and 3 -> r = 3; penalty exp(1 - 3/2).
    assert bleu1("a man", ["a man is running", "a man is"]) == pytest.approx(math.exp(-0.5))


def test_length_ties_go_to_the_first_reference():
    # c = 3, lengths 2 and 4 are equally close: the first one listed is r.
    assert bleu1("a b c", ["a b", "a b c d"]) == pytest.approx(1.0)  # r = 2 < c: no penalty
    assert bleu1("a b c", ["a b c d", "a b"]) == pytest.approx(math.exp(1 - 4 / 3))


def test_only_a_final_period_is_stripped_like_the_course_script():
    assert bleu1("a man is cooking", ["A man is cooking..."]) == 1.0
    # "cooking . " : rstrip('.') sees the space first, so " ." stays a token (length 5 > c = 4).
    assert bleu1("a man is cooking", ["A man is cooking . "]) == pytest.approx(math.exp(1 - 5 / 4))


def test_empty_caption_scores_zero():
    assert bleu1("", ["a man"]) == 0.0
    assert bleu1("   ", ["a man"]) == 0.0
    assert bleu1_original("", ["a man", "a dog"]) == 0.0


def test_original_variant_averages_over_references():
    # vs "a man": 1.0; vs "a woman is here": precision 1/2, c=2, r=4 -> 0.5 * exp(1 - 2).
    expected = (1.0 + 0.5 * math.exp(-1)) / 2
    assert bleu1_original("a man", ["a man", "a woman is here"]) == pytest.approx(expected)
    assert bleu1("a man", ["a man", "a woman is here"]) == 1.0  # "new": one score against all


def test_cider_d_hand_computed():
    refs = {"v1": ["a b"], "v2": ["c d"]}
    # idf of every gram = log(2) - log(1); identical vectors: cosine 1 for 1- and 2-grams, 0 for 3-, 4-grams.
    assert cider_d({"v1": "a b", "v2": "c d"}, refs) == pytest.approx(5.0)
    assert cider_d({"v1": "a b", "v2": "x y"}, refs) == pytest.approx(2.5)
    assert cider_d({"v1": "", "v2": ""}, refs) == 0.0


def test_score_all_counts_distinct_captions():
    labels = {"v1": ["a man is cooking"], "v2": ["a dog is running"]}
    s = score_all({"v1": "a man is cooking", "v2": "a man is cooking"}, labels)
    assert s["distinct"] == 1 and s["videos"] == 2
    assert s["bleu1_new"] == pytest.approx((1.0 + 0.5) / 2)


def test_evaluate_command(tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text('[{"caption": ["A man is cooking."], "id": "v1.avi"}]')
    caps = tmp_path / "out.txt"
    caps.write_text("v1.avi,a man is cooking\r\n")
    assert evaluate.main([str(labels), str(caps), "--constant"]) == 0
    out = capsys.readouterr().out
    assert "BLEU@1 new 1.0000  original 1.0000" in out and "constant caption" in out
    caps.write_text("v1.avi,a man\nv9.avi,a dog\n")
    assert evaluate.main([str(labels), str(caps)]) == 2
    assert "v9.avi" in capsys.readouterr().err
