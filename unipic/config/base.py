"""Config plumbing: strict pydantic models, YAML presets with `extends`, `--set key.path=value` overrides,
and a stable hash recorded with every artifact.

Every section model derives from `Section`, which forbids unknown keys, so a typo fails loudly with the
list of keys that do exist.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from unipic.errors import ConfigError


class Section(BaseModel):
    """Base of every config section: strict keys, validated assignment, immutable defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def config_dir() -> Path:
    """Where presets live: $UNIPIC_CONFIG_DIR, else the repository's `configs/`."""
    env = os.environ.get("UNIPIC_CONFIG_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "configs"


def available_presets() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_preset(name_or_path: str | Path, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a preset by name (configs/NAME.yaml) or path, resolving `extends:` chains."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown preset '{name_or_path}': no file {path}; available presets: {', '.join(available_presets())}"
        )
    if str(path) in _seen:
        raise ConfigError(f"preset 'extends' cycle: {' -> '.join(_seen + (str(path),))}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent:
        data = deep_merge(read_preset(parent, _seen + (str(path),)), data)
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.path=value (for example pretrain.lr=1e-4)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}': empty key segment in '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override '{item}': '{part}' is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return out


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def format_validation_error(model: type[BaseModel], exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = ", ".join(sorted(parent.model_fields)) if parent else "?"
            where = ".".join(str(p) for p in loc[:-1]) or "the top level"
            lines.append(f"unknown key '{dotted}'; allowed keys under {where}: {allowed}")
        else:
            got = err.get("input")
            got_s = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{dotted}: {err['msg']}{got_s}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def validate_config(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc)) from None


def _public(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_public(v) for v in value]
    return value


def config_to_dict(cfg: BaseModel) -> dict[str, Any]:
    """JSON-safe dump with secrets blanked: what gets written next to artifacts."""
    return json.loads(json.dumps(_public(cfg.model_dump()), default=str))


def config_hash(cfg: BaseModel | dict[str, Any]) -> str:
    """Short, stable hash of a config (secrets excluded) for lineage and cache keys."""
    data = config_to_dict(cfg) if isinstance(cfg, BaseModel) else _public(cfg)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
