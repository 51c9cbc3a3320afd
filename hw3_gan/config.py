"""The configuration of a GAN run: data, model (``model.ModelConfig``) and training loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import RunConfig, param
from hw3_gan.model import ModelConfig


@dataclass
class DataConfig:
    path: str = ""  # a data folder or .zip in either course format; "" → $MLDS_DATA/hw3/extra_data.zip
    holdout_percent: float = param(20.0, ge=0, lt=100)  # kept from the GAN for the evaluation classifier
    flip: bool = True  # random horizontal flips
    limit: int = param(0, ge=0)  # train on the first N images only (0: all)
    # replace a hair or eye tag that a classifier trained on the other half of the training images
    # contradicts with at least this probability by the colour it reads (hw3_gan.retag; 0: the tags as given)
    retag: float = param(0.0, ge=0, lt=1)


@dataclass
class TrainConfig:
    batch_size: int = param(64, gt=0)
    epochs: int = param(20, gt=0, resume=True)
    max_steps: int = param(0, ge=0, resume=True)  # 0: no cap
    max_minutes: float = param(0.0, ge=0, resume=True)  # stop (and save) after this much wall time; 0: no cap
    lr_g: float = param(2e-4, gt=0)
    lr_d: float = param(2e-4, gt=0)  # TTUR (Heusel et al. 2017): the two rates may differ
    betas: list[float] = param(default_factory=lambda: [0.5, 0.999], ge=0, lt=1)  # Adam's two
    # both rates' shape over the run (common.schedule): over train.max_minutes when set, else over the
    # epochs (or max_steps, whichever ends first); the decay starts after the lr_hold share of the run.
    # Its clock counts the time of the runs a --resume continues, so resuming a finished run trains at the floor.
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    lr_hold: float = param(0.0, ge=0, lt=1)
    lr_floor: float = param(0.0, ge=0, le=1)  # the decay ends at each rate * this
    loss: Literal["ns", "hinge"] = "ns"  # non-saturating (softplus) or hinge (Miyato et al. 2018)
    penalty: Literal["r1", "dragan", "none"] = "r1"
    penalty_weight: float = param(1.0, ge=0)  # R1: gamma; DRAGAN: lambda
    penalty_every: int = param(4, gt=0)  # lazy regularisation: every k D steps, weighted by k
    wrong_weight: float = param(0.5, ge=0)  # real images paired with wrong tags count as fakes
    aux_weight: float = param(1.0, ge=0)  # the auxiliary tag classifier's loss, with model.aux_classifier
    aux_features: bool = True  # the classifier's loss on real images also trains D's shared features
    twin_share: float = param(1.0, ge=0)  # with model.aux_twin, G raises the twin's loss at this share of aux_weight
    twin_loss: Literal["tac", "adc"] = "tac"  # the two heads as TAC-GAN's separate ones or ADC-GAN's one 2K-way softmax
    aux_confident: float = param(0.0, ge=0, lt=1)  # G's classifier loss stops for a tag named with this probability
    mode_seeking: float = param(1.0, ge=0)  # weight of the mode-seeking term against conditional mode collapse (0: off)
    mode_seeking_features: float = param(0.0, ge=0)  # the same term measured in D's features (0: off)
    reuse_fakes: bool = False  # the G step scores the D step's generated images: one G forward a step, not two
    augment: list[Literal["translation", "cutout"]] = param(default_factory=list)  # DiffAugment on D's inputs
    balance: float = param(0.0, ge=0, le=1)  # real batches drawn with weight count(pair)^-balance (0.5: inverse sqrt)
    tag_groups: int = param(0, ge=0)  # real batches in runs of this many images of one hair/eye pair (0: off)
    ema: bool = True
    ema_decay: float = param(0.999, ge=0, lt=1)
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True  # models and batches in NHWC memory order (faster on CPU; not measured on a GPU)
    save_every_steps: int = param(500, ge=0, resume=True)
    grid_noise: int = param(8, gt=0)  # columns of the per-epoch grid


@dataclass
class Config(RunConfig):
    """One GAN run; seed, device and threads come from RunConfig."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
