"""Registry (lazy entries and the manifest), option checking, families, apply_method/detach and
``python -m methods``."""
from __future__ import annotations

import json

import pytest
import torch

import methods
from methods.__main__ import main
from methods.adapters import LlavaOnevisionAdapter
from methods.attach import apply_method
from methods.base import Method
from methods.registry import METHODS, build_manifest, check_entry, get_method, list_methods, manifest, method_classes


def test_registered_methods():
    names = list_methods()
    for n in ("vanilla", "fastv", "pdrop", "visionzip", "random", "uniform-pool", "holitom", "holitom-wo-m",
              "tango", "fastvid"):
        assert n in names
    assert methods.get_method("fastv").config.k == 2


def test_errors_name_the_value_and_the_allowed():
    with pytest.raises(ValueError, match="unknown method 'fastw'; registered: .*fastv"):
        get_method("fastw")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['K'\] for method 'fastv'; allowed: \['k', 'keep'"):
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


def test_registry_entries_are_methods_carrying_their_name():
    with pytest.raises(TypeError, match="needs Method subclasses"):
        check_entry("x", object)

    class Other(Method):
        name = "other"
        Config = type(get_method("vanilla").config)

    with pytest.raises(TypeError, match="registry entry 'fastv' points at Other, whose name is 'other'"):
        check_entry("fastv", Other)
    assert [c.name for c in method_classes()] == list(METHODS)


def test_the_manifest_is_what_the_classes_state():
    """methods/manifest.json (read by listing, the config check and the workflow, no torch) equals
    what the Method classes state; after changing a method's options, families or notation:
    `python -m methods --write-manifest`."""
    built = json.loads(json.dumps(build_manifest()))
    stale = sorted(n for n in set(built["methods"]) | set(manifest()["methods"])
                   if built["methods"].get(n) != manifest()["methods"].get(n))
    assert not stale and built == manifest(), f"stale entries {stale}: run `python -m methods --write-manifest`"


def test_listing_methods_imports_no_torch(repo_root):
    import subprocess
    import sys

    code = ("import sys, json; from methods.__main__ import main; main(['--json']); "
            "from methods.registry import method_info, nominal_names; nominal_names(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fastv"]["options"]["k"]["default"] == 2


def test_stages_are_declared_data_that_match_the_code():
    with pytest.raises(TypeError, match="declare 'pre_llm'"):
        class Undeclared(Method):  # noqa: F841
            name = "undeclared"

            def reduce(self, tokens):
                return None
    with pytest.raises(TypeError, match="unknown stage"):
        class Misspelt(Method):  # noqa: F841
            stages = ("pre-llm",)
    assert {m.name: m.stages for m in method_classes()}["stts"] == ("in_vit", "pre_llm")


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
    # a raw HF model has no tokenizer: refused, naming methods.load (never a byte-level stand-in)
    with pytest.raises(TypeError, match=r"methods\.load\(model, method=\.\.\., processor="):
        apply_method(a.model, "fastv", k=1)


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
    assert info["tango"]["families"] == ["llava-onevision", "llava-video", "qwen2.5-vl"]
    assert info["stts"]["families"] == ["llava-onevision", "llava-video", "molmo2"]
    assert info["vanilla"]["families"] == ["llava-onevision", "llava-video", "qwen2.5-vl", "molmo2"]
    assert info["fastvid"]["families"] == ["llava-onevision", "llava-video"]


def test_attaching_checks_the_family_and_names_the_supported_ones():
    from methods.adapters.qwen2_5_vl import Qwen2_5_VLAdapter

    qwen = Qwen2_5_VLAdapter.tiny(text_layers=2)
    with pytest.raises(ValueError, match="method 'stts' does not run on 'qwen2.5-vl' models .*supported "
                                         "families: llava-onevision, llava-video, molmo2"):
        apply_method(qwen, "stts", topk=0.5)
    assert qwen.method is None
    with pytest.raises(ValueError, match="needs an adapter with TowerHost .*missing: .*tower_grid"):
        get_method("tome").check_host(type("Bare", (), {"family": "molmo2", "num_layers": 2, "method": None})())
