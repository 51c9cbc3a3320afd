import math

import pytest
import torch

from common.vocab import Vocab
from hw4_chatbot.data import PairBatches
from hw4_chatbot.evaluate import corpus_bleu, distinct, dull_rate, perplexity, top_reply_share


def test_distinct_and_dull_by_hand():
    replies = [["i", "don't", "know", "."], ["i", "know", "."], ["what", "?"], []]
    assert distinct(replies, 1) == pytest.approx(6 / 9)  # i don't know . what ? over 9 tokens
    assert distinct(replies, 2) == pytest.approx(5 / 6)  # "know ." twice
    assert distinct([["a", "b"], ["a", "b"]], 2) == pytest.approx(1 / 2)
    assert dull_rate(replies) == pytest.approx(3 / 4)  # "i don't know .", "i know .", "what ?"


def test_top_reply_share_by_hand():
    replies = [["okay", "."], ["okay", "."], ["okay", "!"], ["no", "."], ["okay", "."]]
    assert top_reply_share(replies) == pytest.approx(3 / 5)  # "okay ." 3 times; "okay !" is another reply
    assert top_reply_share([]) == 0.0


def test_bleu_by_hand():
    ref = ["the", "cat", "sat", "on", "the", "mat"]
    assert corpus_bleu([ref], [ref]) == pytest.approx(100.0)
    hyp = ["the", "cat", "sat", "on", "a", "mat"]
    # clipped precisions 5/6, 3/5, 2/4, 1/3; same length so no brevity penalty
    expected = 100 * math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(2 / 4) + math.log(1 / 3)) / 4)
    assert corpus_bleu([hyp], [ref]) == pytest.approx(expected)
    short = ["the", "cat", "sat"]  # precisions 1, 1, 1, 0.1/0 -> no 4-grams at all: 0
    assert corpus_bleu([short], [ref]) == 0.0
    assert corpus_bleu([[]], [ref]) == 0.0


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.v = vocab_size

    def forward(self, src, src_len, tgt_in):
        return torch.zeros(*tgt_in.shape, self.v)


def test_perplexity_of_uniform_model_is_vocab_size():
    vocab = Vocab.build(["a", "b", "c", "d"])
    data = PairBatches([(["a"], ["b", "c"]), (["d"], ["a"])], vocab)
    assert perplexity(Uniform(len(vocab)), data, torch.device("cpu")) == pytest.approx(len(vocab))
