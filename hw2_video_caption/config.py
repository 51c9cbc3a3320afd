"""The configuration of a captioner run: data, model (``model.ModelConfig``) and training loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import RunConfig, param
from hw2_video_caption.model import ModelConfig


@dataclass
class DataConfig:
    data_dir: str = ""  # course folder; "" = the real data unpacked from $MLDS_DATA
    split: Literal["training", "testing"] = "training"  # whose features and labels to train on
    ids: list[str] = field(default_factory=list)  # restrict to these videos (empty = all of the split)
    missing: Literal["error", "skip"] = "error"  # "skip": train on the videos that have features
    val_fraction: float = param(0.1, ge=0, le=1)  # 1 only for a pre-training-only run (train.epochs 0)
    min_count: int = param(3, ge=1)
    max_len: int = param(20, ge=2)  # words per caption, longer ones are cut
    cache_features: bool = True


@dataclass
class TrainConfig:
    """The loop: optimizer, teacher forcing, validation, checkpoints, time budget and optional LM pre-training."""

    epochs: int = param(30, ge=0, resume=True)
    batch_size: int = param(64, gt=0)
    lr: float = param(1e-3, gt=0)
    weight_decay: float = param(0.0, ge=0)
    clip: float = param(5.0, gt=0)
    captions_per_video: int = param(4, gt=0)  # drawn afresh each epoch
    label_smoothing: float = param(0.1, ge=0, lt=1)
    ss_k: float = param(0.0, ge=0)  # inverse-sigmoid scheduled sampling: teacher p = k / (k + exp(step / k)); 0 = off
    ss_floor: float = param(0.0, ge=0, le=1)  # never less teacher forcing than this
    val_beam: int = param(1, gt=0)  # 1 = greedy validation (fast); the best checkpoint is chosen by val_metric
    val_metric: Literal["bleu1_new", "bleu1_original", "cider_d"] = "bleu1_new"
    save_every: int = param(0, ge=0, resume=True)  # also checkpoint every N steps (0 = once per epoch)
    max_minutes: float = param(0.0, ge=0, resume=True)  # stop (with a checkpoint) after this long; 0 = no limit
    pretrain_lm_epochs: int = param(0, ge=0)  # decoder as a caption LM on all training_label.json captions first
    pretrain_lm_labels: str = ""  # label JSON for that ("" = <data_dir>/training_label.json)
    init_checkpoint: str = ""  # start from these weights and their vocabulary (e.g. a pre-trained caption LM)


@dataclass
class Config(RunConfig):
    """One captioner run; seed, device and threads come from RunConfig."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
