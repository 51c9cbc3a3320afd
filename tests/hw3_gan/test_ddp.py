"""Two gloo processes train the GAN as one: DDP keeps the weights of G, D and the EMA copy identical across
ranks. (BatchNorm's running statistics are each rank's own after its last batch: rank 0 saves the
checkpoints, and the EMA copy's statistics are recomputed before every save.)"""

import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.config import load_config
from common.distributed import DistEnv
from hw3_gan import retag, train
from hw3_gan.config import Config
from hw3_gan.sample_data import write_sample_data

from .conftest import CONFIGS

OVERRIDES = ["model.image_size=16", "model.ngf=8", "model.ndf=8", "train.batch_size=8"]


def _rank(rank: int, port: int, out: str, extra: list[str]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    cfg = load_config(Config, CONFIGS / "cpu60_adc.yaml", OVERRIDES + extra)
    torch.manual_seed(rank)  # different initial weights: DDP must start both ranks from rank 0's
    nets, env = train.build(cfg, torch.device("cpu")), DistEnv(rank, 2, rank)
    gen, disc = train.share(nets, env, torch.device("cpu"))
    for step in range(5):  # step 0 and step 4 take the R1 penalty's double backward
        x = torch.rand(8, 3, 16, 16) * 2 - 1  # each rank its own batch
        hair, eye = torch.randint(0, 12, (8,)), torch.randint(0, 11, (8,))
        train.train_step(nets, gen, disc, x, hair, eye, cfg, step)
    models = {name: dict(m.named_parameters()) for name, m in nets.models().items()}
    torch.save(models, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("extra", [[], ["train.reuse_fakes=true"]])
def test_two_gloo_processes_keep_identical_models(tmp_path, extra):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(port, str(tmp_path), extra), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.manual_seed(0)
    start = train.build(load_config(Config, CONFIGS / "cpu60_adc.yaml", OVERRIDES), torch.device("cpu"))
    for name in ("G", "D", "G_ema"):
        for key, value in a[name].items():
            assert torch.equal(value, b[name][key]), f"{name}.{key}"
    initial = dict(start.gen.named_parameters())
    moved = [not torch.equal(v, initial[k]) for k, v in a["G"].items()]
    assert any(moved)  # the steps trained the generator


def _load_rank(rank: int, port: int, out: str, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    retag.EPOCHS, calls, full = 1, [], retag.out_of_fold
    retag.out_of_fold = lambda *a, **k: calls.append(rank) or full(*a, **k)
    cfg = load_config(
        Config, CONFIGS / "tiny.yaml", [f"data.path={folder}", "data.holdout_percent=0", "data.retag=0.5"]
    )
    cpu = torch.device("cpu")
    run = SimpleNamespace(cfg=cfg, env=DistEnv(rank, 2, rank), device=cpu, quiet=True, say=lambda message: None)
    data, _ = train.load_training_data(run)
    torch.save({"calls": calls, "hair": data.hair, "eye": data.eye}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_only_the_main_process_trains_the_tag_classifiers_and_both_read_the_same_tags(tmp_path):
    folder = write_sample_data(tmp_path / "data", n=200)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_load_rank, args=(port, str(tmp_path), str(folder)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert a["calls"] == [0] and b["calls"] == []
    assert (a["hair"] == b["hair"]).all() and (a["eye"] == b["eye"]).all()
