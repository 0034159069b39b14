"""Typed configuration. `load_config(preset, overrides)` is the only way stages get their settings."""

from unipic.config.base import Section, config_hash, config_to_dict
from unipic.config.root import UniPicConfig, load_config

__all__ = ["Section", "UniPicConfig", "config_hash", "config_to_dict", "load_config"]
