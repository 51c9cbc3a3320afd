"""The run configuration (one dataclass for S2S, backward and RL runs) and loading trained models."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import torch

from common.checkpoint import load_checkpoint
from common.config import ConfigError, RunConfig, config_from_dict, param
from common.errors import UserError
from common.vocab import Vocab
from hw4_chatbot import HOMEWORK
from hw4_chatbot.decode import DecodeConfig
from hw4_chatbot.model import ModelConfig, Seq2Seq


@dataclass
class DataConfig:
    source: str = "cornell_pairs"  # a name in data.SOURCES (under $MLDS_DATA), or a path given in `path`
    path: str = ""  # explicit folder or file; wins over `source`
    vocab_size: int = param(10000, gt=4)  # counts the four specials
    min_freq: int = param(2, ge=1)
    max_query_len: int = param(20, gt=0)
    max_reply_len: int = param(20, gt=0)
    valid_fraction: float = param(0.03, ge=0, lt=1)  # checkpoint selection
    test_fraction: float = param(0.03, ge=0, lt=1)  # evaluation only, never used for any choice during training
    split_seed: int = 1234
    reverse: bool = False  # swap query and reply: the backward model p(query | reply)
    limit: int = param(0, ge=0)  # keep only the first N pairs (0: all)


@dataclass
class TrainConfig:
    epochs: int = param(10, gt=0, resume=True)
    batch_size: int = param(64, gt=0)
    lr: float = param(1e-3, gt=0)
    # the learning rate's shape over the run (common.schedule): over train.max_minutes when set,
    # else over the epochs (or max_steps, whichever ends first); the warm-up is a share of the run
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    lr_warmup: float = param(0.0, ge=0, lt=1)
    lr_floor: float = param(0.0, ge=0, le=1)  # the decay ends at lr * this
    clip: float = param(5.0, gt=0)
    max_minutes: float = param(0.0, ge=0, resume=True)  # stop (validated, checkpointed) after this long; 0: no limit
    max_steps: int = param(0, ge=0, resume=True)  # 0: no limit
    eval_every: int = param(0, ge=0, resume=True)  # also validate and checkpoint every N steps (0: once per epoch)
    amp: bool = True  # bf16 autocast on CUDA (no-op on CPU)


@dataclass
class RLConfig:
    init_checkpoint: str = ""  # the S2S best.pt the policy starts from (also the frozen forward model)
    backward_checkpoint: str = ""  # best.pt of a run with data.reverse=true: p(query | reply); needed if w_backward > 0
    # defaults = configs/rl.yaml, the measured run (docs/RESULTS.md, HW4)
    turns: int = param(2, gt=0)  # simulated turns per episode (agents alternate; both are copies of the policy)
    batch_size: int = param(32, gt=0)
    w_ease: float = 0.0  # ease of answering: -log p(dull reply | generated) per token (Li et al.)
    w_flow: float = 0.1  # information flow: -log cos(own turn, own previous turn)
    w_coherence: float = 0.0  # log p(reply | query) / len + log p_back(query | reply) / len (Li et al.)
    w_backward: float = 0.0  # the backward half alone, log p_back(query | reply) / len: penalises generic replies
    w_dull: float = 0.5  # penalty 1 for a reply in data.DULL_REPLIES, 0.5 for one containing such a reply's core
    w_repeat: float = 1.0  # penalty: share of batch + recent sampled replies equal to / sharing 3 first tokens with it
    w_novelty: float = (
        1.0  # reward: mean 1/count of the reply's bigrams in batch + recent samples (distinct-2's credit)
    )
    repeat_window: int = param(256, ge=0)  # how many recent sampled replies the repeat penalty remembers
    normalize: bool = True  # standardise each reward component by its running mean/std before weighting
    entropy: float = param(0.01, ge=0)  # entropy bonus (per token, nats) in the policy loss
    kl_weight: float = param(0.2, ge=0)  # beta: penalty on KL(policy || initial S2S model) per token, nats
    ml_weight: float = param(1.0, ge=0)  # maximum-likelihood loss on real pairs mixed into every step
    baseline_decay: float = param(0.95, ge=0, lt=1)  # decay of the reward baseline and reward statistics
    temperature: float = param(0.5, gt=0)
    top_k: int = param(0, ge=0)
    max_ppl_rise: float = param(0.08, ge=0)  # a checkpoint whose valid perplexity rose more never counts as best
    valid_queries: int = param(838, gt=0)  # validation queries whose greedy replies are scored


@dataclass
class Config(RunConfig):
    """One run: S2S, backward (S2S with ``data.reverse``) or RL; seed, device, threads from RunConfig."""

    mode: Literal["s2s", "rl"] = "s2s"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


def model_kind(cfg: Config) -> str:
    """``s2s``, ``backward`` or ``rl``: what a run trains (predict picks checkpoints by it)."""
    if cfg.mode == "rl":
        return "rl"
    return "backward" if cfg.data.reverse else "s2s"


@dataclass
class Chatbot:
    """A trained model with everything prediction needs, all read from one checkpoint."""

    model: Seq2Seq
    vocab: Vocab
    cfg: Config
    kind: str
    path: str
    backward: Seq2Seq | None = None
    backward_vocab: Vocab | None = None  # when the backward model has its own vocabulary


def _build(
    state_models: dict, name: str, itos: list[str], model_cfg: dict, source: str, device: torch.device
) -> Seq2Seq:
    try:
        mcfg = config_from_dict(ModelConfig, model_cfg)
        model = Seq2Seq(len(itos), mcfg)
        model.load_state_dict(state_models[name])
    except (KeyError, RuntimeError, ConfigError, ValueError) as exc:
        problem = type(exc).__name__
        raise UserError(f"{source}: checkpoint does not hold a matching '{name}' model ({problem})") from None
    return model.to(device).eval()


def load_chatbot(path: str | os.PathLike, device: torch.device | str = "cpu") -> Chatbot:
    """Rebuild the model (and, for RL checkpoints, the embedded backward model) from ``path``."""
    state = load_checkpoint(path, HOMEWORK)
    extra = state.get("extra", {})
    try:
        cfg = config_from_dict(Config, state["config"])
        vocab = Vocab(extra["vocab"])
    except (KeyError, ValueError, ConfigError) as exc:
        raise UserError(f"{path}: checkpoint lacks its config or vocabulary ({exc})") from None
    device = torch.device(device)
    model = _build(state["models"], "model", vocab.itos, state["config"]["model"], str(path), device)
    backward = back_vocab = None
    if "backward" in state["models"]:
        back_vocab = Vocab(extra.get("backward_vocab", vocab.itos))
        backward = _build(state["models"], "backward", back_vocab.itos, extra["backward_model"], str(path), device)
    return Chatbot(model, vocab, cfg, extra.get("kind", model_kind(cfg)), str(path), backward, back_vocab)
