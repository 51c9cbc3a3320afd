import pytest
import torch

from common.vocab import Vocab
from hw4_chatbot.decode import DecodeConfig
from hw4_chatbot.model import ModelConfig, Seq2Seq
from hw4_chatbot.policy import MovingBaseline, reinforce_loss, sample_replies
from hw4_chatbot.rewards import vocab_map


def test_policy_gradient_step_raises_a_toy_reward():
    """Reward = share of the token "yes" in the sampled reply; REINFORCE must increase it."""
    torch.manual_seed(0)
    vocab = Vocab.build(["yes", "no", "maybe", "hello", "there"])
    yes = vocab.id("yes")
    policy = Seq2Seq(len(vocab), ModelConfig(emb=16, hidden=16, dropout=0.0))
    opt = torch.optim.Adam(policy.parameters(), lr=0.02)
    baseline = MovingBaseline(0.9)
    queries = [[vocab.id("hello")], [vocab.id("there")]] * 16
    cfg = DecodeConfig(strategy="sample", max_len=4, no_repeat_ngram=0)

    def mean_reward():
        torch.manual_seed(123)
        replies = sample_replies(policy, queries * 4, vocab, cfg, 8)
        return sum(r.count(yes) / max(len(r), 1) for r in replies) / len(replies)

    before = mean_reward()
    for _ in range(30):
        replies = sample_replies(policy, queries, vocab, cfg, 8)
        reward = torch.tensor([r.count(yes) / max(len(r), 1) for r in replies])
        loss, _ = reinforce_loss(policy, queries, replies, baseline.advantage(reward), vocab, 8)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = mean_reward()
    assert after > before + 0.3, (before, after)


def test_vocab_map_translates_between_vocabularies():
    a, b = Vocab.build(["x", "y", "z"]), Vocab.build(["z", "y"])
    mapping = vocab_map(a, b)
    assert [b.itos[mapping[a.id(t)]] for t in ("x", "y", "z")] == ["<unk>", "y", "z"]
    assert vocab_map(a, a) is None


def test_dull_penalty_exact_partial_and_none():
    """1 for a listed dull reply, 0.5 for one containing a >= 3-token core of one, 0 otherwise."""
    from hw4_chatbot.rewards import dull_penalty

    dull = {(1, 2, 3, 9), (7, 9)}  # "i don't know ." and "what ?" as ids
    cores = [(1, 2, 3)]  # only the long core: "what" alone would hit ordinary replies
    assert dull_penalty([1, 2, 3, 9], dull, cores) == 1.0
    assert dull_penalty([7, 9], dull, cores) == 1.0
    assert dull_penalty([5, 1, 2, 3, 6, 9], dull, cores) == 0.5
    assert dull_penalty([7, 5, 9], dull, cores) == 0.0
    assert dull_penalty([], dull, cores) == 0.0


def test_dialogue_rewards_dull_component_on_real_dull_list():
    from hw4_chatbot.data import normalize
    from hw4_chatbot.rewards import DialogueRewards, RewardWeights

    words = "i don't know . what ? well , sir you were right".split()
    vocab = Vocab.build(
        words
        + [
            "what're",
            "talking",
            "about",
            "mean",
            "you're",
            "sure",
            "not",
            "i'm",
            "think",
            "so",
            "sorry",
            "anything",
            "saying",
            "nothing",
        ]
    )
    model = Seq2Seq(len(vocab), ModelConfig(emb=8, hidden=8, dropout=0.0))
    rewards = DialogueRewards(model, None, vocab, RewardWeights(ease=0, flow=0, coherence=0, backward=0, dull=2.0))
    texts = ("i don't know .", "well , i don't know , sir .", "you were right .")
    replies = [vocab.encode(normalize(s)) for s in texts]
    parts = rewards([[vocab.id("what")]] * 3, replies, None)
    assert set(parts) == {"dull", "total"}  # zero-weight components are not computed
    assert parts["dull"].tolist() == [-1.0, -0.5, 0.0]
    assert parts["total"].tolist() == [-2.0, -1.0, 0.0]


def test_running_norm_standardises_each_component_with_running_stats():
    from hw4_chatbot.rewards import RunningNorm

    norm = RunningNorm(decay=0.5)
    x = torch.tensor([1.0, 3.0])  # mean 2, unbiased var 2
    assert torch.allclose(norm("a", x), torch.tensor([-1.0, 1.0]) / 2**0.5, atol=1e-5)
    y = torch.tensor([5.0, 5.0])  # mean 5, var 0 -> running mean 3.5, var 1.0
    assert torch.allclose(norm("a", y), torch.tensor([1.5, 1.5]), atol=1e-5)
    assert norm.stats["a"] == [3.5, 1.0]
    assert norm("b", torch.tensor([0.0, 100.0])).tolist() == [-0.7071067690849304, 0.7071067690849304]
    norm("c", torch.tensor([0.0, 2.0]))  # mean 1, var 2
    assert norm("c", torch.tensor([100.0, 100.0])).tolist() == [5.0, 5.0]  # (100 - 50.5) / 1, clipped


def test_entropy_bonus_raises_policy_entropy():
    """With zero advantage the loss is -w * entropy: a few steps on it must raise the entropy."""
    from hw4_chatbot.policy import reply_logprob_entropy

    torch.manual_seed(0)
    vocab = Vocab.build(["yes", "no", "maybe"])
    policy = Seq2Seq(len(vocab), ModelConfig(emb=16, hidden=16, dropout=0.0))
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)
    queries, replies = [[vocab.id("yes")]] * 4, [[vocab.id("no")]] * 4
    # first make the policy peaked, by maximum likelihood on one reply
    for _ in range(3):
        logp, n, *_ = reply_logprob_entropy(policy, queries, replies, vocab, 8)
        opt.zero_grad()
        (-logp.mean()).backward()
        opt.step()
    with torch.no_grad():
        before = float(reply_logprob_entropy(policy, queries, replies, vocab, 8)[2].mean())
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)  # fresh: no momentum left from the ML steps
    for _ in range(10):
        loss, _ = reinforce_loss(policy, queries, replies, torch.zeros(4), vocab, 8, entropy_weight=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(reply_logprob_entropy(policy, queries, replies, vocab, 8)[2].mean())
    assert after > before + 0.2, (before, after)


def test_repeat_penalty_counts_batch_and_window_by_hand():
    """(share equal to the reply + share with the same first 3 tokens) / 2, over window + batch."""
    from hw4_chatbot.rewards import RepeatPenalty

    pen = RepeatPenalty(window=4, prefix=3)
    # first batch, empty window: pool = the 4 replies; [5, 9] twice; [1, 2, 3, 4] and [1, 2, 3, 7] share a prefix
    first = pen([[5, 9], [5, 9], [1, 2, 3, 4], [1, 2, 3, 7]])
    assert first.tolist() == [(2 + 2) / 8, (2 + 2) / 8, (1 + 2) / 8, (1 + 2) / 8]
    assert list(pen.recent) == [(5, 9), (5, 9), (1, 2, 3, 4), (1, 2, 3, 7)]
    # validation-style call: pool = 4 remembered + 2 new = 6; nothing is remembered
    second = pen([[5, 9], [8]], remember=False)
    assert second.tolist() == pytest.approx([(3 + 3) / 12, (1 + 1) / 12])
    assert len(pen.recent) == 4
    # the window keeps only the last 4: after this batch it holds [1,2,3,7], [8], [8], [6]
    pen([[8], [8], [6]])
    assert list(pen.recent) == [(1, 2, 3, 7), (8,), (8,), (6,)]


def test_dialogue_rewards_repeat_component_is_minus_the_penalty():
    from hw4_chatbot.rewards import DialogueRewards, RewardWeights

    vocab = Vocab.build("okay . you were right".split())
    model = Seq2Seq(len(vocab), ModelConfig(emb=8, hidden=8, dropout=0.0))
    rewards = DialogueRewards(model, None, vocab, RewardWeights(ease=0, flow=0, coherence=0, backward=0, repeat=2.0))
    okay, right = vocab.encode("okay .".split()), vocab.encode("you were right .".split())
    parts = rewards([[vocab.id("okay")]] * 4, [okay, okay, okay, right], None)
    assert set(parts) == {"repeat", "total"}
    assert parts["repeat"].tolist() == [-0.75, -0.75, -0.75, -0.25]
    assert parts["total"].tolist() == [-1.5, -1.5, -1.5, -0.5]
    # the next batch meets the remembered "okay ." replies: pool = 4 + 2, three plus one "okay ."
    assert rewards([[1], [1]], [okay, right], None)["repeat"].tolist() == pytest.approx([-4 / 6, -2 / 6])


def test_kl_penalty_pulls_the_policy_back_to_the_reference():
    """KL is 0 against an identical model; with zero advantage the KL term alone must shrink it."""
    import copy

    from hw4_chatbot.policy import reply_logprob_entropy

    torch.manual_seed(0)
    vocab = Vocab.build(["yes", "no", "maybe", "hello"])
    reference = Seq2Seq(len(vocab), ModelConfig(emb=16, hidden=16, dropout=0.0)).eval()
    policy = copy.deepcopy(reference)
    queries, replies = [[vocab.id("hello")]] * 4, [[vocab.id("no"), vocab.id("maybe")], [vocab.id("yes")]] * 2
    same = reply_logprob_entropy(policy, queries, replies, vocab, 8, reference)[3]
    assert same.abs().max() < 1e-6
    with torch.no_grad():  # move the policy away from the reference
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    before = reply_logprob_entropy(policy, queries, replies, vocab, 8, reference)[3].detach()
    assert (before > 0.05).all(), before
    opt = torch.optim.Adam(policy.parameters(), lr=0.02)
    for _ in range(40):
        loss, kl = reinforce_loss(
            policy, queries, replies, torch.zeros(4), vocab, 8, reference=reference, kl_weight=1.0
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = reply_logprob_entropy(policy, queries, replies, vocab, 8, reference)[3].detach()
    assert float(after.mean()) < float(before.mean()) / 3, (before, after)
    # without a weight the reference is not even run: no KL reported
    _, kl = reinforce_loss(policy, queries, replies, torch.zeros(4), vocab, 8, reference=reference, kl_weight=0.0)
    assert kl.tolist() == [0.0] * 4


def test_bigram_novelty_by_hand_and_its_sum_is_the_distinct_count():
    from hw4_chatbot.rewards import bigram_novelty

    replies = [[1, 2, 3], [1, 2], [7]]
    pool = [(4, 5), (1, 2)] + [tuple(r) for r in replies]  # (1, 2) three times, (2, 3) and (4, 5) once
    assert bigram_novelty(replies, pool).tolist() == pytest.approx([(1 / 3 + 1) / 2, 1 / 3, 0.0])
    # summed over every bigram of the pool, the credits count its distinct bigrams: distinct-2's numerator
    everything = [list(r) for r in pool]
    lengths = torch.tensor([max(len(r) - 1, 0) for r in everything], dtype=torch.float)
    assert float((bigram_novelty(everything, pool) * lengths).sum()) == pytest.approx(3)
