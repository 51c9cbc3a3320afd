"""Decoder behaviour: batched beam search, greedy, scheduled sampling and LM mode."""

import math

import pytest
import torch

from hw2_video_caption.config import TrainConfig
from hw2_video_caption.model import ModelConfig, VideoCaptioner
from hw2_video_caption.train import teacher_prob


def _model(**kw) -> VideoCaptioner:
    torch.manual_seed(0)
    model = VideoCaptioner(ModelConfig(feat_dim=16, proj=8, hidden=12, embed=6, **kw), vocab_size=9)
    return model.eval()


@pytest.mark.parametrize("rnn,attention", [("lstm", "bahdanau"), ("gru", "luong")])
def test_batched_beam_equals_one_video_at_a_time(rnn, attention):
    model = _model(rnn=rnn, attention=attention)
    feats = torch.rand(4, 80, 16)
    together = model.beam_search(feats, bos=1, eos=2, max_len=7, width=3, banned=[0, 1, 3])
    alone = [model.beam_search(feats[i : i + 1], 1, 2, 7, 3, banned=[0, 1, 3])[0] for i in range(4)]
    assert together == alone
    assert all(len(s) <= 7 and not {0, 1, 2, 3} & set(s) for s in together)


def test_beam_width_one_is_greedy():
    model = _model()
    feats = torch.rand(3, 80, 16)
    assert model.beam_search(feats, 1, 2, 6, width=1) == model.greedy(feats, 1, 2, 6)


def test_beam_finds_a_caption_at_least_as_likely_as_greedy():
    model = _model()
    feats = torch.rand(5, 80, 16)

    def logp(i, seq):  # log-probability of seq + <eos> for video i
        inputs = torch.tensor([[1] + seq])
        out = torch.log_softmax(model(feats[i : i + 1], inputs), -1)[0]
        return sum(out[t, w].item() for t, w in enumerate(seq + [2]))

    greedy = model.greedy(feats, 1, 2, 8)
    beam = model.beam_search(feats, 1, 2, 8, width=4, alpha=0.0)
    for i in range(5):
        if len(greedy[i]) < 8:  # greedy finished, so it is a candidate beam search could have kept
            assert logp(i, beam[i]) >= logp(i, greedy[i]) - 1e-5


def test_forward_shapes_and_language_model_mode():
    model = _model().train()
    inputs = torch.randint(0, 9, (3, 5))
    assert model(torch.rand(3, 80, 16), inputs).shape == (3, 5, 9)
    assert model(None, inputs).shape == (3, 5, 9)  # decoder alone, for caption LM pre-training
    assert model(torch.rand(3, 80, 16), inputs, teacher_p=0.0).shape == (3, 5, 9)


def test_inverse_sigmoid_schedule_decays():
    cfg = TrainConfig(ss_k=100.0)
    probs = [teacher_prob(s, cfg) for s in (0, 200, 500, 1000, 10**6)]
    assert probs[0] == pytest.approx(100 / 101)
    assert all(a > b for a, b in zip(probs, probs[1:]))
    assert teacher_prob(10**6, TrainConfig(ss_k=100.0, ss_floor=0.25)) == 0.25
    assert teacher_prob(10**6, TrainConfig(ss_k=0.0)) == 1.0


class MarkovCaptioner(VideoCaptioner):
    """A "model" whose next-word distribution depends only on the previous word (``table``)."""

    def __init__(self, table: dict[int, dict[int, float]], vocab_size: int):
        super().__init__(ModelConfig(feat_dim=4, proj=2, hidden=2, embed=2), vocab_size)
        probs = torch.full((vocab_size, vocab_size), 1e-9)
        for prev, nxt in table.items():
            for word, p in nxt.items():
                probs[prev, word] = p
        self.table = probs.log()

    def encode(self, feats):
        b = feats.size(0)
        return torch.zeros(b, 1, 1), torch.zeros(b, 1, 1), (torch.zeros(b, 1),)

    def step(self, tokens, feed, state, enc, keys):
        return self.table[tokens], feed, state


def test_nbest_is_sorted_distinct_and_has_k_hypotheses():
    model = _model()
    for hyps in model.beam_nbest(torch.rand(4, 80, 16), 1, 2, 7, width=4, banned=[0, 1, 3]):
        scores, seqs = [s for s, _ in hyps], [tuple(q) for _, q in hyps]
        assert len(hyps) == 4 and scores == sorted(scores, reverse=True) and len(set(seqs)) == 4


def test_nbest_waits_for_longer_better_captions():
    # bos(1) -> a(4) .6 | b(5) .4;  a, b -> eos(2) .5 | c(6) .5;  c -> d(7) -> e(8) -> eos, each ~1.
    # With width 2 the short "a" and "b" end first; stopping then (as a search that quits when
    # `width` captions have ended does) would return "a" at log(.3) / 2 = -0.60, but "a c d e"
    # scores log(.3) / 5 = -0.24 with length normalisation (alpha = 1).
    table = {1: {4: 0.6, 5: 0.4}, 4: {2: 0.5, 6: 0.5}, 5: {2: 0.5, 6: 0.5}, 6: {7: 1.0}, 7: {8: 1.0}, 8: {2: 1.0}}
    model = MarkovCaptioner(table, 9)
    hyps = model.beam_nbest(torch.zeros(1, 80, 4), 1, 2, 10, width=2, alpha=1.0)[0]
    assert [q for _, q in hyps] == [[4, 6, 7, 8], [5, 6, 7, 8]]
    assert hyps[0][0] == pytest.approx(math.log(0.3) / 5, abs=1e-4)
    assert model.beam_search(torch.zeros(1, 80, 4), 1, 2, 10, width=2, alpha=1.0) == [[4, 6, 7, 8]]
    # with raw log-probabilities (alpha = 0) the short captions are rightly the best ones
    raw = model.beam_nbest(torch.zeros(1, 80, 4), 1, 2, 10, width=2, alpha=0.0)[0]
    assert [q for _, q in raw] == [[4], [4, 6, 7, 8]]
