"""PyramidDrop's and FastV's ``fidelity`` (issue 24): the released code's rules against this project's
earlier reading, on hand-built cases whose expected numbers are worked out by hand from the official
rules (Cooperx521/PyramidDrop ``llava/model/modeling_llama_pdrop.py``, pkunlp-icler/FastV
``.../models/llama/modeling_llama.py``; commits in methods/baselines/inner_llm.py). The official
code needs LLaVA's old transformers and cannot run here, so nothing below runs it.

The toy LLM: 3 Qwen2 layers, hidden size 4, one head of dim 4, every layer's ``o_proj`` and
``down_proj`` zero except where a test sets them, so each layer passes its input on unchanged and
the input of every layer is the embeddings. The signal sits in head dims 1 and 3, the RoPE pair with
inverse frequency theta^-1/2 = 1e-6 (no rotation to 1e-5), so the attention scores are hand numbers.
"""
from __future__ import annotations

import math

import pytest
import torch
from transformers import Qwen2Config, Qwen2Model

from methods import get_method
from methods.adapters import LlavaOnevisionAdapter
from methods.baselines.inner_llm import FastV, PDrop
from methods.runtime import TEXT, VISUAL, InnerPlan, InnerStage, inner_keep_count, llm_prefill, score_visual

# t0, v1..v4, q: each row has mean square 1, so RMSNorm (weight 1) leaves it as it is
EMB = torch.tensor([
    [2.0, 0.0, 0.0, 0.0],   # t0  (text)
    [1.2, 0.0, 1.6, 0.0],   # v1
    [1.2, 0.0, 0.0, 1.6],   # v2
    [0.0, 0.0, 1.2, 1.6],   # v3
    [0.0, 0.0, 1.6, 1.2],   # v4
    [0.0, 2.0, 0.0, 0.0],   # q   (the last instruction token)
])
KINDS = torch.tensor([TEXT, VISUAL, VISUAL, VISUAL, VISUAL, TEXT])


def _toy_lm() -> Qwen2Model:
    cfg = Qwen2Config(hidden_size=4, intermediate_size=8, num_hidden_layers=3, num_attention_heads=1,
                      num_key_value_heads=1, vocab_size=8, rope_theta=1e12, rms_norm_eps=1e-12,
                      attn_implementation="eager")
    lm = Qwen2Model(cfg).eval()
    with torch.no_grad():
        for p in lm.parameters():
            p.zero_()
        for layer in lm.layers:
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
            layer.self_attn.q_proj.weight[1, 1] = 1.0        # q of the last token: (0, 2, 0, 0)
        lm.norm.weight.fill_(1.0)
        lm.layers[1].self_attn.k_proj.weight[1, 2] = 1.0     # layer 1's key: hidden dim 2
        lm.layers[2].self_attn.k_proj.weight[1, 3] = 1.0     # layer 2's key: hidden dim 3
    return lm


def _softmax(logits):
    e = [math.exp(x) for x in logits]
    return [x / sum(e) for x in e]


def test_scores_of_the_last_and_next_layer_by_hand():
    """q . k / sqrt(4) = k[1] for q = (0, 2, 0, 0): layer 1 reads hidden dim 2, layer 2 dim 3."""
    lm = _toy_lm()
    pos = torch.arange(6)[None]
    cos, sin = lm.rotary_emb(EMB[None], pos)
    by_hand = {1: _softmax([0, 1.6, 0, 1.2, 1.6, 0]), 2: _softmax([0, 0, 1.6, 1.6, 1.2, 0])}
    assert by_hand[1][1] == pytest.approx(0.30525, abs=1e-5)   # e^1.6 / (3 + 2 e^1.6 + e^1.2)
    for layer, expected in by_hand.items():
        got = score_visual(lm, layer, EMB[None], cos, sin, None, "last")
        assert got.tolist() == pytest.approx(expected, abs=1e-5)


def _prefill(lm, method, **options):
    plan = get_method(method, **options).inner_plan(3)
    return llm_prefill(lm, EMB[None], torch.arange(6), KINDS, plan, use_cache=False)


def test_pdrop_released_ranks_with_the_first_layer_of_the_new_stage():
    """Stage at K = 2 keeps int(4 * 0.5) = 2: released ranks with layer 2 (v2, v3: 1.6, 1.6),
    the project's reading with layer 1 (v1, v4: 1.6, 1.6); the two sets are disjoint."""
    lm = _toy_lm()
    released = _prefill(lm, "pdrop", layers=(2,))
    project = _prefill(lm, "pdrop", layers=(2,), fidelity="project")
    assert released.stage_keeps[0].tolist() == [2, 3]
    assert project.stage_keeps[0].tolist() == [1, 4]
    assert released.llm_visual == project.llm_visual == [4, 4, 2]   # the rank rule moves no count


def test_pdrop_released_renumbers_positions_after_the_drop():
    """With layer 2 position-dependent (its values and output read the fast RoPE pair), the pruned
    prefill equals a plain prefill of the kept tokens (t0, v2, v3, q) at ids 0..3 under released, and at
    their original ids 0, 2, 3, 5 under the project's reading; the two differ."""
    lm = _toy_lm()
    with torch.no_grad():
        attn = lm.layers[2].self_attn
        attn.q_proj.weight[0, 0] = 1.0
        attn.k_proj.weight[0, 0] = 1.0
        attn.v_proj.weight[:] = torch.eye(4)
        attn.o_proj.weight[:] = torch.eye(4)
    released = _prefill(lm, "pdrop", layers=(2,))
    project = _prefill(lm, "pdrop", layers=(2,), fidelity="project")
    assert released.stage_keeps[0].tolist() == [2, 3] and project.stage_keeps[0].tolist() == [1, 4]
    for res, kept, ids in ((released, [0, 2, 3, 5], [0, 1, 2, 3]), (project, [0, 1, 4, 5], [0, 1, 4, 5])):
        plain = llm_prefill(lm, EMB[kept][None], torch.tensor(ids), KINDS[kept], None, use_cache=False)
        assert torch.allclose(res.hidden, plain.hidden, atol=1e-6)
    moved = llm_prefill(lm, EMB[[0, 2, 3, 5]][None], torch.tensor([0, 2, 3, 5]), KINDS[[0, 2, 3, 5]], None,
                        use_cache=False)
    assert (released.hidden - moved.hidden).abs().max() > 1e-3


def test_pdrop_counts_floor_and_fastv_rounds_ties_to_even():
    # PDrop: int(N * ratio); 0.7 ** 2 = 0.48999999999999994 still keeps int(100 * 0.49) = 49
    assert inner_keep_count(6272, 0.4, "floor") == 2508 and inner_keep_count(6272, 0.4, "half_up") == 2509
    assert inner_keep_count(100, 0.7 ** 2, "floor") == 49
    # FastV: round(6273 * 0.5) = round(3136.5) = 3136 (ties to even); half up gives 3137
    assert inner_keep_count(6273, 0.5, "half_even") == 3136
    assert inner_keep_count(6275, 0.5, "half_even") == 3138      # 3137.5 -> the even neighbour
    fastv = FastV(keep=0.5)
    assert fastv.inner_plan(28).rounding == "half_even"
    assert FastV(keep=0.5, fidelity="project").inner_plan(28).rounding == "half_up"


def test_the_defaults_are_the_released_rules():
    """Fails when a default drifts back to the project's earlier reading."""
    plan = PDrop().inner_plan(28)
    assert (plan.rank_layer, plan.positions, plan.rounding) == ("next", "renumber", "floor")
    assert [s.layer for s in plan.stages] == [7, 14, 21]
    assert PDrop().config.fidelity == FastV().config.fidelity == "released"
    assert FastV().inner_plan(28).rounding == "half_even"
    old = PDrop(fidelity="project").inner_plan(28)
    assert (old.rank_layer, old.positions, old.rounding) == ("previous", "original", "half_up")


def test_unknown_fidelity_is_refused_naming_the_allowed_values():
    for method in ("pdrop", "fastv"):
        with pytest.raises(ValueError, match=r"fidelity must be one of \['released', 'project'\], got 'paper'"):
            get_method(method, fidelity="paper")
    with pytest.raises(ValueError, match="rank_layer must be one of"):
        InnerPlan((InnerStage(1, 0.5),), rank_layer="first")
    with pytest.raises(ValueError, match="positions must be one of"):
        InnerPlan((InnerStage(1, 0.5),), positions="keep")


def test_nominal_counts_follow_the_fidelity():
    from costmodel import load_arch

    arch = load_arch("llava-onevision-7b")              # 32 x 196 = 6272 visual tokens, 28 layers
    rel = PDrop(lam=0.4, layers=(2, 10)).nominal_schedule(arch, 32)
    old = PDrop(lam=0.4, layers=(2, 10), fidelity="project").nominal_schedule(arch, 32)
    assert (rel.llm_visual[2], rel.llm_visual[10]) == (2508, 1003)   # int(2508.8), int(1003.52)
    assert (old.llm_visual[2], old.llm_visual[10]) == (2509, 1004)
    assert FastV(keep=0.5).nominal_schedule(arch, 32).llm_visual[2] == 3136   # 6272 * 0.5: no tie


# ---- the runtime: renumbered positions in prefill and decode, cached == recomputed ----

@pytest.fixture(scope="module")
def ad():
    return LlavaOnevisionAdapter.tiny("llava-onevision", seed=3, layers=4, image_size=84)


@pytest.fixture(scope="module")
def inputs(ad):
    px = torch.randn(4, 3, 84, 84, generator=torch.Generator().manual_seed(1))
    return ad.build_inputs("What is in the video?", ad.encode_video(px))  # 4 x 9 visual tokens


def _released_plan(mode="inplace"):
    return InnerPlan((InnerStage(1, 0.5), InnerStage(2, 0.25), InnerStage(3, 0.125)), mode=mode,
                     rank_layer="next", positions="renumber", rounding="floor")


def test_renumbered_generation_with_the_kv_cache_equals_a_no_cache_recompute(ad, inputs):
    plan = _released_plan()
    cached = ad.generate(inputs, max_new_tokens=6, plan=plan)
    recomputed = ad.generate(inputs, max_new_tokens=6, plan=plan, use_cache=False)
    assert cached.tokens == recomputed.tokens
    diff = max((x - y).abs().max().item() for x, y in zip(cached.step_logits, recomputed.step_logits))
    assert diff < 1e-4, diff
    _, res = ad.prefill(inputs, plan)
    L = inputs.length
    # layers from stage i on place the first new token at their own length (36 - 18, - 27, - 32 dropped)
    assert res.cache.position_shift == [0, 18, 27, 32]
    assert res.cache.lengths() == (L, L - 18, L - 27, L - 32)


def test_renumbered_mask_mode_equals_inplace(ad, inputs):
    a, ra = ad.prefill(inputs, _released_plan("inplace"))
    b, rb = ad.prefill(inputs, _released_plan("mask"))
    assert [t.tolist() for t in ra.stage_keeps] == [t.tolist() for t in rb.stage_keeps]
    assert (a - b).abs().max().item() < 1e-5
    ga = ad.generate(inputs, max_new_tokens=4, plan=_released_plan("inplace"))
    gb = ad.generate(inputs, max_new_tokens=4, plan=_released_plan("mask"))
    assert ga.tokens == gb.tokens


def test_next_layer_rank_keeps_the_top_of_layer_k_eager_attention(ad, inputs):
    """A stage at K = 2 with rank_layer="next" keeps the top 18 of layer 2's (not layer 1's) eager
    attention row of the last token, on layer 2's input (HF's own forward, eager attention)."""
    lm = ad.lm
    lm.config._attn_implementation = "eager"
    try:
        out = lm(inputs_embeds=inputs.inputs_embeds, output_attentions=True)
    finally:
        lm.config._attn_implementation = "sdpa"
    vis = (inputs.kinds == VISUAL).nonzero().squeeze(1)
    top = {K: vis[torch.topk(out.attentions[K][0].mean(0)[-1][vis], 18).indices].sort().values.tolist()
           for K in (1, 2)}
    assert top[1] != top[2]
    plan = InnerPlan((InnerStage(2, 0.5),), rank_layer="next", positions="renumber", rounding="floor")
    _, res = ad.prefill(inputs, plan)
    assert res.stage_keeps[0].tolist() == top[2]
    _, old = ad.prefill(inputs, InnerPlan((InnerStage(2, 0.5),)))
    assert old.stage_keeps[0].tolist() == top[1]
