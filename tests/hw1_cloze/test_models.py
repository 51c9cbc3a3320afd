import itertools
import math

import numpy as np
import pytest
import torch

from hw1_cloze.config import Config, TrainConfig
from hw1_cloze.model import LSTMLanguageModel, ModelConfig
from hw1_cloze.ngram import KneserNey
from hw1_cloze.train import build


@pytest.mark.parametrize("cutoffs", [[10, 40], [500]])
def test_adaptive_softmax_is_a_distribution_and_exact(cutoffs):
    torch.manual_seed(0)
    model = LSTMLanguageModel(100, ModelConfig(emb=16, hidden=24, layers=1, cutoffs=cutoffs))
    h = torch.randn(6, 16)
    full = model.softmax.full_logprobs(h)
    assert full.shape == (6, 100)
    assert torch.allclose(full.exp().sum(1), torch.ones(6), atol=1e-5)
    target = torch.tensor([0, 9, 10, 39, 40, 99])
    assert torch.allclose(
        model.softmax.target_logprob(h, target), full.gather(1, target[:, None]).squeeze(1), atol=1e-5
    )


def test_output_vectors_are_the_input_embeddings():
    model = LSTMLanguageModel(50, ModelConfig(emb=8, hidden=8, layers=1, cutoffs=[20]))
    params = dict(model.named_parameters())
    assert "softmax.embedding.weight" not in params  # shared, counted once
    loss, _ = model(torch.randint(0, 50, (2, 5)), torch.randint(0, 50, (2, 5)))
    loss.backward()
    assert model.embedding.weight.grad[:20].abs().sum() > 0  # head rows got output-side gradient


def test_kneser_ney_sums_to_one_and_prefers_seen_continuations():
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 40, size=4000)
    ids[::7] = 5
    ids[1::7] = 6
    ids[2::7] = 7  # "5 6 7" is frequent
    vocab = 40
    model = KneserNey.build(ids, 4, vocab)
    for ctx, length in (([5, 5, 6], 3), ([9, 8, 30], 3), ([0, 0, 6], 1), ([0, 0, 0], 0)):
        lp = model.logprob(np.array([ctx] * vocab), np.full(vocab, length), np.arange(vocab))
        assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)
    seen = model.logprob(np.array([[4, 5, 6]]), np.array([3]), np.array([7]))
    unseen = model.logprob(np.array([[4, 5, 6]]), np.array([3]), np.array([8]))
    assert seen[0] > unseen[0] + 2
    total = model.sentence_logprob([[5, 6, 7], [8]], eos_id=2)
    assert total.shape == (2,) and np.all(total < 0)


def test_ngram_file_round_trip(tmp_path):
    ids = np.random.default_rng(1).integers(4, 30, size=500)
    model = KneserNey.build(ids, 3, 30)
    model.save(tmp_path / "kn.npz", [f"w{i}" for i in range(30)], 7)
    again, itos, unk_types = KneserNey.load(tmp_path / "kn.npz")
    assert itos[3] == "w3" and unk_types == 7 and again.order == 3
    q = (np.array([[5, 6]]), np.array([2]), np.array([7]))
    assert again.logprob(*q) == pytest.approx(model.logprob(*q))


def test_dev_questions_blank_exactly_one_word_with_five_different_options():
    from common.vocab import Vocab
    from hw1_cloze.scoring import dev_questions, syntax_vectors

    rng = np.random.default_rng(0)
    words = ["".join(t) for t in itertools.product("abcdefg", repeat=3)][:300]
    vocab = Vocab.build(words)
    stream = []
    for _ in range(400):  # sentences of 12 words; word ids follow a fixed successor pattern
        start = int(rng.integers(4, 200))
        stream += [vocab.eos_id] + [4 + (start + 7 * k) % 290 for k in range(12)]
    stream = np.array(stream + [vocab.eos_id])
    kn = KneserNey.build(stream, 3, len(vocab))
    syntax = syntax_vectors(stream, len(vocab))
    for model, decoys in ((None, "sentence"), (kn, "sentence"), (kn, "grammatical")):
        sents, answers = dev_questions(stream, vocab, n=30, band=(10, 300), ngram=model, decoys=decoys, syntax=syntax)
        assert len(sents) == 5 * len(answers) == 150
        for q, answer in enumerate(answers):
            group = sents[5 * q : 5 * q + 5]
            diff = [i for i in range(len(group[0])) if len({s[i] for s in group}) > 1]
            assert len(diff) == 1 and len({s[diff[0]] for s in group}) == 5
            assert group[answer] in [
                vocab.decode(stream[a + 1 : a + 13].tolist()) for a in np.flatnonzero(stream[:-12] == vocab.eos_id)
            ]


def _cloze_fixture():
    """A 3-gram where "dog" follows "the old" most often but is never followed by "walked", while
    24 other words, each rarer after "the old", are seen before "walked home", and "boy" fits the
    question "a b c the old man walked home d e f" better than "man" does."""
    from common.vocab import Vocab

    others = ["".join(p) for p in itertools.product("xyz", "mnopqrst")][:24]
    train = [["a", "b", "c", "the", "old", "man", "walked", "home", "d", "e", "f"]] * 6
    train += [["a", "b", "c", "the", "old", "dog", "barked", "loud", "d", "e", "f"]] * 6
    train += [["a", "b", "c", "the", "old", "boy", "walked", "home", "d", "e", "f"]] * 7
    train += [
        ["g", "h", "i", "the", "old", w, "walked", "home", "d", "e", "f"]
        for k, w in enumerate(others)
        for _ in range(1 + k % 4)
    ]
    tokens = [t for s in train for t in s]
    vocab = Vocab.build(tokens * 2 + ["dog", "man", "boy"])  # the fillers first: only dog, man and others are blankable
    stream = np.array([i for s in train for i in [vocab.eos_id] + vocab.encode(s)] + [vocab.eos_id])
    question = [vocab.eos_id] + vocab.encode(train[0])
    held_out = np.array(question * 40 + [vocab.eos_id])
    return vocab, KneserNey.build(stream, 3, len(vocab)), held_out, others


def test_dev_decoys_fit_the_right_context_and_never_beat_the_true_word():
    from hw1_cloze.scoring import dev_questions

    vocab, kn, held_out, others = _cloze_fixture()
    band = (min(vocab.stoi[w] for w in ["man", "dog", "boy", *others]), len(vocab))
    assert max(vocab.stoi[w] for w in "abcdefghi") < band[0]
    chosen = {}
    for mode in ("left", "sentence", "below"):
        sents, answers = dev_questions(held_out, vocab, n=40, band=band, ngram=kn, decoys=mode)
        assert len(answers) == 40
        blanks = [s[5] for s in sents]
        chosen[mode] = set(blanks) - {"man"}
        assert all(blanks[5 * q + a] == "man" for q, a in enumerate(answers))
        if mode == "below":
            lp = kn.sentence_logprob([vocab.encode(s) for s in sents], vocab.eos_id).reshape(-1, 5)
            truth = lp[np.arange(40), answers]
            assert np.all(np.sort(lp, axis=1)[:, -1] == truth) and np.all((lp < truth[:, None]).sum(1) == 4)
    assert "dog" in chosen["left"]  # the left context alone favours it
    for mode in ("sentence", "below"):  # both sides: dog is among the worst fits
        assert "dog" not in chosen[mode] and chosen[mode] <= {"boy", *others}
    assert "boy" in chosen["sentence"] and "boy" not in chosen["below"]


def test_syntax_vectors_are_hellinger_affinities_of_neighbour_distributions():
    from hw1_cloze.scoring import syntax_vectors

    # context 3: neighbours 0, 1 and 2 are their own buckets, every other id shares the fourth
    stream = np.array([0, 1, 5, 2, 0, 1, 6, 2, 0, 7, 9, 0, 1, 8, 2, 0, 8, 2, 0])
    v = syntax_vectors(stream, 10, context=3)
    assert v.shape == (10, 8)
    assert np.isclose(v[5] @ v[6], 1.0)  # both between 1 and 2
    assert np.isclose(v[5] @ v[7], 0.0)  # after 0, before another word
    assert np.isclose(v[5] @ v[8], (1 / np.sqrt(2) + 1) / 2)  # after 1 or 0 half the time each, before 2


def test_grammatical_decoys_are_the_pool_words_used_most_like_the_true_word():
    from hw1_cloze.scoring import SYNTAX_POOL, dev_questions

    vocab, kn, held_out, others = _cloze_fixture()
    band = (min(vocab.stoi[w] for w in ["man", "dog", "boy", *others]), len(vocab))
    alike = ["boy", *others[3::4][: SYNTAX_POOL - 1]]  # all in the n-gram's pool of 20
    syntax = np.eye(len(vocab))
    for w in alike:
        syntax[vocab.stoi[w]] = syntax[vocab.stoi["man"]]
    sents, answers = dev_questions(held_out, vocab, n=40, band=band, ngram=kn, decoys="grammatical", syntax=syntax)
    assert len(answers) == 40
    decoys = {s[5] for s in sents} - {"man"}
    assert decoys <= set(alike) and len(decoys) == SYNTAX_POOL
    with pytest.raises(ValueError, match="syntax"):
        dev_questions(held_out, vocab, n=1, band=band, ngram=kn, decoys="grammatical")


def test_learning_rate_warms_up_then_decays_to_the_floor_at_the_last_step():
    cfg = Config(
        model=ModelConfig(emb=8, hidden=8, layers=1, cutoffs=[20]),
        train=TrainConfig(lr=1.0, warmup_steps=4, min_lr_ratio=0.1),
    )
    learner = build(cfg, 50, total_steps=20, device=torch.device("cpu"))
    lrs = []
    for _ in range(21):
        lrs.append(learner.opt.param_groups[0]["lr"])
        learner.opt.step()
        learner.sched.step()
    assert lrs[:5] == pytest.approx([1e-3, 0.25, 0.5, 0.75, 1.0])
    assert lrs[12] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # half of the decay behind
    assert lrs[20] == pytest.approx(0.1)


def test_spread_decoys_come_from_every_octave_within_the_spread():
    from hw1_cloze.scoring import NEAR, frequency_neighbours

    alpha = np.ones(100_000, dtype=bool)
    alpha[::7] = False  # not words: never offered
    rng = np.random.default_rng(0)
    near = frequency_neighbours(5000, 100, alpha, rng)  # the default: NEAR ranks around the word
    window = [w for w in range(5000 - NEAR // 2, 5000 + NEAR // 2) if alpha[w] and w != 5000]
    assert near.tolist() == window
    assert 5000 not in near and alpha[near].all()
    wide = frequency_neighbours(5000, 100, alpha, rng, spread=16)
    assert len(wide) == NEAR and len(set(wide)) == NEAR and 5000 not in wide and alpha[wide].all()
    assert wide.min() >= 5000 / 16 and wide.max() <= 5000 * 16
    per_octave = np.histogram(np.log2(wide / 5000), bins=8, range=(-4, 4))[0]
    assert per_octave.min() > NEAR / 8 * 0.6 and per_octave.max() < NEAR / 8 * 1.4  # log-uniform, not rank-uniform
    assert frequency_neighbours(200, 100, alpha, rng, spread=2).min() >= 100  # never above the band's top


def test_balanced_decoys_put_the_true_word_at_every_frequency_place():
    from hw1_cloze.scoring import balanced_decoys

    pool, rng = np.array([10, 20, 30, 50, 60, 70, 80]), np.random.default_rng(0)
    for commoner in range(5):
        got = balanced_decoys(pool, 40, commoner, rng)
        if commoner > 3:  # only 3 of the pool are commoner (lower ranks) than 40
            assert got is None
            continue
        assert len(set(got)) == 4 and set(got) <= set(pool) and (got < 40).sum() == commoner
    assert balanced_decoys(pool, 5, 0, rng) is not None and balanced_decoys(pool, 5, 1, rng) is None
