"""YAML config files into dataclasses, with dotted ``key=value`` overrides.

Unknown keys, wrongly typed values and values out of their declared range are errors that name
the key, so a typo in a config never silently trains the wrong model. A field declares its range
(and whether a resumed run may change it) with :func:`param`.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from common.errors import UserError
from common.files import atomic_write

T = TypeVar("T")


class ConfigError(UserError):
    """A bad config file, key or value."""


_BOUNDS = {"gt": (operator.gt, ">"), "ge": (operator.ge, ">="), "lt": (operator.lt, "<"), "le": (operator.le, "<=")}


def param(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    resume: bool = False,
) -> Any:
    """A dataclass field with a checked range and a resume rule, e.g. ``lr: float = param(1e-3, gt=0)``.

    ``resume=True``: ``--resume`` may change it (time budgets, step limits, logging); every other
    key of a resumed run stays as the run was started.
    """
    bounds = {k: v for k, v in {"gt": gt, "ge": ge, "lt": lt, "le": le}.items() if v is not None}
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"bounds": bounds, "resume": resume}
    )


@dataclasses.dataclass
class RunConfig:
    """The keys every homework's top-level config has; each adds its ``data``, ``model``, ``train``."""

    seed: int = 0
    device: str = param("auto", resume=True)  # auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps
    threads: int = param(0, ge=0, resume=True)  # CPU threads; 0 = the cores that are free


def _check(value: Any, hint: Any, key: str) -> Any:
    """Return ``value`` converted to ``hint`` or raise a :class:`ConfigError` naming ``key``."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return _build(hint, value, prefix=f"{key}.")
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"config key '{key}' has a bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(map(str, typing.get_args(hint)))
            raise ConfigError(f"config key '{key}' must be one of {choices}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [_check(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(f"config key '{key}' must be {hint.__name__}, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"config key '{key}' must be {hint.__name__}, got {value!r}")
    return value


def _build(cls: type[T], data: dict, prefix: str = "") -> T:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        valid = ", ".join(prefix + name for name in fields)
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (valid here: {valid})")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _check(value, hints[name], prefix + name) for name, value in data.items()}
    for name, value in kwargs.items():
        _check_bounds(fields[name], value, prefix + name)
    return cls(**kwargs)


def _check_bounds(f: dataclasses.Field, value: Any, key: str) -> None:
    for bound, limit in f.metadata.get("bounds", {}).items():
        test, sign = _BOUNDS[bound]
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for v in numbers:
            if isinstance(v, (int, float)) and not test(v, limit):
                raise ConfigError(f"config key '{key}' must be {sign} {limit:g}, got {value!r}")


def resumable_keys(cls: type) -> list[str]:
    """Dotted names of the keys a resumed run may change (declared with ``param(..., resume=True)``)."""
    keys = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            keys += [f"{f.name}.{k}" for k in resumable_keys(hint)]
        elif f.metadata.get("resume"):
            keys.append(f.name)
    return keys


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{dotted}': '{key}' is not a section")
    node[keys[-1]] = value


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from defaults, then the YAML file at ``path``, then ``key=value`` overrides.

    Override values are parsed as YAML, so ``train.lr=3e-4`` is a float and ``model.tied=false``
    a bool.
    """
    data = read_config_file(path) if path is not None else {}
    return _build(cls, _apply_overrides(data, overrides))


def read_config_file(path: str | os.PathLike) -> dict:
    """The mapping a YAML config file holds; an unreadable or malformed file names itself."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return loaded or {}


def _apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, key.strip(), value)
    return data


def resume_config(
    cls: type[T], saved: dict, source: object, path: str | os.PathLike | None = None, overrides: Sequence[str] = ()
) -> T:
    """The config of a run being resumed: its ``saved`` one, changed only where a resume may change it.

    Without ``path`` the overrides apply to the saved config; with it, the file plus overrides
    must agree with the saved config on every key not declared ``resume=True``.
    """
    try:
        base = _build(cls, copy.deepcopy(saved))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if path is None:
        wanted = _build(cls, _apply_overrides(copy.deepcopy(saved), overrides))
    else:
        wanted = load_config(cls, path, overrides)
    old, new = _flatten(config_to_dict(base)), _flatten(config_to_dict(wanted))
    allowed = set(resumable_keys(cls))
    for key in new:
        if key not in allowed and new[key] != old.get(key):
            keys = ", ".join(sorted(allowed))
            raise ConfigError(
                f"config key '{key}' cannot change on --resume (the run has {old.get(key)!r} in "
                f"{source}, asked {new[key]!r}); only {keys} may"
            )
    return wanted


def config_to_dict(cfg: Any) -> dict:
    """A plain dict of a (nested) config dataclass, for saving and checkpoints."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type[T], data: dict) -> T:
    """Rebuild a config saved with :func:`config_to_dict` (used when loading checkpoints)."""
    return _build(cls, data)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically), so a run folder records what it ran."""
    with atomic_write(path) as f:
        yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)
