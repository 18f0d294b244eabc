"""The host-sync counter (replicate/harness/host_syncs.py) against hand-counted operations, and the
runtime's syncs: none per decoder layer, none in a plain prefill, one token read per decode."""
from __future__ import annotations

import torch

from replicate.harness.device_emulation import EmulatedDevice
from replicate.harness.host_syncs import HostSyncCounter


def _kinds(summary: dict) -> dict:
    out: dict = {}
    for e in summary["ops"]:
        out[e["kind"]] = out.get(e["kind"], 0) + e["count"]
    return out


def test_counts_match_the_operations_by_hand():
    with EmulatedDevice() as dev:
        x = dev.tensor(torch.arange(6.0) - 2)
        with HostSyncCounter() as c:
            y = x * 2 + 1                                    # kernels only: nothing
            float(y.sum())                                   # item
            x[x > 0]                                         # boolean mask: data-dependent shape
            x.nonzero()                                      # data-dependent shape
            torch.tensor([1, 2], device=x.device)            # host data straight onto the device
            x.cpu()                                          # copy d2h
            torch.zeros(2).to(x.device, non_blocking=True)   # listed, not counted
    s = c.summary()
    assert _kinds(s) == {"item": 1, "data-dependent shape": 2, "tensor(data)": 1, "copy d2h": 1,
                         "copy h2d (non_blocking)": 1}
    assert s["total"] == 5 and s["non_blocking_copies"] == 1
    assert all(e["where"].startswith("tests/harness/test_host_syncs.py:") for e in s["ops"])


def test_host_tensors_make_no_sync():
    x = torch.arange(6.0) - 2
    with HostSyncCounter() as c:
        float(x.sum()), x[x > 0], x.nonzero(), torch.tensor([1, 2])
    assert c.summary()["total"] == 0


def _syncs(layers: int, method: str, decode_steps: int = 3) -> dict:
    from methods.adapters import LlavaOnevisionAdapter
    from replicate.harness.efficiency import EfficiencyCell

    ad = LlavaOnevisionAdapter.tiny(layers=layers, image_size=56)
    px = torch.randn(4, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    with EmulatedDevice() as dev:
        dev.move(ad.model)
        cell = EfficiencyCell(ad, method, None if method == "vanilla" else 0.25)
        with HostSyncCounter() as c:
            cell.request(ad, dev.tensor(px), None, "what?", decode_steps, timer=c.timer())
    return c.summary()["by_stage"]


def test_the_runtime_makes_no_sync_per_layer_and_decoding_reads_the_tokens_once():
    for layers in (4, 8):
        van = _syncs(layers, "vanilla")
        assert van.get("prefill", 0) == 0 and van.get("build_inputs", 0) == 0
        assert van["decode"] == 1                       # the generated tokens, read once at the end
    # FastV's one stage needs a few (candidates, their count): as many at 4 layers as at 8
    assert _syncs(4, "fastv")["prefill"] == _syncs(8, "fastv")["prefill"] > 0
