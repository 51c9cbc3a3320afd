"""The shared safety mechanisms: output guards, staged outputs, modes, run folders, resume, ranges, budget."""

import os

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from common.budget import TimeBudget
from common.config import ConfigError, load_config, resume_config
from common.errors import UserError
from common.files import atomic_write, check_outputs, staged_files
from common.text import decode_bytes
from tests.common import toy_train
from tests.safety import assert_refused, assert_user_file_kept, snapshot, umask, user_folder


def test_check_outputs_refuses_inputs_other_outputs_folders_and_files_as_folders(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x")
    os.link(src, tmp_path / "hard.txt")
    os.symlink(src, tmp_path / "soft.txt")
    for out, needle in [
        (src, "is also an input"),
        (tmp_path / "hard.txt", "is also an input"),
        (tmp_path / "soft.txt", "is also an input"),
        (tmp_path / "." / "in.txt", "is also an input"),
        (tmp_path, "is a folder"),
        (src / "out.txt", "cannot create folder"),
    ]:
        with pytest.raises(UserError, match=needle):
            check_outputs([out], [src])
    with pytest.raises(UserError, match="two outputs"):
        check_outputs([tmp_path / "a.txt", tmp_path / "sub" / ".." / "a.txt"])
    with pytest.raises(UserError, match=r"hard.txt: given as two outputs \(.*in.txt\)"):
        check_outputs([src, tmp_path / "hard.txt"])  # two names of one file
    check_outputs([tmp_path / "many" / f"{i}.jpg" for i in range(2000)], [src])  # distinct names pass
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "best.pt", "last.pt"):
        (run / name).write_text("x")
    with pytest.raises(UserError, match="is a file of the training run"):  # e.g. a default checkpoint
        check_outputs([run / "best.pt"])
    check_outputs([run / "submission.csv"])
    check_outputs([tmp_path / "new" / "deeper" / "a.txt", None], [src, None])
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_staged_files_write_only_their_own_files(tmp_path):
    out = user_folder(tmp_path / "out")
    (out / "grid.png").write_bytes(b"old")
    with staged_files(out) as stage:
        (stage / "grid.png").write_bytes(b"new")
        (stage / "sample_1_1.jpg").write_bytes(b"img")
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "sample_1_1.jpg", "thesis.txt"]
    assert (out / "grid.png").read_bytes() == b"new"
    assert_user_file_kept(out)
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError):
        with staged_files(out) as stage:
            (stage / "grid.png").write_bytes(b"half")
            raise RuntimeError
    assert snapshot(tmp_path) == before
    with pytest.raises(RuntimeError):
        with staged_files(tmp_path / "fresh") as stage:
            raise RuntimeError
    assert not (tmp_path / "fresh").exists()  # a folder it created is gone again
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        with staged_files(tmp_path / "file"):
            pass


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_write(tmp_path / "a.txt") as f:
            f.write("x")
        with staged_files(tmp_path / "samples") as stage:
            (stage / "s.jpg").write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "samples" / "s.jpg").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "samples").stat().st_mode & 0o777 == 0o777 & ~mask
    assert umask() == old


def test_utf16_with_bom_is_text_not_binary():
    text = "Café?\r\nnext line\r\n"
    assert decode_bytes(text.encode("utf-16")) == text  # the BOM + little-endian PowerShell writes
    assert decode_bytes(b"\xfe\xff" + text.encode("utf-16-be")) == text
    with pytest.raises(UserError, match="binary"):
        decode_bytes(b"\x00\x01abc")


@pytest.mark.parametrize(
    "override, needle",
    [
        ("steps=0", "config key 'steps' must be > 0, got 0"),
        ("hidden=-3", "config key 'hidden' must be > 0, got -3"),
        ("sleep=-1", "config key 'sleep' must be >= 0, got -1.0"),
    ],
)
def test_declared_ranges_name_the_key(override, needle):
    with pytest.raises(ConfigError) as err:
        load_config(toy_train.ToyConfig, None, [override])
    assert str(err.value) == needle


def test_resume_config_changes_only_resumable_keys(tmp_path):
    saved = {"seed": 3, "device": "cpu", "threads": 1, "steps": 10, "sleep": 0.0, "hidden": 8}
    cfg = resume_config(toy_train.ToyConfig, saved, "run/config.yaml", None, ["steps=20"])
    assert (cfg.seed, cfg.hidden, cfg.steps) == (3, 8, 20)
    with pytest.raises(ConfigError, match=r"config key 'hidden' cannot change on --resume \(the run has 8"):
        resume_config(toy_train.ToyConfig, saved, "run/config.yaml", None, ["hidden=16"])
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump(saved))
    assert resume_config(toy_train.ToyConfig, saved, "x", same, ["steps=12"]).steps == 12
    with pytest.raises(ConfigError, match="'seed' cannot change"):  # a file that differs, e.g. default.yaml
        resume_config(toy_train.ToyConfig, saved, "x", same, ["seed=0"])


def _toy(run_dir, *extra):
    return toy_train.main(["--run-dir", str(run_dir), "--quiet", *map(str, extra)])


def test_train_refuses_a_run_folder_that_holds_a_run_or_is_a_file(tmp_path, capsys):
    run = user_folder(tmp_path / "run")
    assert _toy(run, "--set", "steps=3") == 0
    assert_user_file_kept(run)
    assert_refused(
        toy_train.main,
        ["--run-dir", run, "--quiet", "--set", "steps=3"],
        "already holds a run (config.yaml); add --resume",
        capsys,
        [tmp_path],
    )
    (tmp_path / "file").write_text("x")
    assert_refused(
        toy_train.main, ["--run-dir", tmp_path / "file"], "is a file, expected a run folder", capsys, [tmp_path]
    )
    assert_refused(
        toy_train.main, ["--run-dir", tmp_path / "empty", "--resume"], "last.pt not found", capsys, [tmp_path]
    )
    assert_refused(
        toy_train.main, ["--run-dir", tmp_path / "r2", "--set", "steps=0"], "'steps' must be > 0", capsys, [tmp_path]
    )


def test_resume_reads_the_runs_own_config_and_refuses_other_changes(tmp_path, capsys):
    run = tmp_path / "run"
    assert _toy(run, "--set", "steps=4", "hidden=8", "seed=5") == 0
    assert_refused(
        toy_train.main,
        ["--run-dir", run, "--resume", "--set", "hidden=16"],
        "config key 'hidden' cannot change on --resume",
        capsys,
        [tmp_path],
    )
    assert _toy(run, "--resume", "--set", "steps=6") == 0  # no --config: hidden=8 and seed=5 come from the run
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["hidden"], cfg["seed"], cfg["steps"]) == (8, 5, 6)
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 6


def test_a_restore_that_fails_rewrites_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert _toy(run, "--set", "steps=2", "hidden=8") == 0
    text = (run / "config.yaml").read_text().replace("hidden: 8", "hidden: 4")
    (run / "config.yaml").write_text(text)  # config and weights no longer agree
    line = assert_refused(
        toy_train.main,
        ["--run-dir", run, "--resume", "--quiet", "--set", "steps=4"],
        f"{run / 'last.pt'}: does not fit this run's model (",
        capsys,
        [tmp_path],
    )
    assert "size mismatch" in line and "torch.Size([8, 4])" in line


def test_bad_flag_is_one_line(tmp_path, capsys):
    assert_refused(
        toy_train.main, ["--run-dir", tmp_path / "r", "--no-such-flag"], "unrecognized arguments", capsys, [tmp_path]
    )


def test_time_budget_alone():
    assert not TimeBudget(0).spent()
    budget = TimeBudget(1e-9)
    assert budget.spent() and budget.elapsed > 0


def _budget_rank(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    from common.distributed import DistEnv

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    # rank 1 is out of time, rank 0 has hours left: both must stop together
    budget = TimeBudget(1e-9 if rank == 1 else 600, DistEnv(rank, 2, rank))
    results[rank] = budget.spent()
    dist.destroy_process_group()


def test_time_budget_is_one_decision_across_ranks():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_budget_rank, args=(port, results), nprocs=2, join=True)
    assert dict(results) == {0: True, 1: True}


def test_unreadable_archive_is_one_line(tmp_path, monkeypatch):
    from common.runs import unpack

    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "data.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08junk")
    with pytest.raises(UserError) as err:
        unpack(bad)
    assert str(err.value).startswith(f"{bad}: cannot unpack (") and "\n" not in str(err.value)
    assert not list((tmp_path / "cache" / "unpacked").iterdir())  # no half-unpacked folder
