"""Registry, option checking, apply_method/detach and ``python -m methods``."""
from __future__ import annotations

import json

import pytest
import torch

import methods
from methods.__main__ import main
from methods.adapters import LlavaOnevisionAdapter
from methods.attach import apply_method
from methods.base import Method
from methods.registry import METHODS, build_registry, get_method, list_methods


def test_registered_methods():
    names = list_methods()
    for n in ("vanilla", "fastv", "pdrop", "visionzip", "random", "uniform-pool", "holitom", "holitom-wo-m",
              "tango", "fastvid"):
        assert n in names
    assert methods.get_method("fastv").config.k == 2


def test_errors_name_the_value_and_the_allowed():
    with pytest.raises(ValueError, match="unknown method 'fastw'; registered: .*fastv"):
        get_method("fastw")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['K'\] for method 'fastv'; allowed: \['fidelity', 'k', 'keep'"):
        get_method("fastv", K=2)
    with pytest.raises(ValueError, match=r"needs option\(s\) \['retention'\]"):
        get_method("visionzip")
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"retention must be in \(0, 1\]"):
            get_method("random", retention=bad)
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
        get_method("fastv", keep=0)
    with pytest.raises(ValueError, match="scoring must be one of"):
        get_method("fastv", scoring="first")


def test_registry_rejects_non_methods_nameless_classes_and_duplicates():
    with pytest.raises(TypeError):
        build_registry([object])

    class Nameless(Method):
        Config = type(get_method("vanilla").config)

    with pytest.raises(TypeError, match="Nameless has no name"):
        build_registry([Nameless])

    class Other(Method):
        name = "fastv"
        Config = type(get_method("vanilla").config)

    with pytest.raises(ValueError, match="'fastv' is defined twice"):
        build_registry([*METHODS, Other])


def test_stages_are_declared_data_that_match_the_code():
    with pytest.raises(TypeError, match="declare 'pre_llm'"):
        class Undeclared(Method):  # noqa: F841
            name = "undeclared"

            def reduce(self, tokens):
                return None
    with pytest.raises(TypeError, match="unknown stage"):
        class Misspelt(Method):  # noqa: F841
            stages = ("pre-llm",)
    assert {m.name: m.stages for m in METHODS}["stts"] == ("in_vit", "pre_llm")


def test_apply_method_is_instance_scoped_and_undoable():
    a = LlavaOnevisionAdapter.tiny(seed=0, layers=3)
    b = LlavaOnevisionAdapter(a.model)            # a second adapter on the same weights
    other = LlavaOnevisionAdapter.tiny(seed=0, layers=3)
    px = torch.randn(3, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    before = a.run(px, "Q", max_new_tokens=3)
    model_attrs = set(vars(a.model))
    forwards = {n for n, m in a.model.named_modules() if "forward" in vars(m)}
    with apply_method(a, "fastv", k=1, keep=0.25) as h:
        pruned = a.run(px, "Q", max_new_tokens=3)
        assert pruned.schedule.llm_visual == (12, 3, 3)
        assert b.run(px, "Q", max_new_tokens=3).schedule.llm_visual == (12, 12, 12)
        assert other.run(px, "Q", max_new_tokens=3).schedule.llm_visual == (12, 12, 12)
        assert set(vars(a.model)) == model_attrs  # nothing patched on the model instance
        assert {n for n, m in a.model.named_modules() if "forward" in vars(m)} == forwards
        assert a.method is h.method
    assert a.method is None
    after = a.run(px, "Q", max_new_tokens=3)
    assert torch.equal(before.prefill_logits, after.prefill_logits) and before.tokens == after.tokens
    h2 = apply_method(a.model, "fastv", k=1)      # raw HF model -> wrapped in an adapter
    assert h2.adapter.model is a.model and h2.adapter.method.name == "fastv"
    h2.remove()
    assert h2.adapter.method is None


def test_apply_method_validates_k_against_depth():
    a = LlavaOnevisionAdapter.tiny(seed=0, layers=3)
    with pytest.raises(ValueError, match=r"K=3 is outside the allowed range \[1, 2\]"):
        apply_method(a, "fastv", k=3)
    with pytest.raises(ValueError, match=r"pdrop layers must be strictly increasing, got \(1, 2, 2\)"):
        apply_method(a, "pdrop")  # 3 layers cannot hold 3 distinct stage boundaries
    assert a.method is None


def test_cli_lists_methods_with_options(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    assert "fastv:" in text and "    k (int): default 2" in text and "retention (float): required" in text
    assert main(["--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["fastv"]["options"]["keep"]["default"] == 0.5
    assert info["visionzip"]["options"]["retention"]["required"] is True
    assert set(info) == set(list_methods())
    assert info["tango"]["adapters"] == ["llava-onevision", "qwen2.5-vl"]
    assert info["stts"]["adapters"] == ["llava-onevision", "molmo2"]
    assert info["vanilla"]["adapters"] == ["llava-onevision", "qwen2.5-vl", "molmo2"]
