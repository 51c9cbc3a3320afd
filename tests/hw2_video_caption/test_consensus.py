"""Consensus (MBR) choice and the nearest-neighbour captioner on hand-made cases."""

import numpy as np
import pytest

from hw2_video_caption.consensus import (
    Bleu1,
    Candidate,
    CaptionPrior,
    CiderD,
    NeighbourCaptioner,
    bleu1_tokens,
    mbr_choose,
)
from hw2_video_caption.evaluate import bleu1, cider_d


def _c(text: str, score: float = 0.0) -> Candidate:
    return Candidate(tuple(text.split()), score)


def test_mbr_picks_the_consensus_candidate_not_the_top_one():
    # The model ranks an odd caption first; three of the four candidates agree on "a man is cooking".
    cands = [
        _c("a cat sleeps here", -0.5),
        _c("a man is cooking food", -0.9),
        _c("a man is cooking", -1.0),
        _c("the man is cooking", -1.1),
    ]
    support = [(1.0, (c.words,)) for c in cands]
    # Candidate 2 against the other three: 1/4 ("a" of "a cat sleeps here"), 4/4 * exp(1 - 5/4) and 3/4;
    # candidate 1 against the others: 1/5, 4/5 and 3/5 (c = 5 > r: no penalty).
    assert mbr_choose(cands, support, bleu1_tokens) == 2
    assert (0.25 + np.exp(-0.25) + 0.75) / 3 > (0.2 + 0.8 + 0.6) / 3
    # A large enough model weight restores the top beam.
    assert mbr_choose(cands, support, bleu1_tokens, model_weight=10.0) == 0


def test_a_candidate_is_not_compared_with_itself():
    cands = [_c("a dog runs"), _c("a man is cooking")]
    # Each candidate appears once in the support; without leaving it out each would score 1 against itself.
    support = [(1.0, (cands[0].words,)), (1.0, (cands[1].words,)), (1.0, (tuple("a man is eating".split()),))]
    assert mbr_choose(cands, support, bleu1_tokens) == 1


@pytest.mark.parametrize(
    "cand,refs",
    [("a man", ["a man is running", "a man is"]), ("a b c", ["a b", "a b c d"]), ("a a a", ["a b c"]), ("x", ["a"])],
)
def test_token_bleu1_equals_the_course_metric(cand, refs):
    assert bleu1_tokens(cand.split(), [r.split() for r in refs]) == pytest.approx(bleu1(cand, refs))


def test_cider_similarity_equals_the_metric_with_the_same_document_frequencies():
    refs = {"v1": ["a man is cooking", "a man cooks food"], "v2": ["a dog is running", "the dog runs"]}
    cands = {"v1": "a man is cooking food", "v2": "a dog runs"}
    sim = CiderD([[r.split() for r in rs] for rs in refs.values()])
    mine = np.mean([sim(cands[v].split(), [r.split() for r in refs[v]]) for v in refs])
    assert mine == pytest.approx(cider_d(cands, refs)) and mine > 0


def test_neighbour_captioner_returns_the_neighbours_consensus_caption():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 5
    pooled = np.concatenate([c + rng.normal(size=(4, 32)) * 0.1 for c in centres]).astype(np.float32)
    topics = ["a man is cooking", "a dog is running", "a woman is singing"]
    sets = []
    for topic in topics:
        for i in range(4):
            # every video of a topic has the topic caption and a variant of its own
            sets.append([topic, topic.replace("a ", "the ", 1) + f" {['fast', 'now', 'here', 'well'][i]}"])
    nn = NeighbourCaptioner(pooled, sets)
    query = (centres[1] + rng.normal(size=32) * 0.1)[None].astype(np.float32)
    assert {j for _, j in nn.neighbours(query, 4)[0]} == {4, 5, 6, 7}
    assert nn.caption(query, 4, bleu1_tokens) == ["a dog is running"]
    assert nn.caption(query, 4, CiderD([[c.split() for c in s] for s in sets])) == ["a dog is running"]


def test_prior_pulls_an_uncertain_choice_towards_the_caption_most_videos_share():
    training = [
        ["a man is playing a guitar", "a man plays"],
        ["a man is playing a guitar", "a man is singing"],
        ["a man is playing a guitar", "someone plays music"],
        ["a cat is eating"],
    ]
    prior = CaptionPrior(training, sample=10)
    # mean BLEU@1 over the four sets: 1, 1, 1 and 2/6 ("a", "is" of "a cat is eating"); the next best,
    # "a man is singing": 3/4, 1, 3/4, 2/4
    assert [c.words for c in prior.pool(2)] == [
        tuple("a man is playing a guitar".split()),
        tuple("a man is singing".split()),
    ]
    assert prior(tuple("a man is singing".split()), bleu1_tokens) == pytest.approx(0.75)
    cands = [_c("a dog is barking"), _c("a bird sings")] + prior.pool(1)
    support = [(1.0, (tuple("a dog is barking".split()),)), (1.0, (tuple("a bird sings".split()),))]
    assert mbr_choose(cands, support, bleu1_tokens) == 0  # "a dog is barking" shares "a" with "a bird sings"
    assert mbr_choose(cands, support, bleu1_tokens, prior=prior, prior_weight=0.9) == 2
    assert mbr_choose(cands, support, Bleu1(), prior=prior, prior_weight=0.9) == 2


def test_bleu1_matrix_equals_the_pairwise_metric():
    # brevity penalty ties ("a b" and "a b c d" are both 1 word from "a b c"): the first reference wins
    sets = [("a b c d".split(), "a b".split()), ("a b".split(), "a b c d".split()), ("x y".split(),), ()]
    sets = [tuple(tuple(r) for r in s) for s in sets]
    cands = [tuple(c.split()) for c in ("a b c", "a a a", "b", "a b c d e f g", "z")] + [()]
    matrix = Bleu1().matrix(cands, sets)
    assert matrix.shape == (6, 4)
    assert matrix == pytest.approx(np.array([[bleu1_tokens(c, s) for s in sets] for c in cands]), abs=1e-12)
    # "a b c": 3 of 3 words; closest length 4 in the first set (penalty exp(1 - 4/3)), 2 in the second (none)
    assert matrix[0, 0] == pytest.approx(np.exp(1 - 4 / 3)) and matrix[0, 1] == pytest.approx(1.0)
    assert matrix[1, 1] == pytest.approx(1 / 3)  # "a" is used once in each reference: clipped to 1 of 3
