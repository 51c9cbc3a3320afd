"""The skip-gram coherence scorer, the dev-tuned weights, and predict's default ensemble."""

import math
import shutil

import numpy as np
import pytest
import torch

from common.checkpoint import load_checkpoint
from common.errors import UserError
from common.vocab import SPECIALS
from hw1_cloze import ngram, predict, semantic, train
from hw1_cloze.config import Config
from hw1_cloze.data import read_answers
from hw1_cloze.ensemble import Member, write_ensemble
from hw1_cloze.model import EMB_STD, ModelConfig
from hw1_cloze.semantic import SkipGramScorer, save_model
from hw1_cloze.train import build, init_embeddings
from hw1_cloze.tune import fit_grid, fit_logit, grid_weights, tune_weights
from tests.hw1_cloze.conftest import public_accuracy, tiny_train_args


@pytest.fixture(scope="module")
def skipgram(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("sg") / "skipgram.npz"
    argv = [
        "--out",
        str(out),
        "--quiet",
        "--set",
        f"data.corpus={sample / 'Holmes_Training_Data'}",
        "data.max_vocab=2000",
        "data.valid_tokens=2000",
        "model.dim=16",
        "model.window=8",
        "model.epochs=10",
        "model.sample=0",
        "model.workers=1",
    ]
    assert semantic.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def kn(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("kn") / "kn4.npz"
    argv = [
        str(sample / "Holmes_Training_Data"),
        "--order",
        "4",
        "--out",
        str(out),
        "--max-vocab",
        "2000",
        "--valid-tokens",
        "2000",
        "--quiet",
    ]
    assert ngram.main(argv) == 0
    return out


def _accuracy(path, sample) -> float:
    predicted, key = read_answers(path), read_answers(sample / "test_answer.csv")
    return sum(predicted[i] == key[i] for i in key) / len(key)


def test_skipgram_learns_which_thing_fits_the_sentence_beside_a_chance_control(skipgram, sample):
    scorer = SkipGramScorer(skipgram)
    assert public_accuracy(scorer, sample) >= 0.9
    # the same vectors handed to the wrong words: the co-occurrence knowledge is gone
    scorer.vectors = scorer.vectors[np.random.default_rng(0).permutation(len(scorer.vectors))]
    assert public_accuracy(scorer, sample) <= 0.5


def test_skipgram_output_is_a_distribution_over_the_vocabulary(skipgram):
    scorer = SkipGramScorer(skipgram)
    words = np.flatnonzero(scorer.known)
    candidate = np.array([scorer.vocab.id("cat")])
    total = sum(math.exp(scorer.context_logprob(candidate, np.array([w]))[0]) for w in words)
    assert total == pytest.approx(1.0, abs=1e-4)


def test_skipgram_score_equals_a_hand_computed_value(tmp_path):
    # vocabulary: specials, then x y z a b c d e; Huffman paths by hand: x -> node 0 (code 0) then node 1
    # (code 1); y -> node 0 (code 1)
    itos = [*SPECIALS, "x", "y", "z", "a", "b", "c", "d", "e"]
    n = len(itos)
    vectors = np.zeros((n, 2), dtype=np.float32)
    for i, v in zip(range(7, 12), ([1, 0], [0, 1], [1, 1], [-1, 0], [0, 0])):
        vectors[i] = v
    nodes = np.array([[2.0, 0.0], [0.0, 0.5]], dtype=np.float32)
    points = np.full((n, 2), -1, dtype=np.int32)
    codes = np.zeros((n, 2), dtype=np.int8)
    points[4], codes[4] = [0, 1], [0, 1]
    points[5, 0], codes[5, 0] = 0, 1
    known = np.zeros(n, dtype=bool)
    known[4:] = True
    save_model(
        tmp_path / "m.npz",
        {"vectors": vectors, "nodes": nodes, "points": points, "codes": codes, "known": known},
        itos,
        unk_types=7,
        config={},
    )
    sentences = [["x", "z", w, "y"] for w in ("a", "b", "c", "d", "e")]  # z has no Huffman path: no terms

    def log_sigmoid(t):
        return -math.log1p(math.exp(-t))

    # candidate vector v: log p(x|v) = log s(v.n0) + log s(-v.n1); log p(y|v) = log s(-v.n0)
    def expected(v, wx=1.0, wy=1.0):
        d0, d1 = 2 * v[0], 0.5 * v[1]
        return wx * (log_sigmoid(d0) + log_sigmoid(-d1)) + wy * log_sigmoid(-d0)

    vs = ([1, 0], [0, 1], [1, 1], [-1, 0], [0, 0])
    plain = SkipGramScorer(tmp_path / "m.npz", distance_power=0, rarity=False)  # Mikolov et al.'s sum
    assert plain.score(sentences) == pytest.approx([expected(v) for v in vs], abs=1e-6)
    # weighted: x has code length 2 and stands 2 words left of the blank, y has length 1 and stands next to it
    weighted = SkipGramScorer(tmp_path / "m.npz", distance_power=1.25)
    want = [expected(v, wx=2 / 3**1.25, wy=1 / 2**1.25) for v in vs]
    assert weighted.score(sentences) == pytest.approx(want, abs=1e-6)


def _synthetic(q=3000, seed=0):
    """Three members: a, b (on a 10x larger scale) informative at 2:1, c pure noise."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, q, 5))
    utility = 2 * a + b + rng.gumbel(size=(q, 5)) * 0.5
    return [a.ravel(), 10 * b.ravel(), c.ravel()], utility.argmax(1)


@pytest.mark.parametrize("fit, noise", [(fit_logit, 0.02), (fit_grid, 0.1)])  # the grid's argmax fits some noise
def test_tuning_recovers_the_weights_and_zeroes_noise(fit, noise):
    scores, answers = _synthetic()
    x = np.stack([s.reshape(-1, 5) for s in scores], axis=2)
    w = fit(x, answers)
    assert w[0] / w[1] == pytest.approx(20, rel=0.25)  # 2 : 1, with b's scale of 10 undone
    assert w[2] <= noise * w.max()


def test_tune_weights_reports_cross_validated_accuracy():
    scores, answers = _synthetic()
    tuned = tune_weights(scores, answers)
    assert tuned.weights.max() == 1.0 and tuned.questions == 3000
    oracle = float(((2 * scores[0] + scores[1] / 10).reshape(-1, 5).argmax(1) == answers).mean())
    assert abs(tuned.cv_accuracy - oracle) < 0.02 and tuned.dev_accuracy >= tuned.cv_accuracy - 0.02
    assert tuned.stderr(0.5) == pytest.approx(math.sqrt(0.25 / 3000))


def test_grid_allows_every_weight_to_be_zero():
    grid = grid_weights(3, 0.25)
    assert len(grid) == 15 and np.allclose(grid.sum(1), 1)
    assert any((row == [1, 0, 0]).all() for row in grid) and any((row == [0, 0, 1]).all() for row in grid)


def test_predict_without_flags_uses_the_newest_ensemble(sample, skipgram, kn, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path / "runs"))
    path = tmp_path / "runs" / "hw1_cloze" / "ensemble.yaml"
    members = [Member("forward", tmp_path / "absent.pt", 0.0), Member("ngram", kn, 0.5), Member("skipgram", skipgram)]
    write_ensemble(path, members, {"questions": 10, "accuracy": 0.9, "stderr": 0.09})
    out = tmp_path / "out.csv"
    assert predict.main([str(sample / "testing_data.csv"), str(out)]) == 0
    err = capsys.readouterr().err
    assert f"using {path} (dev accuracy 0.9 ± 0.09)" in err
    assert f"using ngram {kn} (weight 0.5)" in err and f"using skipgram {skipgram} (weight 1)" in err
    assert "forward" not in err.split(str(path))[1]  # a weight of 0 is not loaded
    assert _accuracy(out, sample) >= 0.9


def test_predict_without_an_ensemble_names_what_is_missing(sample, skipgram, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs" / "hw1_cloze").mkdir(parents=True)
    (tmp_path / "runs" / "hw1_cloze" / "skipgram.npz").write_bytes(skipgram.read_bytes())
    assert predict.main([str(sample / "testing_data.csv"), str(tmp_path / "out.csv")]) == 0
    assert "missing: forward, backward, ngram" in capsys.readouterr().err


def test_predict_with_the_ngram_and_semantic_flags(sample, skipgram, kn, tmp_path):
    out = tmp_path / "out.csv"
    assert predict.main([str(sample / "testing_data.csv"), str(out), "--ngram", str(kn), "--ngram-only"]) == 0
    assert _accuracy(out, sample) >= 0.9
    argv = [
        str(sample / "testing_data.csv"),
        str(out),
        "--ngram",
        str(kn),
        "--semantic",
        str(skipgram),
        "--weights",
        "1,2",
    ]
    assert predict.main(argv) == 0
    assert _accuracy(out, sample) >= 0.9


@pytest.mark.parametrize(
    "text, message",
    [
        ("members: x: y\n", ":1: not valid YAML"),
        ("dev: {}\n", "expected a 'members' list"),
        ("members:\n  - {name: lstm, path: x.pt, weight: 1}\n", "member 1 needs a name, one of forward"),
        ("members:\n  - {name: ngram, path: KN, weight: -1}\n", "member 1 (ngram) needs a weight >= 0, got -1"),
        ("members:\n  - {name: ngram, path: nowhere.npz, weight: 1}\n", "member 1 (ngram): nowhere.npz not found"),
        ("members:\n  - {name: ngram, path: KN, weight: 0}\n", "every weight is 0"),
    ],
)
def test_bad_ensemble_file_is_one_line_exit_2(sample, kn, tmp_path, capsys, text, message):
    bad = tmp_path / "ensemble.yaml"
    bad.write_text(text.replace("KN", str(kn)))
    out = tmp_path / "out.csv"
    assert predict.main([str(sample / "testing_data.csv"), str(out), "--ensemble", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}") and message in err[0]
    assert not out.exists()


def test_a_corrupt_member_of_a_valid_ensemble_is_one_line(sample, tmp_path, capsys):
    broken = tmp_path / "kn.npz"
    broken.write_bytes(b"not an npz")
    ens = tmp_path / "ensemble.yaml"
    ens.write_text(f"members:\n  - {{name: ngram, path: {broken}, weight: 1}}\n")
    out = tmp_path / "out.csv"
    assert predict.main([str(sample / "testing_data.csv"), str(out), "--ensemble", str(ens)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(broken) in err[0], err
    assert not out.exists()


def test_lstm_embeddings_start_from_the_skipgram_vectors(skipgram, tmp_path):
    with np.load(skipgram) as z:
        sg_itos, vectors, known = z["itos"].tolist(), z["vectors"], z["known"]
    words = [w for w, k in zip(sg_itos, known) if k][:30]
    itos = [*SPECIALS, "never-seen-word", *reversed(words)]  # another order: matched by spelling
    cfg = Config(model=ModelConfig(emb=24, hidden=8, layers=1, cutoffs=[10]))
    torch.manual_seed(0)
    plain = build(cfg, len(itos), total_steps=5, device=torch.device("cpu"))
    torch.manual_seed(0)
    learner = build(cfg, len(itos), total_steps=5, device=torch.device("cpu"))
    origin = init_embeddings(learner.model, str(skipgram), itos)
    assert "30 of 35 words (16 of 24 columns)" in origin
    emb, before = learner.model.embedding.weight.detach().numpy(), plain.model.embedding.weight.detach().numpy()
    rows = np.array([itos.index(w) for w in words])
    want = vectors[[sg_itos.index(w) for w in words]]
    got = emb[rows, :16]
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos == pytest.approx(np.ones(30), abs=1e-5)  # each word keeps its direction...
    assert np.sqrt((got**2).mean()) == pytest.approx(EMB_STD, rel=1e-4)  # ...at the table's own scale
    assert np.array_equal(emb[rows, 16:], before[rows, 16:])  # the columns beyond the skip-gram's stay random
    other = [i for i in range(len(itos)) if i not in set(rows)]
    assert np.array_equal(emb[other], before[other])  # specials and unknown words stay random
    # the output side is the same table, so the softmax starts from the vectors too
    assert learner.model.softmax.embedding.weight.data_ptr() == learner.model.embedding.weight.data_ptr()


def test_bad_init_vectors_file_is_a_user_error(tmp_path):
    bad = tmp_path / "not_a_model.npz"
    bad.write_bytes(b"garbage")
    learner = build(Config(model=ModelConfig(emb=8, hidden=8, layers=1, cutoffs=[10])), 6, 5, torch.device("cpu"))
    with pytest.raises(UserError, match="not_a_model.npz: not a readable skip-gram model"):
        init_embeddings(learner.model, str(bad), [*SPECIALS, "a", "b"])


def test_training_starts_from_the_vectors_and_resumes_without_them(sample, skipgram, tmp_path):
    vectors = tmp_path / "sg.npz"
    shutil.copy(skipgram, vectors)
    run = tmp_path / "run"
    argv = tiny_train_args(run, sample, "train.max_steps=4", "train.eval_every=2", f"train.init_vectors={vectors}")
    assert train.main(argv) == 0
    vectors.unlink()  # a resumed run has its own weights: the skip-gram is not read again
    assert (
        train.main([*argv[:-3], "train.eval_every=2", f"train.init_vectors={vectors}", "train.max_steps=6", "--resume"])
        == 0
    )
    assert load_checkpoint(run / "last.pt", "hw1_cloze")["step"] == 6
