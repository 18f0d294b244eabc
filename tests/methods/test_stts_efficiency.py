"""STTS measured tokens pruned (packing with refill), cost-model speed-ups (fwd+bwd convention),
the timing harness and the STTS evaluators."""
from __future__ import annotations

import json

import pytest
import torch

from replicate.harness.stts_efficiency import predict, scorer_macs, time_molmo2
from replicate.harness.stts_packing import packing_stats


def test_packing_stats_counts_fragmentation_and_refill_by_hand():
    # 3x6 patch grid, 3x3 groups: 2 groups (9 patches each) per frame, 18 patches per frame
    keep = torch.tensor([[True, True], [True, False], [True, False], [True, False]])
    s = packing_stats(keep, (3, 6), 3)
    # kept patches 18, 9, 9, 9 -> FFD bins [18], [9, 9], [9]: 3 bins; the last frame sits alone and
    # its 9 pruned patches are refilled; ceil(45 / 18) = 3 bins too
    assert s["llm_tokens_pruned_pct"] == pytest.approx(37.5)
    assert s["bins"] == 3 and s["bins_without_fragmentation"] == 3
    assert s["refilled_patches"] == 9 and s["frames_alone_in_bin"] == 2
    assert s["vit_tail_slots_pruned_pct"] == pytest.approx(25.0)
    assert s["vit_tail_active_pruned_pct"] == pytest.approx(100 * (1 - 54 / 72))


def test_fragmentation_costs_bins_beyond_the_ceil_bound():
    # 3x9 grid: 3 groups of 9 patches, 27 per frame. Three frames keep 2 groups (18 patches): no two
    # share a bin, so 3 bins where ceil(54 / 27) = 2; each sits alone and gets its 9 patches back
    keep = torch.tensor([[True, True, False]] * 3)
    s = packing_stats(keep, (3, 9), 3)
    assert s["bins"] == 3 and s["bins_without_fragmentation"] == 2
    assert s["refilled_patches"] == 27 and s["vit_tail_slots_pruned_pct"] == 0.0
    assert s["vit_tail_slots_pruned_pct_ceil"] == pytest.approx(100 / 3)


def test_predicted_speedups_grow_with_frames_and_training_uses_fwd_bwd():
    rows = predict("molmo2-4b", (16, 128, 256), 0.5)
    assert [r["frames"] for r in rows] == [16, 128, 256]
    assert rows[0]["inference"] < rows[1]["inference"] < rows[2]["inference"]
    assert all(1.0 < r["training"] < 2.5 for r in rows)
    more_bins = predict("molmo2-4b", (128,), 0.5, bins={128: 80})[0]
    assert more_bins["bins"] == 80 and more_bins["inference"] < rows[1]["inference"]
    from costmodel.arch import load_arch
    assert scorer_macs(load_arch("molmo2-4b"), 1, 81) > 81 * 4304 * 4304  # the MLP's square layer


@pytest.mark.molmo2
def test_timing_harness_runs_both_paths_on_the_tiny_molmo2():
    from methods.adapters.molmo2 import Molmo2VideoAdapter

    rows = time_molmo2(Molmo2VideoAdapter.tiny(), [4], repeats=1, warmup=0)
    r = rows[0]
    assert r["vanilla_bins"] == 4 and r["stts_bins"] < 4
    assert r["stts_llm_visual"] == 4 * 9 - round(9 * 0.5 * 4) and r["vanilla_llm_visual"] == 36
    assert r["inference_speedup"] > 0 and r["training_speedup"] > 0


def _claim(ev, frames=128):
    return {"id": "x", "evaluator": ev, "setting": {"frames": frames, "options": {"topk": 0.5}}}


def test_stts_evaluators_read_their_files_and_refuse_cpu_timings(tmp_path):
    from replicate import stts_evaluators as E
    from replicate.evaluator_base import Context

    ctx = Context(tmp_path, {})
    (tmp_path / "results/analytic").mkdir(parents=True)
    videos = [{"llm_tokens_pruned_pct": 50.0}, {"llm_tokens_pruned_pct": 50.0}]
    mean = {"llm_tokens_pruned_pct": 50.0, "vit_tail_slots_pruned_pct": 49.2, "bins": 65,
            "bins_without_fragmentation": 64, "refilled_patches": 400, "frames_alone_in_bin": 2,
            "vit_tail_slots_pruned_pct_ceil": 50.0}
    (tmp_path / E.PACKING).write_text(json.dumps({"full_size": {"setting": {"frames": 128, "topk": 0.5},
                                                                 "mean": mean, "videos": videos, "n_videos": 2}}))
    assert E.stts_measured_tokens_pruned(_claim("t"), ctx).measured == 50.0
    assert E.stts_measured_vit_tail(_claim("v"), ctx).measured == pytest.approx(49.2)
    with pytest.raises(ValueError, match="frames/topk"):
        E.stts_measured_tokens_pruned(_claim("t", frames=64), Context(tmp_path, {}))
    (tmp_path / "results/gpu/stts").mkdir(parents=True)
    row = {"frames": 128, "device": "cpu", "dtype": "float32", "vanilla_inference_s": 2.0, "stts_inference_s": 1.0,
           "inference_speedup": 2.0, "stts_bins": 64}
    (tmp_path / E.GPU_TIMING).write_text(json.dumps({"arch": "molmo2-4b", "rows": [row]}))
    with pytest.raises(ValueError, match="no CUDA timing"):
        E.gpu_inference_speedup(_claim("g"), Context(tmp_path, {}))
    row["device"] = "cuda:0"
    (tmp_path / E.GPU_TIMING).write_text(json.dumps({"arch": "molmo2-4b", "rows": [row],
                                                     "predicted_molmo2_4b": [{"frames": 128, "inference": 1.98,
                                                                              "training": 1.98}]}))
    m = E.gpu_inference_speedup(_claim("g"), Context(tmp_path, {}))
    assert m.measured == 2.0 and m.evidence["predicted"] == 1.98
    with pytest.raises(ValueError, match="no training timing"):
        E.gpu_training_speedup(_claim("g"), Context(tmp_path, {}))
    with pytest.raises(ValueError, match="no row at 256"):
        E.gpu_inference_speedup(_claim("g", frames=256), Context(tmp_path, {}))


@pytest.mark.molmo2
def test_checkpointed_training_step_and_answer_logits_change_no_value():
    """The timed step as Molmo2's trainer takes it (every block checkpointed, logits on the answer
    only) computes the same loss and gradients as the plain step on the full logits."""
    import torch

    from methods.adapters.molmo2 import Molmo2VideoAdapter, answer_logits
    from replicate.harness.stts_efficiency import activation_checkpointing

    ad = Molmo2VideoAdapter.tiny()
    for p in ad.model.parameters():
        p.requires_grad_(True)
    px = torch.randn(4, 3, ad.image_size, ad.image_size, generator=torch.Generator().manual_seed(0))
    answer = torch.tensor([11, 12, 13, 14])

    def step(checkpointing: bool):
        with activation_checkpointing(ad.model, checkpointing):
            inputs = ad.build_inputs("what?", ad.tokens_of(ad.run_tower(px)))
            loss = torch.nn.functional.cross_entropy(answer_logits(ad, inputs, answer).float(), answer)
            loss.backward()
        grads = {n: p.grad.clone() for n, p in ad.model.named_parameters() if p.grad is not None}
        ad.model.zero_grad(set_to_none=True)
        return loss.detach(), grads, inputs

    plain, g_plain, inputs = step(False)
    ckpt, g_ckpt, _ = step(True)
    assert not ad.model.training and not any(getattr(m, "gradient_checkpointing", False) for m in ad.model.modules())
    assert torch.allclose(plain, ckpt) and g_plain.keys() == g_ckpt.keys() and len(g_plain) > 10
    assert all(torch.allclose(g_plain[k], g_ckpt[k], atol=1e-6) for k in g_plain)
    with torch.no_grad():   # the answer's logits equal the full forward's, sliced
        emb = torch.cat([inputs.inputs_embeds, ad.embed_text(answer)[None]], dim=1)
        types = torch.cat([inputs.info["mm_token_type_ids"], torch.zeros_like(answer)[None]], dim=1)
        full = ad.model(inputs_embeds=emb, mm_token_type_ids=types, logits_to_keep=0).logits[0]
        L = inputs.length
        assert torch.allclose(answer_logits(ad, inputs, answer), full[L - 1:L - 1 + 4], atol=1e-6)


@pytest.mark.molmo2
def test_every_measurement_is_written_as_it_is_taken_and_out_of_memory_is_a_result(tmp_path, monkeypatch):
    from methods.adapters.molmo2 import Molmo2VideoAdapter
    from replicate.harness import stts_efficiency as se

    taken = []
    real = se._train_step

    def failing(adapter, pix, scorer, *a, **k):  # vanilla's training step runs out of memory
        if scorer is None:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(adapter, pix, scorer, *a, **k)

    monkeypatch.setattr(se, "_train_step", failing)
    rows = se.time_molmo2(Molmo2VideoAdapter.tiny(), [2], repeats=1, warmup=0, on_measurement=taken.append)
    assert [(m["method"], m["measurement"], m["status"]) for m in taken] == [
        ("vanilla", "inference", "ok"), ("vanilla", "train_step", "out-of-memory"),
        ("stts", "inference", "ok"), ("stts", "train_step", "ok")]
    assert "out of memory" in taken[1]["reason"] and taken[3]["checkpointing"] is True
    r = rows[0]
    assert r["vanilla_train_step_status"] == "out-of-memory" and "training_speedup" not in r
    assert r["inference_speedup"] > 0


def test_the_cli_defaults_to_bf16_on_cuda_and_writes_json_lines():
    from replicate.harness.stts_efficiency import build_parser

    a = build_parser().parse_args(["--out", "x.json"])
    assert a.dtype is None and a.threads is None and not a.no_checkpointing
