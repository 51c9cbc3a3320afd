import torch

from common.vocab import Vocab
from hw4_chatbot.decode import DecodeConfig
from hw4_chatbot.model import ModelConfig, Seq2Seq
from hw4_chatbot.rewards import vocab_map
from hw4_chatbot.rl import MovingBaseline, reinforce_loss, sample_replies


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
        loss = reinforce_loss(policy, queries, replies, baseline.advantage(reward), vocab, 8)
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
