"""`exact` agrees with fvcore and FlopCounterMode (<= 0.5 %) on full-size LLaVA-OV-7B (meta device)
and on the tiny real-tensor model of the same family.

Alignment: the oracles count full (non-causal) attention, no RMSNorm, no element-wise ops; fvcore
also counts LayerNorm (5·numel) and bilinear upsampling (4·numel). exact rows are filtered by
FVCORE_KINDS / FLOPCOUNTER_KINDS, causal=False, and the LM head is counted only where the oracle
model has one.
"""
import warnings

import pytest
import torch

from costmodel import (FLOPCOUNTER_KINDS, FVCORE_KINDS, TokenSchedule, decode_step_costs, exact_costs,
                       load_arch, tiny_arch, tiny_config, uniform_vision)
from costmodel.oracles import (fvcore_count, oracle_llm_decode_step, oracle_llm_prefill, oracle_vision_tower,
                               relative_gap)

TOL = 0.005
KINDS = {"fvcore": FVCORE_KINDS, "flopcounter": FLOPCOUNTER_KINDS}
CASES = {
    # name: (config, arch, device, prefill tokens, kv length, frames)
    "full-meta": ("llava-onevision-7b", load_arch("llava-onevision-7b"), "meta", 6373, 6373, 32),
    "tiny-cpu": (tiny_config("llava-onevision-7b"), tiny_arch("llava-onevision-7b"), "cpu", 37, 50, 3),
}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _llm_schedule(arch, n, frames=1):
    return TokenSchedule(frames=frames, vision=uniform_vision(frames, arch.vision.patches_per_frame,
                                                              arch.vision.layers),
                         projector_tokens=0, llm_visual=(n,) * arch.llm.layers)


def _assert_agree(counts, exact_macs_of):
    assert set(counts) == {"fvcore", "flopcounter"}
    for name, count in counts.items():
        analytic = exact_macs_of(KINDS[name])
        gap = relative_gap(analytic, count.macs)
        print(f"{name}: oracle {count.macs:.6e} MACs, exact {analytic:.6e}, gap {gap:.2e}")
        assert gap <= TOL, (name, analytic, count.macs, count.by_op)
        assert count.flops == 2 * count.macs


@pytest.mark.parametrize("case", CASES)
def test_llm_prefill(case):
    cfg, arch, device, n, _, _ = CASES[case]
    table = exact_costs(arch, _llm_schedule(arch, n), causal=False, lm_head="none")
    _assert_agree(oracle_llm_prefill(cfg, n, device),
                  lambda kinds: table.total("prefill", unit="macs", kinds=kinds))


@pytest.mark.parametrize("case", CASES)
def test_llm_decode_step(case):
    cfg, arch, device, _, kv, _ = CASES[case]
    table = decode_step_costs(arch, kv, lm_head=False)
    _assert_agree(oracle_llm_decode_step(cfg, kv, device),
                  lambda kinds: table.total("decode", unit="macs", kinds=kinds))


@pytest.mark.parametrize("case", CASES)
def test_vision_tower(case):
    cfg, arch, device, _, _, frames = CASES[case]
    table = exact_costs(arch, _llm_schedule(arch, 1, frames), stages=("vision",))
    _assert_agree(oracle_vision_tower(cfg, frames, device),
                  lambda kinds: table.total("vision", unit="macs", kinds=kinds))


@pytest.mark.parametrize("lm_head", ["last", "all"])
def test_lm_head_matches_hf_logits_to_keep(lm_head):
    cfg, arch = tiny_config("llava-onevision-7b"), tiny_arch("llava-onevision-7b")
    table = exact_costs(arch, _llm_schedule(arch, 20), lm_head=lm_head)
    _assert_agree(oracle_llm_prefill(cfg, 20, "cpu", lm_head=lm_head),
                  lambda kinds: table.total("prefill", unit="macs", kinds=kinds)
                  + table.total("lm_head", unit="macs", kinds=kinds))


def test_bilinear_pooling_matches_fvcore():
    """LLaVA-OV's apply_pooling is F.interpolate(bilinear) of the 27x27 grid to 14x14."""
    arch = tiny_arch("llava-onevision-7b")
    frames, d = 3, arch.llm.hidden
    x = torch.randn(frames, d, 4, 4)
    count = fvcore_count(lambda t: torch.nn.functional.interpolate(t, size=(2, 2), mode="bilinear"), (x,))
    table = exact_costs(arch, _llm_schedule(arch, 1, frames), stages=("pooling",))
    assert count.macs == table.total("pooling", unit="macs") == 4 * frames * 4 * d


def test_oracle_bad_device():
    with pytest.raises(ValueError, match="unknown device 'cuda:7'"):
        oracle_llm_prefill("llava-onevision-7b", 10, device="cuda:7")
