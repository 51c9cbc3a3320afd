"""The configuration of a language-model run: data, model (``model.ModelConfig``) and training loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import RunConfig, param
from hw1_cloze.model import ModelConfig


@dataclass
class DataConfig:
    corpus: str = ""  # folder of .TXT novels or the .tar.xz; "" = $MLDS_DATA/hw1/Holmes_Training_Data.tar.xz
    max_vocab: int = param(50000, gt=4)
    min_freq: int = param(1, ge=1)
    valid_tokens: int = param(200000, gt=0)  # held out from the end of the stream
    direction: Literal["forward", "backward"] = "forward"


@dataclass
class TrainConfig:
    batch_size: int = param(128, gt=0)
    bptt: int = param(35, gt=0)
    lr: float = param(2e-3, gt=0)
    min_lr_ratio: float = param(0.1, ge=0, le=1)  # cosine decay to lr * this at the last step
    warmup_steps: int = param(100, ge=0)
    clip: float = param(1.0, gt=0)
    epochs: float = param(1.0, gt=0, resume=True)  # used when max_steps is 0
    max_steps: int = param(0, ge=0, resume=True)
    max_minutes: float = param(0.0, ge=0, resume=True)  # stop (with a checkpoint) after this long; 0 = no limit
    eval_every: int = param(500, gt=0, resume=True)
    eval_tokens: int = param(100000, gt=0)
    log_every: int = param(50, gt=0, resume=True)
    keep_last: int = param(0, ge=0, resume=True)  # also keep this many numbered step_*.pt checkpoints
    # a skip-gram model (python -m hw1_cloze.semantic) whose word vectors start the tied embeddings, so
    # rare words begin with what the skip-gram learned of them; "" = random
    init_vectors: str = ""


@dataclass
class Config(RunConfig):
    """One language-model run; seed, device and threads come from RunConfig."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
