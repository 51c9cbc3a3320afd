import random

import torch

from common.batching import pad_batch
from common.vocab import Vocab
from hw4_chatbot.decode import DecodeConfig, beam_search, block_repeats, decode_batch, greedy_or_sample
from hw4_chatbot.model import ModelConfig, Seq2Seq, reply_nll

WORDS = [f"w{i}" for i in range(8)]
TRANSLATE = {w: f"r{7 - i}" for i, w in enumerate(WORDS)}  # the reply is a fixed function of the query


def synthetic(n, rng):
    out = []
    for _ in range(n):
        q = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        out.append((q, [TRANSLATE[w] for w in reversed(q)]))
    return out


def encode(pairs, vocab):
    src, src_len = pad_batch([vocab.encode(q, eos=True) for q, _ in pairs])
    tgt, _ = pad_batch([vocab.encode(r, bos=True, eos=True) for _, r in pairs])
    return {"src": src, "src_len": src_len, "tgt_in": tgt[:, :-1], "tgt_out": tgt[:, 1:]}


def test_learns_a_synthetic_dialogue_task_to_near_perfect_accuracy():
    torch.manual_seed(0)
    rng = random.Random(0)
    vocab = Vocab.build(WORDS + list(TRANSLATE.values()))
    model = Seq2Seq(len(vocab), ModelConfig(emb=32, hidden=64, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(600):
        loss, _ = reply_nll(model, encode(synthetic(32, rng), vocab), vocab.pad_id)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test = synthetic(200, random.Random(1))
    b = encode(test, vocab)
    for cfg in (
        DecodeConfig(strategy="greedy", no_repeat_ngram=0),
        DecodeConfig(strategy="beam", beam=3, no_repeat_ngram=0),
    ):
        out = decode_batch(model, b["src"], b["src_len"], cfg)
        exact = sum(vocab.decode(ids) == r for ids, (_, r) in zip(out, test)) / len(test)
        assert exact >= 0.95, (cfg.strategy, exact)


def test_ngram_blocking():
    def banned(seq, n):
        out = block_repeats(torch.zeros(1, 10), torch.tensor([seq]), n)
        return set(torch.nonzero(out[0] == float("-inf")).flatten().tolist())

    assert banned([5, 6, 7, 5, 6], 3) == {7}
    assert banned([5, 6, 7], 3) == set()
    assert banned([4, 4], 2) == {4}
    assert banned([5, 6, 5, 7, 5], 2) == {6, 7}
    assert banned([3, 8], 1) == {3, 8}
    assert banned([5, 6, 5, 6], 0) == set()


def test_beam_is_sorted_and_top_k_1_sampling_is_greedy():
    torch.manual_seed(0)
    model = Seq2Seq(30, ModelConfig(emb=16, hidden=16, dropout=0.0)).eval()
    src = torch.randint(4, 30, (3, 5))
    src_len = torch.tensor([5, 3, 1])
    hyps = beam_search(model, src, src_len, DecodeConfig(beam=4, max_len=6))
    for options in hyps:
        assert 1 <= len(options) <= 4
        assert [h[0] for h in options] == sorted((h[0] for h in options), reverse=True)
    greedy = greedy_or_sample(model, src, src_len, DecodeConfig(max_len=6))
    sampled = greedy_or_sample(model, src, src_len, DecodeConfig(max_len=6, top_k=1), sample=True)
    assert greedy == sampled
    assert all(len(s) <= 6 for s in greedy)


def test_lstm_variant_learns_the_task_too():
    torch.manual_seed(0)
    rng = random.Random(0)
    vocab = Vocab.build(WORDS + list(TRANSLATE.values()))
    model = Seq2Seq(len(vocab), ModelConfig(cell="lstm", emb=32, hidden=64, layers=2, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    short = [(q[:2], r[-2:]) for q, r in synthetic(2000, rng)]  # 2-word queries: a quick task for 2 layers
    for i in range(250):
        loss, _ = reply_nll(model, encode(short[i * 8 % 2000 :][:32], vocab), vocab.pad_id)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = [(q[:2], r[-2:]) for q, r in synthetic(100, random.Random(1))]
    b = encode(test, vocab)
    out = greedy_or_sample(model.eval(), b["src"], b["src_len"], DecodeConfig(max_len=4))
    exact = sum(vocab.decode(ids) == r for ids, (_, r) in zip(out, test)) / len(test)
    assert exact >= 0.9, exact


def test_beam_rows_are_independent_and_beam_finds_likelier_replies_than_greedy():
    torch.manual_seed(0)
    model = Seq2Seq(40, ModelConfig(emb=16, hidden=16, dropout=0.0)).eval()
    src_len = torch.tensor([5, 4, 3, 5, 2, 1])
    src = torch.randint(4, 40, (6, 5)).masked_fill(torch.arange(5) >= src_len.unsqueeze(1), 0)  # 0: padding
    for early_stop in (True, False):
        cfg = DecodeConfig(beam=4, max_len=8, early_stop=early_stop, length_alpha=0.0, no_repeat_ngram=0)
        together = beam_search(model, src, src_len, cfg)
        alone = [
            beam_search(model, src[i : i + 1, : int(n)], src_len[i : i + 1], cfg)[0] for i, n in enumerate(src_len)
        ]
        assert [[h[2] for h in row] for row in together] == [[h[2] for h in row] for row in alone]
    # without length normalisation the score is log p(reply); beam's best is at least greedy's
    greedy = greedy_or_sample(model, src, src_len, DecodeConfig(max_len=8, no_repeat_ngram=0))
    tgt = pad_batch([[1, *g, 2] for g in greedy])[0]
    greedy_logp, _ = model.sequence_logprob(src, src_len, tgt[:, :-1], tgt[:, 1:])
    best = [
        row[0][1]
        for row in beam_search(
            model, src, src_len, DecodeConfig(beam=4, max_len=8, length_alpha=0.0, no_repeat_ngram=0, early_stop=False)
        )
    ]
    assert all(b >= g - 1e-4 for b, g in zip(best, greedy_logp.tolist()))


def test_dull_penalty_moves_a_listed_reply_down_the_beam():
    torch.manual_seed(0)
    model = Seq2Seq(30, ModelConfig(emb=16, hidden=16, dropout=0.0)).eval()
    src, src_len = torch.randint(4, 30, (2, 4)), torch.tensor([4, 4])
    plain = beam_search(model, src, src_len, DecodeConfig(beam=4, max_len=6))
    dull = [plain[0][0][2]]  # the first query's best reply, now declared dull
    for penalty, moved in ((0.0, False), (100.0, True)):
        hyps = beam_search(model, src, src_len, DecodeConfig(beam=4, max_len=6, dull_penalty=penalty), dull=dull)
        assert (hyps[0][0][2] != dull[0]) == moved
        assert hyps[1][0][2] == plain[1][0][2] or plain[1][0][2] == dull[0]


def test_no_unk_never_emits_unk_even_when_it_is_the_likeliest_token():
    torch.manual_seed(0)
    model = Seq2Seq(30, ModelConfig(emb=16, hidden=16, dropout=0.0)).eval()
    with torch.no_grad():
        model.out_bias[Vocab.unk_id] = 50.0  # <unk> wins every step unless it is forbidden
    src, src_len = torch.randint(4, 30, (3, 5)), torch.tensor([5, 3, 1])
    for cfg in (DecodeConfig(max_len=6), DecodeConfig(strategy="beam", beam=3, max_len=6)):
        plain = decode_batch(model, src, src_len, cfg)
        banned = decode_batch(model, src, src_len, DecodeConfig(**{**vars(cfg), "no_unk": True}))
        assert all(Vocab.unk_id in reply for reply in plain)
        assert all(Vocab.unk_id not in reply for reply in banned)
