import random

import numpy as np
import pytest
import torch

from common.checkpoint import CheckpointManager, load_checkpoint, make_state, restore
from common.errors import UserError
from common.files import atomic_dir, atomic_write
from common.seed import set_seed


def _model_opt():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    set_seed(0)
    model, opt = _model_opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    opt.step()
    sched.step()
    state = make_state(
        "hwX",
        models={"m": model},
        optimizers={"o": opt},
        schedulers={"s": sched},
        step=7,
        epoch=2,
        config={"a": 1},
        extra={"itos": ["x"]},
    )
    expect = (random.random(), np.random.rand(), torch.rand(1).item())
    CheckpointManager(tmp_path, keep_last=2).save(state, is_best=True)

    set_seed(123)
    model2, opt2 = _model_opt()
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    loaded = load_checkpoint(tmp_path / "best.pt", "hwX")
    restore(loaded, models={"m": model2}, optimizers={"o": opt2}, schedulers={"s": sched2})
    assert torch.equal(model2.weight, model.weight)
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expect
    assert loaded["step"] == 7 and loaded["extra"]["itos"] == ["x"]


def test_keep_last_prunes(tmp_path):
    model, _ = _model_opt()
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in range(5):
        manager.save(make_state("hwX", models={"m": model}, step=step))
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_00000003.pt", "step_00000004.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    model, _ = _model_opt()
    CheckpointManager(tmp_path).save(make_state("hw1_cloze", models={"m": model}))
    good = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(UserError, match="from hw1_cloze, expected hw3_gan"):
        load_checkpoint(tmp_path / "last.pt", "hw3_gan")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a checkpoint of this project"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with atomic_write(target) as f:
        f.write("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]


def test_atomic_dir_all_or_nothing_and_never_replaces(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "samples") as d:
            (d / "a.jpg").write_text("x")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(tmp_path / "samples") as d:
        (d / "a.jpg").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        with atomic_dir(tmp_path / "samples") as d:
            (d / "b.jpg").write_text("y")
    assert [p.name for p in (tmp_path / "samples").iterdir()] == ["a.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["samples"]
    with pytest.raises(UserError, match="not written here"):  # a mark is no licence to replace others' folders
        with atomic_dir(tmp_path / "samples", mark=".made") as d:
            pass
    with atomic_dir(tmp_path / "gen", mark=".made") as d:
        (d / "a").write_text("1")
    with atomic_dir(tmp_path / "gen", mark=".made") as d:  # its own earlier output: replaced
        (d / "b").write_text("2")
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == [".made", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", "samples"]
