"""Every tensor of a request on the model's device: the efficiency harness and every method on every
architecture, with the model on an emulated device (replicate/harness/device_emulation.py).

On a CPU machine a tensor built on the host and combined with the model's tensors passes every
other test and fails on the first GPU (LLaVA-Video's prompt layout did, for all 13 methods). Here
such a mix raises DeviceMix where CUDA would raise; the emulation changes no value, so each
request's tokens equal the plain CPU run's."""
from __future__ import annotations

import pytest
import torch

from methods.types import NotApplicable
from replicate.harness.device_emulation import DeviceMix, EmulatedDevice, EmulatedTensor
from replicate.harness.efficiency import EfficiencyCell, run_efficiency

FRAMES = 4


def _adapter(arch: str):
    from methods.adapters import LlavaOnevisionAdapter, Qwen2_5_VLAdapter

    if arch == "qwen2.5-vl":
        return Qwen2_5_VLAdapter.tiny(text_layers=4)
    return LlavaOnevisionAdapter.tiny(arch, layers=4, image_size=56)


def _methods(arch: str) -> list[str]:
    """Every registered method that runs on ``arch``'s family (a method states its families); STTS's
    scorer variants run the STTS path already covered."""
    from methods.attach import method_families
    from methods.registry import list_methods

    return [m for m in list_methods() if arch in method_families(m)
            and m not in ("stts-easy", "stts-heuristic", "stts-random")]


def _tokens(ad, cell, px) -> list[int]:
    with torch.inference_mode():
        return cell.request(ad, px, None, "what happens?", 1).tokens


@pytest.mark.parametrize("arch", ["llava-onevision", "llava-video", "qwen2.5-vl"])
def test_every_method_keeps_every_tensor_on_the_model_device(arch):
    ad = _adapter(arch)
    px = torch.randn(FRAMES * (2 if arch == "qwen2.5-vl" else 1), 3, ad.image_size, ad.image_size,
                     generator=torch.Generator().manual_seed(0))
    plain, ran = {}, []
    for name in _methods(arch):
        try:
            cell = EfficiencyCell(ad, name, None if name == "vanilla" else 0.5)
            plain[name] = (cell, _tokens(ad, cell, px))
        except NotApplicable:
            continue
    with EmulatedDevice() as dev:
        dev.move(ad.model)
        assert ad.device.type == "meta"
        for name, (cell, tokens) in plain.items():
            assert _tokens(ad, cell, dev.tensor(px)) == tokens, name
            ran.append(name)
    assert {"vanilla", "tango", "fastv", "visionzip", "holitom"} <= set(ran)


def test_the_check_fails_on_a_host_tensor_indexed_by_a_device_index():
    """What LLaVA-Video's layout did before it built its kinds on the device."""
    with EmulatedDevice() as dev:
        order = dev.tensor(torch.tensor([2, 0, 1]))
        with pytest.raises(DeviceMix, match="aten.index.Tensor: tensors on the device mixed with host tensors"):
            torch.tensor([1, 1, 2])[order]
        assert isinstance(torch.zeros(3, device=order.device)[order], EmulatedTensor)
        assert torch.zeros(3, device=order.device)[torch.tensor([0, 1])].shape == (2,)  # host indices: allowed


def test_the_efficiency_harness_on_the_emulated_device_counts_and_lists_syncs():
    ad = _adapter("llava-video")
    written = []
    with EmulatedDevice() as dev:
        dev.move(ad.model)
        cells = run_efficiency(arch="cpu-bench", methods=["vanilla", "tango"], retentions=[0.25], device="cpu",
                               frames=FRAMES, repeats=1, warmup=0, decode_tokens=2, hardware="cpu-2core",
                               progress=False, adapter=ad, on_cell=written.append)
    assert [c["method"] for c in written] == ["vanilla", "tango"] and all(c["status"] == "ok" for c in cells)
    syncs = {c["method"]: c["host_syncs"] for c in cells}
    assert syncs["vanilla"]["timed_stages"].get("prefill", 0) == 0
    assert syncs["tango"]["timed_stages"]["prefill"] > 0            # LLaVA-Video: Tango's intra-LLM stage
    assert all({"stage", "kind", "op", "where", "count"} <= set(e) for e in syncs["tango"]["ops"])


@pytest.mark.molmo2
def test_the_stts_harness_keeps_molmo2_on_its_device():
    from methods.adapters.molmo2 import Molmo2VideoAdapter
    from replicate.harness.stts_efficiency import time_molmo2

    ad = Molmo2VideoAdapter.tiny()
    with EmulatedDevice() as dev:
        dev.move(ad.model)
        rows = time_molmo2(ad, [2], repeats=1, warmup=0)
    assert rows[0]["stts_llm_visual"] < rows[0]["vanilla_llm_visual"] and rows[0]["stts_train_step_s"] > 0


@pytest.mark.parametrize("arch", ["llava-onevision", "qwen2.5-vl"])
def test_batched_generation_keeps_every_tensor_on_the_model_device(arch):
    """``methods.load(...).generate``'s batched decode (methods.generation) on the emulated device:
    the batch's KV cache, masks and positions ((3, B, 1) M-RoPE ids on Qwen2.5-VL) built where the
    model is, through the runtime's one decode step; tokens equal to the plain run's."""
    import methods

    ad = _adapter(arch)
    frames = FRAMES * (2 if arch == "qwen2.5-vl" else 1)
    clips = [torch.randn(frames, 3, ad.image_size, ad.image_size, generator=torch.Generator().manual_seed(s))
             for s in (1, 2)]
    questions = ["what happens?", "which colour is it?"]
    model = methods.load(ad, "fastv", retention=0.5, frames=frames)
    plain = [a.tokens for a in model.generate(clips, questions, max_new_tokens=3, eos_token_id=[])]
    with EmulatedDevice() as dev:
        dev.move(ad.model)
        assert ad.device.type == "meta"
        moved = [dev.tensor(c) for c in clips]
        emulated = [a.tokens for a in model.generate(moved, questions, max_new_tokens=3, eos_token_id=[])]
    assert emulated == plain and all(len(t) == 3 for t in plain)
