"""The "tome" Method in the tiny LLaVA-OV SigLIP tower: vanilla equality at r=0, the merging tower
against the schedule, proportional attention, the LLM side and the end-to-end pipeline."""
from __future__ import annotations

import pytest
import torch

from costmodel.schedule import VisionLoad
from methods.adapters import LlavaOnevisionAdapter
from methods.attach import apply_method
from methods.baselines.tome import ToMe, run_tome_tower, tome_block
from methods.pipeline import run
from methods.primitives import retention_r_schedule, tokens_per_block
from methods.registry import get_method
from methods.types import NotApplicable

TOL = 1e-5  # fp32


def _adapter(image_size=98, vision_layers=4, setting="llava-onevision"):
    cfg = dict(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=128,
                           num_hidden_layers=vision_layers, num_attention_heads=4, patch_size=14,
                           image_size=image_size, vision_use_head=False),
        text_config=dict(model_type="qwen2", hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=1000,
                         max_position_embeddings=8192),
        image_token_index=998, video_token_index=999,
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    return LlavaOnevisionAdapter.from_config(cfg, setting=setting, seed=0)


def _pixels(frames, size, seed=0):
    return torch.randn(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def odd():
    """7 x 7 = 49 patches per frame, 4 SigLIP blocks, bilinear pooled to 4 x 4 = 16."""
    torch.set_num_threads(1)
    return _adapter()


def test_r0_equals_vanilla_exactly(odd):
    px = _pixels(3, 98, seed=1)
    plain = run(odd, None, px, "what?", decode_steps=2)
    merged = run(odd, get_method("tome", r=0), px, "what?", decode_steps=2)
    assert torch.equal(merged.video.features, plain.video.features)
    assert torch.equal(merged.logits, plain.logits) and merged.tokens == plain.tokens
    assert merged.schedule.llm_visual == plain.schedule.llm_visual
    assert merged.schedule.vision == plain.schedule.vision


def test_block_without_merge_equals_hf_layer_and_size_one_is_no_bias(odd):
    layer = odd.model.model.vision_tower.encoder.layers[0]
    h = torch.randn(2, 49, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = layer(h, None)
        ours, size, matching = tome_block(layer, h, None, 0)
        ones, _, _ = tome_block(layer, h, torch.ones(2, 49), 0)
    assert (ours - ref).abs().max() < TOL and (ones - ref).abs().max() < TOL
    assert matching.keep.all() and size.shape == (2, 49)


def test_proportional_attention_equals_duplicated_tokens(odd):
    """A token of size 2 is attended to like two identical copies of it (ToMe's rationale)."""
    layer = odd.model.model.vision_tower.encoder.layers[1]
    h = torch.randn(1, 6, 64, generator=torch.Generator().manual_seed(3))
    dup = torch.cat([h, h[:, 2:3]], dim=1)                              # token 2 twice
    with torch.no_grad():
        ref = layer(dup, None)[:, :6]
        sized, _, _ = tome_block(layer, h, torch.tensor([[1.0, 1.0, 2.0, 1.0, 1.0, 1.0]]), 0)
        flat, _, _ = tome_block(layer, h, torch.tensor([[1.0, 1.0, 2.0, 1.0, 1.0, 1.0]]), 0, prop_attn=False)
    assert (sized - ref).abs().max() < TOL
    assert (flat - ref).abs().max() > 1e-4                              # without it the weight is lost


def test_token_counts_follow_the_schedule_and_sizes_add_up(odd):
    px = _pixels(3, 98, seed=4)
    method = get_method("tome", retention=0.5)                          # 16 pooled -> 8 per frame
    sched = retention_r_schedule(49, 8, 4)
    # even shares 11, 10, 10, 10 would reach block 3 with 18 tokens, whose cap 9 leaves 9 > 8
    assert method.block_schedule(49, 4, 16) == sched == (11, 10, 12, 8)
    with apply_method(odd, method):
        vt = odd.encode_video(px)
        g = odd.run(px, "what?", max_new_tokens=1)
    counts = tokens_per_block(49, sched)
    assert vt.vision_load == tuple(VisionLoad(3, n) for n in counts[:-1]) == g.schedule.vision
    assert vt.features.shape == (3, 8, 128) and vt.grid == (1, 8)
    assert torch.equal(vt.sizes.sum(1), torch.full((3,), 49.0)) and bool((vt.sizes >= 1).all())
    assert bool((vt.anchors[:, 1:] > vt.anchors[:, :-1]).all())          # raster order of the anchors
    assert g.schedule.llm_visual == (24, 24) and g.schedule.llm_newline == (1, 1)
    nom = method.nominal_schedule(odd, frames=3, text_tokens=g.schedule.text_tokens)
    assert nom.llm_visual == g.schedule.llm_visual and nom.vision == g.schedule.vision


def test_merged_tower_with_identical_frames_and_start(odd):
    """Identical frames merge identically; blocks before ``start`` are the HF blocks untouched."""
    tower = odd.model.model.vision_tower
    px = _pixels(1, 98, seed=5).expand(2, -1, -1, -1)
    with torch.no_grad():
        h, size, anchors, loads = run_tome_tower(tower, px, (0, 0, 6, 6))
        hf = tower(px, output_hidden_states=True).hidden_states
        one, s1, _ = tome_block(tower.encoder.layers[2], hf[2], None, 6)
        two, s2, _ = tome_block(tower.encoder.layers[3], one, s1, 6)
    assert torch.equal(h[0], h[1]) and torch.equal(anchors[0], anchors[1])
    assert loads == (VisionLoad(2, 49), VisionLoad(2, 49), VisionLoad(2, 49), VisionLoad(2, 43))
    assert h.shape == (2, 37, 64) and (h - two).abs().max() < TOL and torch.equal(size, s2)
    assert float(size.sum()) == 98.0


@pytest.mark.parametrize("setting", ["llava-onevision", "llava-video"])
def test_end_to_end_tiny_pipeline_and_detach(setting):
    ad = LlavaOnevisionAdapter.tiny(setting, seed=0, layers=2)          # 4 x 4 patches, 2 x 2 pooled
    px = _pixels(4, 56, seed=7)
    before = ad.run(px, "What happens?", max_new_tokens=3)
    res = run(ad, get_method("tome", retention=1.0), px, "What happens?", decode_steps=2)
    assert res.video.features.shape[:2] == (4, 4)                       # 16 -> 8 -> 4 per frame
    assert res.inputs.info["visual"] == 16 and len(res.tokens) == 3
    assert res.schedule.label == "tome" and res.schedule.vision == (VisionLoad(4, 16), VisionLoad(4, 8))
    after = ad.run(px, "What happens?", max_new_tokens=3)
    assert after.tokens == before.tokens and torch.equal(after.prefill_logits, before.prefill_logits)
    assert ad.method is None


def test_config_and_adapter_errors(odd):
    with pytest.raises(ValueError, match="either retention or r"):
        get_method("tome", retention=0.5, r=3)
    with pytest.raises(ValueError, match="r .* must be an int >= 0"):
        get_method("tome", r=-1)
    with pytest.raises(ValueError, match=r"retention must be in \(0, 1\]"):
        get_method("tome", retention=1.5)
    with pytest.raises(ValueError, match="start=4 but the tower runs 4 blocks"):
        get_method("tome", r=2, start=4).block_schedule(49, 4, 16)
    tiny = LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=2)
    with pytest.raises(NotApplicable, match="cannot reach 2 tokens per frame .* keep at least 4 of 16"):
        run(tiny, get_method("tome", retention=0.5), _pixels(2, 56), "q")
    assert ToMe().block_schedule(49, 4, 16) == (11, 10, 12, 8)          # default: retention 0.5

    class NoTower:
        model = None

    with pytest.raises(ValueError, match="SigLIP vision tower .* or a Molmo2 adapter, got NoTower"):
        ToMe().encode_in_vit(NoTower(), _pixels(1, 56))


# ---- Molmo2 (tiny: 9 x 9 patches, 3 x 3 pooled, 8 ViT blocks, connector reads blocks 7 and 5) ----

MOLMO2_FRAMES = 4


@pytest.fixture(scope="module")
def molmo2():
    from methods.adapters.molmo2 import Molmo2VideoAdapter

    return Molmo2VideoAdapter.tiny(seed=0)


def _frame_placeholders(adapter, ids) -> list[int]:
    """<im_patch> count between each <frame_start> and <frame_end> of the prompt ids."""
    c = adapter.config
    starts = (ids == c.frame_start_token_id).nonzero().squeeze(1).tolist()
    ends = (ids == c.frame_end_token_id).nonzero().squeeze(1).tolist()
    return [int((ids[s + 1:e] == c.image_patch_id).sum()) for s, e in zip(starts, ends)]


@pytest.mark.molmo2
def test_molmo2_r0_equals_vanilla_exactly(molmo2):
    px = _pixels(MOLMO2_FRAMES, molmo2.image_size, seed=11)
    plain = run(molmo2, None, px, "what?", decode_steps=2)
    merged = run(molmo2, get_method("tome", r=0), px, "what?", decode_steps=2)
    assert torch.equal(merged.video.features, plain.video.features)
    assert torch.equal(merged.logits, plain.logits) and merged.tokens == plain.tokens
    for f in ("vision", "projector_tokens", "llm_visual", "text_tokens"):
        assert getattr(merged.schedule, f) == getattr(plain.schedule, f), f


@pytest.mark.molmo2
def test_molmo2_retention_half_reaches_the_llm_with_matching_placeholders(molmo2):
    px = _pixels(MOLMO2_FRAMES, molmo2.image_size, seed=12)
    method = get_method("tome", retention=0.5)               # round(0.5 x 9) = 5 of 81 patches per frame
    res = run(molmo2, method, px, "what happens?", decode_steps=2)
    T = 5
    assert res.video.features.shape == (MOLMO2_FRAMES, T, molmo2.config.text_config.hidden_size)
    assert _frame_placeholders(molmo2, res.inputs.input_ids[0]) == [T] * MOLMO2_FRAMES
    assert res.inputs.info["visual"] == MOLMO2_FRAMES * T and len(res.tokens) == 3
    sched = method.block_schedule(81, 8, 9)
    assert sum(sched) == 81 - T and res.video.info["r_schedule"] == list(sched)
    counts = tokens_per_block(81, sched)
    assert res.schedule.vision == tuple(VisionLoad(MOLMO2_FRAMES, n) for n in counts[:-1])
    assert res.schedule.llm_visual == (MOLMO2_FRAMES * T,) * molmo2.num_layers
    assert torch.equal(res.video.sizes.sum(1), torch.full((MOLMO2_FRAMES,), 81.0))
    assert bool((res.video.anchors[:, 1:] > res.video.anchors[:, :-1]).all())
    nom = method.nominal_schedule(molmo2, frames=MOLMO2_FRAMES, text_tokens=res.schedule.text_tokens,
                                  decode_steps=res.decode_steps)
    for f in ("frames", "vision", "projector_tokens", "llm_visual", "llm_newline", "text_tokens", "decode_steps"):
        assert getattr(nom, f) == getattr(res.schedule, f), f
    assert molmo2.method is None


@pytest.mark.molmo2
def test_molmo2_shallow_connector_block_is_carried_through_later_merges(molmo2):
    """Block 5's features go through the merges of blocks 6 and 7 as size-weighted averages: the
    size-weighted sum over a frame's tokens is what block 5 produced (nothing is lost or doubled)."""
    from methods.adapters.molmo2_tower import embed
    from methods.baselines.tome import run_tome_blocks

    px = _pixels(2, molmo2.image_size, seed=13)
    sched = (0, 0, 0, 0, 20, 20, 10, 10)
    with torch.no_grad():
        h = embed(molmo2, molmo2.patchify(px))
        feats, size, _, loads = run_tome_blocks(molmo2.tower.layers, h, sched, [7, 5])
        upto5, size5, _, _ = run_tome_blocks(molmo2.tower.layers, h, sched[:6], [5])
    assert feats[7].shape == feats[5].shape == (2, 21, 64) and loads[-1] == VisionLoad(2, 31)
    carried = (feats[5] * size[..., None]).sum(1)
    direct = (upto5[5] * size5[..., None]).sum(1)
    assert (carried - direct).abs().max() < 1e-3 * direct.abs().max()
    assert not torch.allclose(feats[5], feats[7])


@pytest.mark.molmo2
def test_molmo2_merged_token_is_its_own_connector_window(molmo2):
    """connect_tokens equals HF's connector with each token alone in a 3x3 window (-1 padding)."""
    from methods.adapters.molmo2_tower import connect_tokens

    g = torch.Generator().manual_seed(14)
    feats = {l: torch.randn(2, 5, 64, generator=g) for l in molmo2.feature_blocks}
    with torch.no_grad():
        ours = connect_tokens(molmo2, feats)
        cat = torch.cat([feats[l] for l in molmo2.feature_blocks], dim=-1)
        idx = torch.full((10, 9), -1)
        idx[:, 4] = torch.arange(10)
        ref = molmo2.connector(cat, idx).last_hidden_state.view(2, 5, -1)
    assert ours.shape == (2, 5, molmo2.config.text_config.hidden_size)
    assert (ours - ref).abs().max() < TOL


@pytest.mark.molmo2
def test_molmo2_block_without_merge_equals_the_hf_layer(molmo2):
    layer = molmo2.tower.layers[2]
    h = torch.randn(2, 81, 64, generator=torch.Generator().manual_seed(15))
    with torch.no_grad():
        ref = layer(h, None)
        ours, _, matching = tome_block(layer, h, None, 0)
        merged, size, m4 = tome_block(layer, h, None, 4)
    assert (ours - ref).abs().max() < TOL and matching.keep.all()
    assert merged.shape == (2, 77, 64) and m4.r == 4 and float(size.sum()) == 162.0
