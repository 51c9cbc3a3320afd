from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from common.config import ConfigError, config_from_dict, config_to_dict, load_config, save_config


@dataclass
class Model:
    hidden: int = 8
    cell: Literal["lstm", "gru"] = "lstm"
    dropout: float = 0.1


@dataclass
class Cfg:
    seed: int = 0
    name: str = "x"
    tied: bool = True
    cutoffs: list[int] = field(default_factory=lambda: [2, 4])
    model: Model = field(default_factory=Model)


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_file_then_overrides_typed(tmp_path):
    p = write(tmp_path, "seed: 3\nmodel:\n  hidden: 16\n")
    cfg = load_config(Cfg, p, ["model.dropout=0", "tied=false", "cutoffs=[1, 2, 3]", "model.cell=gru"])
    assert cfg.seed == 3 and cfg.model.hidden == 16
    assert cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)
    assert cfg.tied is False and cfg.cutoffs == [1, 2, 3] and cfg.model.cell == "gru"


def test_unknown_key_names_it(tmp_path):
    with pytest.raises(ConfigError, match="'model.hiden'"):
        load_config(Cfg, write(tmp_path, "model:\n  hiden: 3\n"))
    with pytest.raises(ConfigError, match="'lr'"):
        load_config(Cfg, None, ["lr=0.1"])


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(ConfigError, match="'model.hidden' must be int"):
        load_config(Cfg, None, ["model.hidden=abc"])
    with pytest.raises(ConfigError, match="'model.cell' must be one of lstm, gru"):
        load_config(Cfg, None, ["model.cell=rnn"])
    with pytest.raises(ConfigError, match="'seed' must be int"):
        load_config(Cfg, None, ["seed=true"])
    with pytest.raises(ConfigError, match="'cutoffs\\[1\\]' must be int"):
        load_config(Cfg, None, ["cutoffs=[1, x]"])


def test_bad_yaml_names_file_and_line(tmp_path):
    p = write(tmp_path, "seed: 1\nmodel: [\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: not valid YAML"):
        load_config(Cfg, p)
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(Cfg, None, ["seed"])


def test_save_round_trip(tmp_path):
    cfg = load_config(Cfg, None, ["model.hidden=32"])
    save_config(cfg, tmp_path / "out" / "config.yaml")
    again = load_config(Cfg, tmp_path / "out" / "config.yaml")
    assert again == cfg
    assert config_from_dict(Cfg, config_to_dict(cfg)) == cfg
    assert yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["model"]["hidden"] == 32
