"""The whole pipeline learns the synthetic task, and training resumes where it stopped."""

import json
import math

import torch
import torch.nn.functional as F

from common.batching import pad_batch
from common.checkpoint import load_checkpoint
from hw2_video_caption import predict, train
from hw2_video_caption.data import load_labels, normalize_caption, read_captions, read_ids
from hw2_video_caption.evaluate import score_all
from hw2_video_caption.model import VideoCaptioner

from .conftest import TINY


def test_learns_synthetic_task_on_unseen_videos(sample_dir, trained, tmp_path):
    assert (trained / "best.pt").is_file() and (trained / "last.pt").is_file()
    out, peer = tmp_path / "test_output.txt", tmp_path / "peer_review_output.txt"
    assert predict.main([str(sample_dir), str(out), str(peer), "--checkpoint", str(trained / "best.pt")]) == 0
    ids = read_ids(sample_dir / "testing_id.txt")
    lines = out.read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ids  # the order of the id list
    assert len(peer.read_text().splitlines()) == 4
    labels = load_labels(sample_dir / "testing_label.json")
    scores = score_all(read_captions(out), labels)
    # The default consensus decoding also votes with the captions of the 3 nearest training videos,
    # which on this set often show another subject or action: a little below the model's own top beam.
    assert scores["bleu1_new"] >= 0.8, scores
    assert scores["distinct"] >= 8  # captions depend on the video: 20 videos of up to 36 kinds
    plain = tmp_path / "plain.txt"
    assert (
        predict.main(
            [
                str(sample_dir),
                str(plain),
                "--rerank",
                "none",
                "--neighbours",
                "0",
                "--checkpoint",
                str(trained / "best.pt"),
            ]
        )
        == 0
    )
    scores = score_all(read_captions(plain), labels)
    assert scores["bleu1_new"] >= 0.9 and scores["distinct"] >= 8, scores  # the model itself learned the task


def test_predict_ids_and_default_checkpoint(sample_dir, trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs" / "hw2_video_caption").mkdir(parents=True)
    (tmp_path / "runs" / "hw2_video_caption" / "r1").symlink_to(trained)
    ids = read_ids(sample_dir / "testing_id.txt")
    out = tmp_path / "special.txt"
    assert predict.main([str(sample_dir), str(out), "--ids", ids[3], f"{ids[1]},{ids[0]}", "--beam", "1"]) == 0
    assert [x.split(",")[0] for x in out.read_text().splitlines()] == ids[:2] + ids[3:4]
    assert "using checkpoint" in capsys.readouterr().err


def test_resume_continues_from_last_checkpoint(sample_dir, tmp_path):
    run = tmp_path / "run"
    common = ["--config", TINY, "--set", f"data.data_dir={sample_dir}", "--run-dir", str(run), "--quiet"]
    assert train.main(common + ["--set", "train.epochs=2"]) == 0
    first = load_checkpoint(run / "last.pt", "hw2_video_caption")
    assert first["epoch"] == 2
    assert train.main(common + ["--set", "train.epochs=3", "--resume"]) == 0
    state = load_checkpoint(run / "last.pt", "hw2_video_caption")
    assert state["epoch"] == 3 and state["step"] == first["step"] * 3 // 2
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    # a fresh 3-epoch run reaches the same weights: resume restored model, optimizer and RNG exactly
    fresh = tmp_path / "fresh"
    assert train.main(common[:-3] + ["--run-dir", str(fresh), "--quiet", "--set", "train.epochs=3"]) == 0
    a = load_checkpoint(fresh / "last.pt")["models"]["captioner"]
    b = state["models"]["captioner"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_lm_pretraining_learns_the_captions(sample_dir, tmp_path):
    run = tmp_path / "lm"
    # as the k-fold benchmark pre-trains: every test video held out, so only training_label.json teaches
    args = [
        "--config",
        TINY,
        "--set",
        f"data.data_dir={sample_dir}",
        "data.split=testing",
        "data.val_fraction=1",
        "train.epochs=0",
        "train.pretrain_lm_epochs=3",
        "--run-dir",
        str(run),
        "--quiet",
    ]
    assert train.main(args) == 0
    model, vocab, _ = predict.load_model(run / "best.pt", torch.device("cpu"))
    # captions of the test videos: never trained on, but written from the same templates
    caps = [
        vocab.encode(normalize_caption(c)) for cs in load_labels(sample_dir / "testing_label.json").values() for c in cs
    ]
    inputs, _ = pad_batch([[vocab.bos_id] + c for c in caps])
    targets, _ = pad_batch([c + [vocab.eos_id] for c in caps], pad_id=-100)

    def nll(m) -> float:  # per word, the decoder alone (no video), as pre-training trains it
        with torch.no_grad():
            return F.cross_entropy(m(None, inputs).flatten(0, 1), targets.flatten(), ignore_index=-100).item()

    torch.manual_seed(0)
    untrained = VideoCaptioner(model.cfg, len(vocab)).eval()
    assert nll(untrained) > 0.9 * math.log(len(vocab))  # the control: about uniform
    assert nll(model) < 0.5 * nll(untrained), (nll(model), nll(untrained))
