"""Supported library versions (methods/versions.py) against the installed transformers.

CI runs this file at the newest transformers (main suite) and at the floors (5.17 and 5.24, .ci/run),
so both ends of each keyword and gate below are exercised against the real releases."""
from __future__ import annotations

import warnings

import pytest
import torch

from methods import versions
from methods.versions import UnsupportedVersion, at_least, version_tuple


def test_version_tuples_take_the_numeric_release():
    assert version_tuple("2.11.0+cu130") == (2, 11, 0)
    assert version_tuple("5.24.0.dev0") == (5, 24, 0)
    assert version_tuple("5.17") == (5, 17)
    assert at_least("5.24.0", "5.24") and not at_least("5.23.2", "5.24") and at_least("6.0.0", "5.24")


def test_pyproject_states_the_floors_of_methods_versions(repo_root):
    import tomllib

    from packaging.requirements import Requirement

    deps = {Requirement(r).name: Requirement(r) for r in
            tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]}
    lower = lambda name: next(s.version for s in deps[name].specifier if s.operator == ">=")
    assert lower("torch") == versions.TORCH_FLOOR and lower("transformers") == versions.TRANSFORMERS_FLOOR


def test_installed_versions_meet_the_floors():
    found = versions.check_floors()
    assert at_least(found["transformers"], versions.TRANSFORMERS_FLOOR)


def test_the_runtime_passes_the_cache_under_the_keyword_of_the_installed_release():
    """5.24 renamed the decoder layers' ``past_key_values`` to ``cache`` (the old name warns and is
    to be removed in 5.40): the runtime must use whichever the installed layer declares."""
    from methods.adapters import LlavaOnevisionAdapter
    from methods.runtime import cache_keyword

    ad = LlavaOnevisionAdapter.tiny(layers=2, image_size=28)
    expected = "cache" if at_least(versions.transformers_version(), "5.24") else "past_key_values"
    assert cache_keyword(ad.lm.layers[0]) == expected
    px = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ad.run(px, "what?", max_new_tokens=3)
    assert not [w for w in caught if "past_key_values" in str(w.message)]


def test_molmo2_below_its_floor_stops_with_a_clear_error(monkeypatch):
    import transformers

    monkeypatch.setattr(transformers, "__version__", "5.23.0")
    from methods.adapters.molmo2 import Molmo2VideoAdapter

    with pytest.raises(UnsupportedVersion, match=r"Molmo2 .*needs transformers >= 5\.24; found 5\.23\.0"):
        Molmo2VideoAdapter.tiny()
    with pytest.raises(UnsupportedVersion, match="needs transformers >= 5.24"):
        Molmo2VideoAdapter.from_pretrained("/nonexistent")
