"""Baselines: hand-checked reductions, and recorded TokenSchedule == costmodel's nominal one."""
from __future__ import annotations

import pytest
import torch

from costmodel.flops import exact_costs, paper_flops
from methods.adapters import LlavaOnevisionAdapter
from methods.attach import apply_method
from methods.baselines.pre_llm import frame_budgets, visionzip_frame
from methods.registry import get_method
from methods.types import VideoTokens


def _tokens(F=2, h=4, w=4, D=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = h * w
    return VideoTokens(torch.randn(F, N, D, generator=g), (h, w),
                       saliency={"vit_attn_received": torch.rand(F, N, generator=g)},
                       keys=torch.randn(F, N, 5, generator=g))


def test_visionzip_frame_by_hand():
    feat = torch.arange(12, dtype=torch.float32).view(6, 2)
    attn = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.0, 0.3])
    keys = torch.tensor([[1.0, 0], [0, 1], [1, 0.1], [0, 1], [0.1, 1], [1, 0]])
    # budget 4, share 0.5 -> 2 dominant (tokens 1, 3); rest [0, 2, 4, 5] -> targets every 2nd: 0, 4
    out, src = visionzip_frame(feat, attn, keys, 4, 0.5)
    assert src.tolist() == [0, 1, 3, 4]
    # token 2 (key ~[1, .1]) joins target 0, token 5 (key [1, 0]) joins target 0 -> mean of rows 2, 5
    assert torch.allclose(out[0], feat[0] + (feat[2] + feat[5]) / 2)
    assert torch.equal(out[1], feat[1]) and torch.equal(out[2], feat[3])
    assert torch.equal(out[3], feat[4])  # target without members is kept unchanged


def test_visionzip_counts_and_dominants():
    t = _tokens(F=3)
    red = get_method("visionzip", retention=0.3).reduce(t)
    assert red.num_tokens == 14                                       # round_half_up(0.3 * 48 = 14.4)
    assert frame_budgets(14, 3, 16).tolist() == [5, 5, 4]
    f0 = red.source[red.source < 16]
    top = torch.topk(t.saliency["vit_attn_received"][0], 4).indices    # round_half_up(5*54/64)=4
    assert set(top.tolist()) <= set(f0.tolist())
    # one-token layout: a frame is [dominant; contextual], frames in time order (issue 24)
    assert torch.equal(red.source // 16, (red.source // 16).sort().values)
    fixed = get_method("visionzip", retention=0.1, tokens_per_frame=3).reduce(t)
    assert fixed.num_tokens == 9
    with pytest.raises(KeyError, match="vit_attn_received"):
        get_method("visionzip", retention=0.5).reduce(VideoTokens(torch.zeros(1, 4, 2), (2, 2)))


def test_random_is_seeded_sorted_and_sized():
    t = _tokens()
    a = get_method("random", retention=0.25, seed=1).reduce(t)
    b = get_method("random", retention=0.25, seed=1).reduce(t)
    c = get_method("random", retention=0.25, seed=2).reduce(t)
    assert a.num_tokens == 8 and torch.equal(a.source, b.source) and not torch.equal(a.source, c.source)
    assert torch.equal(a.source, a.source.sort().values)
    assert torch.equal(a.features, t.features.reshape(-1, 3)[a.source])


def test_uniform_pool_by_hand():
    t = VideoTokens(torch.arange(16, dtype=torch.float32).view(1, 16, 1), (4, 4))
    red = get_method("uniform-pool", retention=0.25).reduce(t)   # 4x4 -> 2x2
    assert red.features.view(-1).tolist() == [2.5, 4.5, 10.5, 12.5]
    assert red.source.tolist() == [5, 7, 13, 15]  # cell at the centre of each 2x2 window


CASES = [("vanilla", {}), ("fastv", {"k": 2, "keep": 0.5}), ("fastv", {"k": 1, "keep": 0.3, "scoring": "mean"}),
         ("pdrop", {}), ("pdrop", {"lam": 0.6, "layers": (1, 3)}), ("visionzip", {"retention": 0.3}),
         ("random", {"retention": 0.25}), ("uniform-pool", {"retention": 0.25})]


@pytest.fixture(scope="module")
def ad():
    return LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=4, image_size=112)


@pytest.mark.parametrize("name,opts", CASES)
def test_recorded_schedule_equals_nominal(ad, name, opts):
    px = torch.randn(5, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    with apply_method(ad, name, **opts) as h:
        g = ad.run(px, "What is it?", max_new_tokens=3)
    rec = g.schedule
    nom = h.method.nominal_schedule(ad, frames=5, text_tokens=rec.text_tokens, decode_steps=rec.decode_steps)
    for field in ("frames", "vision", "projector_tokens", "llm_visual", "llm_newline", "text_tokens", "decode_steps"):
        assert getattr(rec, field) == getattr(nom, field), field
    arch = ad.arch_spec()
    assert paper_flops(arch, rec) == paper_flops(arch, nom)
    assert exact_costs(arch, rec).total() == exact_costs(arch, nom).total()


def test_fastv_keep_all_equals_vanilla(ad):
    px = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    base = ad.run(px, "Q", max_new_tokens=2)
    with apply_method(ad, "fastv", keep=1.0):
        same = ad.run(px, "Q", max_new_tokens=2)
    assert torch.equal(base.prefill_logits, same.prefill_logits)


def test_paper_wrappers_plans():
    h = get_method("holitom", retention=0.2)
    plan = h.inner_plan(28)
    assert [(s.layer, s.keep) for s in plan.stages] == [(18, 0.5)] and plan.merge == "running-pairwise"
    assert get_method("holitom", retention=0.2, merge="mean").inner_plan(28).merge == "mean"
    assert get_method("holitom-wo-m", retention=0.2).inner_plan(28) is None
    tango = get_method("tango", retention=0.1, intra_llm=True)
    tp = tango.inner_plan(28)
    assert tp.merge == "blend" and tp.stages[0].layer == 18
    assert get_method("tango", retention=0.1).inner_plan(28) is None
    with pytest.raises(ValueError, match=r"K=18 is outside the allowed range \[1, 3\]"):
        h.inner_plan(4)
