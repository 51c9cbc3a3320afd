"""What a user meets first: every demo, every course run script, every recommended (GPU) config.

The GPU configs are run for two steps on the CPU at their real model sizes (with tiny batches), so a
config that no longer matches the code fails here rather than on someone's GPU hour.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hw1_cloze.sample_data import make_sample
from hw2_video_caption.sample_data import write_sample_data as write_videos
from hw3_gan.sample_data import write_sample_data as write_faces
from hw4_chatbot.sample_data import write_sample as write_dialogues

REPO = Path(__file__).resolve().parent.parent
HOMEWORKS = ["hw1_cloze", "hw2_video_caption", "hw3_gan", "hw4_chatbot"]


@pytest.fixture
def no_real_data(monkeypatch, tmp_path):
    monkeypatch.delenv("MLDS_DATA", raising=False)
    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_demo_runs_on_sample_data(homework, tmp_path, no_real_data, capsys):
    demo = importlib.import_module(f"{homework}.demo")
    assert demo.main(["--out", str(tmp_path / "demo")]) == 0
    assert str(tmp_path / "demo") in capsys.readouterr().out  # it says where its outputs are


def _sample(homework: str, root: Path) -> list[str]:
    """Write sample data for ``homework`` and return the ``--set`` items that point the config at it."""
    if homework == "hw1_cloze":
        data = make_sample(root, novels=2, sentences=400, questions=5)
        return [
            f"data.corpus={data / 'Holmes_Training_Data'}",
            "data.valid_tokens=400",
            "train.eval_tokens=200",
            "train.batch_size=2",
            "train.bptt=8",
            "train.max_steps=2",
        ]
    if homework == "hw2_video_caption":
        data = write_videos(root, n_train=8, n_test=2, n_peer=0, seed=0)
        return [
            f"data.data_dir={data}",
            "data.val_fraction=0.25",
            "train.batch_size=4",
            "train.captions_per_video=1",
            "train.epochs=1",
        ]
    if homework == "hw3_gan":
        data = write_faces(root, n=160)  # data.retag's two classifiers need 64 images in each half
        return [f"data.path={data}", "data.holdout_percent=0", "train.batch_size=4", "train.max_steps=2"]
    data = write_dialogues(root, n_pairs=120)
    return [f"data.path={data / 'cornell_pairs'}", "train.batch_size=4", "train.max_steps=2"]


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_default_config_trains_two_steps_at_full_size(homework, tmp_path, no_real_data):
    train = importlib.import_module(f"{homework}.train")
    run_dir = tmp_path / "run"
    argv = [
        "--config",
        str(REPO / homework / "configs" / "default.yaml"),
        "--run-dir",
        str(run_dir),
        "--quiet",
        "--device",
        "cpu",
        "--set",
        "threads=1",
        *_sample(homework, tmp_path / "data"),
    ]
    assert train.main(argv) == 0
    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
    assert state["step"] >= 2
    params = sum(t.numel() for name, t in state["models"][next(iter(state["models"]))].items())
    assert params > 1_000_000  # the real widths, not a tiny stand-in


def _script(path: str, *args: str, cwd: Path, runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "MLDS_RUNS": str(runs)}
    env.pop("MLDS_DATA", None)
    return subprocess.run(
        ["bash", str(REPO / path), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_course_scripts_need_their_arguments(tmp_path):
    for script in ["hw1_cloze/run.sh", "hw2_video_caption/hw2_seq2seq.sh", "hw3_gan/run.sh", "hw4_chatbot/run.sh"]:
        done = _script(script, cwd=tmp_path, runs=tmp_path / "runs")
        assert done.returncode == 2 and done.stderr.startswith("usage: bash")


def test_hw1_course_script(tmp_path, no_real_data):
    from hw1_cloze import train

    data = make_sample(tmp_path / "data", novels=3, sentences=800, questions=20)
    runs = tmp_path / "runs"
    assert (
        train.main(
            [
                "--config",
                str(REPO / "hw1_cloze/configs/tiny.yaml"),
                "--quiet",
                "--run-dir",
                str(runs / "hw1_cloze" / "fwd"),
                "--set",
                f"data.corpus={data / 'Holmes_Training_Data'}",
                "train.max_steps=30",
            ]
        )
        == 0
    )
    done = _script("hw1_cloze/run.sh", str(data / "testing_data.csv"), "out.csv", cwd=tmp_path, runs=runs)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "id,answer" and len(lines) == 21 and all(line.split(",")[1] in "abcde" for line in lines[1:])


def test_hw2_course_script(tmp_path, no_real_data):
    from hw2_video_caption import train

    data = write_videos(tmp_path / "data", n_train=12, n_test=3, n_peer=2, seed=0)
    runs = tmp_path / "runs"
    assert (
        train.main(
            [
                "--config",
                str(REPO / "hw2_video_caption/configs/tiny.yaml"),
                "--quiet",
                "--run-dir",
                str(runs / "hw2_video_caption" / "r"),
                "--set",
                f"data.data_dir={data}",
                "train.epochs=1",
            ]
        )
        == 0
    )
    done = _script("hw2_video_caption/hw2_seq2seq.sh", str(data), "test.txt", "peer.txt", cwd=tmp_path, runs=runs)
    assert done.returncode == 0, done.stderr
    test_ids = (data / "testing_id.txt").read_text().split()
    assert [line.split(",")[0] for line in (tmp_path / "test.txt").read_text().splitlines()] == test_ids
    assert len((tmp_path / "peer.txt").read_text().splitlines()) == 2


def test_hw3_course_script(tmp_path, no_real_data):
    from hw3_gan import train

    data = write_faces(tmp_path / "data", n=60)
    runs = tmp_path / "runs"
    assert (
        train.main(
            [
                "--config",
                str(REPO / "hw3_gan/configs/tiny.yaml"),
                "--quiet",
                "--device",
                "cpu",
                "--run-dir",
                str(runs / "hw3_gan" / "r"),
                "--set",
                f"data.path={data}",
                "data.holdout_percent=0",
                "train.max_steps=4",
            ]
        )
        == 0
    )
    text = tmp_path / "data" / "sample_testing_text.txt"
    done = _script("hw3_gan/run.sh", str(text), cwd=tmp_path, runs=runs)
    assert done.returncode == 0, done.stderr
    ids = [line.split(",")[0] for line in text.read_text().splitlines() if line.strip()]
    written = sorted(p.name for p in (tmp_path / "samples").glob("sample_*.jpg"))
    assert written == sorted(f"sample_{i}_{k}.jpg" for i in ids for k in range(1, 6))


def test_hw4_course_script(tmp_path, no_real_data):
    from hw4_chatbot import train

    data = write_dialogues(tmp_path / "data", n_pairs=200)
    runs = tmp_path / "runs"
    assert (
        train.main(
            [
                "--config",
                str(REPO / "hw4_chatbot/configs/tiny.yaml"),
                "--quiet",
                "--run-dir",
                str(runs / "hw4_chatbot" / "s2s"),
                "--set",
                f"data.path={data / 'cornell_pairs'}",
                "train.epochs=1",
            ]
        )
        == 0
    )
    queries = tmp_path / "in.txt"
    queries.write_text("hello there\n\nhow are you ?\n")
    done = _script("hw4_chatbot/run.sh", "S2S", str(queries), "out.txt", cwd=tmp_path, runs=runs)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 3
