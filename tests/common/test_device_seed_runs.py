import json

import numpy as np
import pytest
import torch

from common import device
from common.device import autocast, busy_cores, cpu_times, free_cores, select_device, set_threads
from common.errors import UserError
from common.metrics import MetricsLog, read_metrics
from common.plot import main as plot_main
from common.runs import latest_checkpoint, unpack
from common.seed import set_seed


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(UserError, match="unknown device 'gpu0'"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            select_device("cuda")


def test_autocast_is_noop_on_cpu():
    with autocast(torch.device("cpu")):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == torch.float32


def test_set_threads():
    before = torch.get_num_threads()
    assert set_threads(1) == 1 and torch.get_num_threads() == 1
    assert set_threads(0) >= 1
    torch.set_num_threads(before)


def test_auto_threads_share_the_free_cores_among_torchrun_processes(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr("common.device.free_cores", lambda: 5)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert set_threads(0) == 2  # two processes on five free cores: two threads each, not five
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert set_threads(0) == 1
    assert set_threads(3) == 3  # an explicit count is kept
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert set_threads(0) == 5
    torch.set_num_threads(before)


def test_cpu_times_reads_each_cpus_busy_and_total_ticks(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 10 0 5 100 3 0 1 2 0 0\ncpu1 0 0 0 7 0 0 0 0 0 0\nintr 5\n")
    # cpu0: 121 ticks, of which idle 100 and iowait 3 are not busy; the all-CPU line is skipped
    assert cpu_times(str(stat)) == {0: (18, 121), 1: (0, 7)}
    assert cpu_times(str(tmp_path / "none")) == {}


def test_busy_cores_is_the_share_of_ticks_spent_busy_over_the_interval():
    snaps = iter([{0: (100, 1000), 1: (500, 1000)}, {0: (130, 1100), 1: (550, 1100)}])
    assert busy_cores({0, 1}, 0, lambda: next(snaps)) == pytest.approx(2 * 80 / 200)
    assert busy_cores({0, 5}, 0, lambda: {0: (0, 0), 1: (0, 0)}) is None  # a CPU the file does not list


def test_free_cores_ignores_the_load_average_when_the_cpus_can_be_read(monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(device.os, "getloadavg", lambda: (3.8, 3.0, 2.0))  # a job that has just ended
    monkeypatch.setattr(device, "busy_cores", lambda cpus: 0.4)
    assert free_cores() == 4
    monkeypatch.setattr(device, "busy_cores", lambda cpus: 1.6)
    assert free_cores() == 2
    monkeypatch.setattr(device, "busy_cores", lambda cpus: None)  # no /proc/stat: the load average
    assert free_cores() == 1


def test_seed_repeats():
    set_seed(5)
    a = (np.random.rand(), torch.rand(2))
    set_seed(5)
    b = (np.random.rand(), torch.rand(2))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_metrics_log_and_plot(tmp_path, capsys):
    log = MetricsLog(tmp_path)
    for step in range(5):
        log.log(step, loss=torch.tensor(1.0 / (step + 1)), val_loss=2.0 - step * 0.1)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 9, "lo')  # a run killed mid-line
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(5)) and rows[1]["loss"] == 0.5
    assert plot_main([str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_main([str(tmp_path / "nothing")]) == 2
    assert "metrics.jsonl: no metrics file" in capsys.readouterr().err
    json.dumps(rows)


def test_latest_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("MLDS_RUNS", str(tmp_path))
    with pytest.raises(UserError, match="no best.pt under"):
        latest_checkpoint("hw9")
    for name in ("a", "b"):
        (tmp_path / "hw9" / name).mkdir(parents=True)
        (tmp_path / "hw9" / name / "best.pt").write_bytes(b"x")
    assert latest_checkpoint("hw9").parent.name in {"a", "b"}
    assert latest_checkpoint("hw9", accept=lambda run: run.name == "a").parent.name == "a"
    with pytest.raises(UserError, match="no backward best.pt under"):
        latest_checkpoint("hw9", accept=lambda run: False, kind="backward")


def test_unpack_zip_once(tmp_path, monkeypatch):
    import zipfile

    monkeypatch.setenv("MLDS_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/x.txt", "hello")
    out = unpack(archive)
    assert (out / "data" / "x.txt").read_text() == "hello"
    assert unpack(archive) == out
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(UserError, match="junk.tar.gz: cannot unpack"):
        unpack(tmp_path / "junk.tar.gz")
