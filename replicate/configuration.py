"""Load and validate the workflow config (replicate/config.yaml).

``validate_config`` gives the error Snakemake's validator does not: the bad key, where it is and
the allowed keys. The Snakefile calls it before ``snakemake.utils.validate`` (which fills defaults).
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "config.yaml"
SCHEMA_FILE = HERE / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid workflow config; the message names the key and what is allowed."""


@lru_cache(maxsize=2)
def schema(path: str = str(SCHEMA_FILE)) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].split("/")[-1]]
    return node


def _subschema(root: dict, path: list) -> dict:
    node = root
    for part in path:
        node = _resolve(node, root)
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            props = node.get("properties", {})
            node = props.get(part, node.get("additionalProperties", {}) if isinstance(
                node.get("additionalProperties"), dict) else {})
    return _resolve(node, root)


def validate_config(config: Mapping[str, Any], *, schema_path: Path = SCHEMA_FILE) -> None:
    root = schema(str(schema_path))
    errors = sorted(jsonschema.Draft202012Validator(root).iter_errors(dict(config)),
                    key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        node = _subschema(root, list(err.absolute_path))
        allowed = sorted(node.get("properties", {}))
        bad = sorted(set(err.instance) - set(allowed))
        raise ConfigError(f"unknown config key(s) {bad} in {where}; allowed keys: {allowed}")
    if err.validator == "enum":
        raise ConfigError(f"config key {where}: {err.instance!r} is not allowed; allowed values: {err.validator_value}")
    raise ConfigError(f"config key {where}: {err.message}")


def coerce_cli_values(config: dict[str, Any]) -> dict[str, Any]:
    """`--config gpu=true` arrives as the string 'true' (Snakemake only parses 'True'/'False'):
    turn 'true'/'false' strings of the boolean keys into booleans, in place."""
    def coerce(value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value

    if "gpu" in config:
        config["gpu"] = coerce(config["gpu"])
    if isinstance(config.get("tiers"), dict):
        for key in list(config["tiers"]):
            config["tiers"][key] = coerce(config["tiers"][key])
    return config


def load_config(path: Path | str = CONFIG_FILE, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config file merged (deeply) with ``overrides``, validated."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    if overrides:
        config = deep_merge(config, overrides)
    validate_config(config)
    return config


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
