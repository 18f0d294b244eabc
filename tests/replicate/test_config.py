"""Workflow config validation: unknown keys and bad values are named with what is allowed."""
from __future__ import annotations

import pytest

from replicate.configuration import ConfigError, deep_merge, load_config, validate_config


def test_shipped_config_is_valid_and_off_gpu_by_default():
    config = load_config()
    assert config["gpu"] is False
    assert all(v == "" for v in config["paths"]["checkpoints"].values())
    assert all(v == "" for v in config["paths"]["datasets"].values())


def test_unknown_top_level_key_names_it_and_the_allowed_keys(config):
    config["gpus"] = True
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    msg = str(err.value)
    assert "'gpus'" in msg and "allowed keys" in msg and "'gpu'" in msg and "'paths'" in msg


def test_unknown_nested_key_names_its_section(config):
    config["paths"]["checkpoints"]["llava-ov-7b"] = "/x"
    with pytest.raises(ConfigError, match=r"\['llava-ov-7b'\] in paths.checkpoints; allowed keys: .*llava-onevision-7b"):
        validate_config(config)


def test_bad_enum_value_names_the_key_and_the_allowed_values(config):
    config["analytic"]["budget_rounding"] = "floor"
    with pytest.raises(ConfigError, match=r"analytic.budget_rounding: 'floor' is not allowed; allowed values: "
                                          r"\['per_frame_ceil', 'global_round'\]"):
        validate_config(config)


def test_bad_model_in_grid(config):
    config["analytic"]["grid"][0]["models"] = ["gpt-4v"]
    with pytest.raises(ConfigError, match=r"analytic.grid.0.models.0: 'gpt-4v' is not allowed"):
        validate_config(config)


def test_wrong_type(config):
    config["gpu"] = "yes"
    with pytest.raises(ConfigError, match=r"config key gpu: 'yes' is not of type 'boolean'"):
        validate_config(config)


def test_deep_merge_overrides_leaves_and_keeps_siblings():
    base = {"paths": {"checkpoints": {"a": "", "b": ""}}, "gpu": False}
    merged = deep_merge(base, {"paths": {"checkpoints": {"a": "/ckpt"}}, "gpu": True})
    assert merged == {"paths": {"checkpoints": {"a": "/ckpt", "b": ""}}, "gpu": True}
    assert base["paths"]["checkpoints"]["a"] == ""  # input untouched


def test_command_line_booleans_are_coerced():
    from replicate.configuration import coerce_cli_values

    cfg = coerce_cli_values({"gpu": "true", "tiers": {"paper": "False", "cpu": True}})
    assert cfg == {"gpu": True, "tiers": {"paper": False, "cpu": True}}
