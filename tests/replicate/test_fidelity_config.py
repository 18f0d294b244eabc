"""An unknown ``fidelity`` is refused at config time, naming the allowed values (issue 24)."""
from __future__ import annotations

import pytest

from methods.registry import list_methods, method_class
from replicate.configuration import ConfigError, validate_method_options, with_defaults

WITH_FIDELITY = [m for m in list_methods() if "fidelity" in method_class(m).options()]


def test_every_reimplemented_baseline_and_stts_has_a_released_default():
    assert {"fastv", "pdrop", "fastvid", "visionzip", "stts", "tango"} <= set(WITH_FIDELITY)
    for m in WITH_FIDELITY:
        assert method_class(m).options()["fidelity"]["default"] == "released", m


@pytest.mark.parametrize("method", WITH_FIDELITY)
def test_unknown_fidelity_is_a_config_error_naming_the_allowed(method):
    config = with_defaults({"cpu": {"options": {method: {"fidelity": "official"}}}})
    with pytest.raises(ConfigError, match=rf"cpu\.options\.{method}\.fidelity: 'official' is not a "
                                          r"Literal\['released', '(project|paper)'\]"):
        validate_method_options(config)
