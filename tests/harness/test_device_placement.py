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
    from methods.adapters.qwen2_5_vl import QWEN2_5_VL_METHODS
    from methods.registry import list_methods

    if arch == "qwen2.5-vl":
        return list(QWEN2_5_VL_METHODS)
    return [m for m in list_methods() if m not in ("stts-easy", "stts-heuristic", "stts-random")]


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
