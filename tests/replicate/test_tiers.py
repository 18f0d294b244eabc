"""Tier gating: each tier runs or says exactly why not."""
from __future__ import annotations

import pytest

from replicate.tiers import NO_CUDA, tier_status


def _paper_claim(**setting):
    return {"tier": "paper", "setting": {"model": "llava-onevision-7b", "benchmarks": ["videomme"], **setting}}


def test_analytic_always_runs(config):
    assert tier_status("analytic", config).runnable


def test_disabled_tier_names_the_config_key(config):
    config["tiers"]["analytic"] = False
    st = tier_status("analytic", config)
    assert not st.runnable and st.reason == "analytic tier disabled in the config (tiers.analytic: false)"


def test_gpu_without_cuda_gives_the_cuda_reason(config):
    config["gpu"] = True
    st = tier_status("gpu", config, cuda=False)
    assert not st.runnable and st.reason == NO_CUDA
    assert NO_CUDA == "no CUDA device on this machine (torch.cuda.is_available() is False)"


def test_gpu_flag_off_on_a_cuda_machine(config):
    st = tier_status("gpu", config, cuda=True)
    assert not st.runnable and "config (gpu: false)" in st.reason and "profiles/gpu" in st.reason
    config["gpu"] = True
    assert tier_status("gpu", config, cuda=True).runnable


def test_paper_names_every_missing_key(config):
    st = tier_status("paper", config, _paper_claim())
    assert not st.runnable
    assert st.reason == ("no checkpoint for llava-onevision-7b: config key paths.checkpoints.llava-onevision-7b "
                         "is empty; no dataset for videomme: config key paths.datasets.videomme is empty")


def test_paper_nonexistent_path_and_then_present(config, tmp_path):
    config["paths"]["checkpoints"]["llava-onevision-7b"] = str(tmp_path / "nope")
    config["paths"]["datasets"]["videomme"] = str(tmp_path)
    st = tier_status("paper", config, _paper_claim())
    assert st.reason == (f"checkpoint path {tmp_path / 'nope'} (config key paths.checkpoints.llava-onevision-7b) "
                         "does not exist")
    (tmp_path / "nope").mkdir()
    assert "has no config.json" in tier_status("paper", config, _paper_claim()).reason  # not an HF checkpoint
    (tmp_path / "nope" / "config.json").write_text("{}")
    assert tier_status("paper", config, _paper_claim()).runnable


def test_paper_uses_the_claims_checkpoint_name(config):
    st = tier_status("paper", config, _paper_claim(model="molmo2-4b", checkpoint="molmo2-4b-lite-50"))
    assert "paths.checkpoints.molmo2-4b-lite-50" in st.reason


def test_unknown_tier():
    with pytest.raises(ValueError, match="unknown tier 'tpu'"):
        tier_status("tpu", {})
