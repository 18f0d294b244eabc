"""STTS on the LLaVA-OV SigLIP tower: pruned tower forward, packing equivalence, pooled-token mapping,
Reduction/schedule, nominal agreement, training signals, end-to-end attach/detach."""
from __future__ import annotations

import math

import pytest
import torch

from costmodel.schedule import VisionLoad
from methods.adapters import LlavaOnevisionAdapter
from methods.adapters.vision_prune import PrunedVideoTokens, pool_kept, run_tower
from methods.attach import apply_method
from methods.stts_method import STTS, STTSMethodConfig, stts_losses
from methods.registry import get_method
from methods.stts import TemporalTokenScorer, attention_bias, pack_first_fit_decreasing
from methods.types import Reduction

TOL = 1e-5  # fp32; measured max |diff| is reported by the asserts' messages


def _adapter(image_size=98, vision_layers=4, text_layers=2, setting="llava-onevision", seed=0):
    cfg = dict(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=128,
                           num_hidden_layers=vision_layers, num_attention_heads=4, patch_size=14,
                           image_size=image_size, vision_use_head=False),
        text_config=dict(model_type="qwen2", hidden_size=128, intermediate_size=256,
                         num_hidden_layers=text_layers, num_attention_heads=4, num_key_value_heads=2,
                         vocab_size=1000, max_position_embeddings=8192),
        image_token_index=998, video_token_index=999,
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    return LlavaOnevisionAdapter.from_config(cfg, setting=setting, seed=seed)


def _pixels(frames, size, seed=0):
    return torch.randn(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def odd():
    """7x7 tower grid (odd like 27x27), bilinear pooled to 4x4, 4 SigLIP layers."""
    torch.set_num_threads(1)
    return _adapter(image_size=98, vision_layers=4)


@pytest.fixture(scope="module")
def even():
    """4x4 tower grid pooled to 2x2, 4 SigLIP layers."""
    return _adapter(image_size=56, vision_layers=4)


def _hf_hidden(adapter, px):
    with torch.no_grad():
        return adapter.model.model.vision_tower(px, output_hidden_states=True).hidden_states[-1]


# ---- 1. tower forward ---------------------------------------------------------------------------

def test_keep_all_equals_hf_tower_and_features(odd):
    px = _pixels(3, 98)
    ref = _hf_hidden(odd, px)
    with torch.no_grad():
        plain = run_tower(odd.model.model.vision_tower, px, 4)
        keep_all = run_tower(odd.model.model.vision_tower, px, 4, prune_at=1,
                             keep_groups=torch.ones(3, 16, dtype=torch.bool))
    for run in (plain, keep_all):
        err = (run.hidden - ref).abs().max().item()
        assert err < TOL, f"max |diff| {err}"
        assert run.vision_load == (VisionLoad(3, 49),) * 4 and run.packed is None
    # topk=0 attached: the adapter's features equal HF get_video_features, every token kept
    hf = odd.model.get_video_features(px[None]).pooler_output[0][:3 * 16]  # the frames' tokens (5.18+: + newline)
    with apply_method(odd, "stts", topk=0.0, prune_at=1):
        vt = odd.encode_video(px)
    assert isinstance(vt, PrunedVideoTokens) and bool(vt.keep.all())
    err = (vt.features.reshape(-1, 128) - hf).abs().max().item()
    assert err < TOL, f"features max |diff| {err}"


# ---- packing equivalence ---------------------------------------------------------------------------

def _keep_groups():
    """Frame 0 all 16 groups (49 patches); frame 1 groups 0..8 (14+14+4 = 32 patches);
    frame 2 groups 0..3 (14); frame 3 groups 0..5 (22). 7x7 grid, 2x2 groups: interior groups hold
    4 patches, last column / row 2, corner 1. FFD: bin0 = f0, bin1 = f1 + f2 (46), bin2 = f3 alone
    (refilled with its 27 pruned patches)."""
    k = torch.zeros(4, 16, dtype=torch.bool)
    k[0] = True
    k[1, :9] = True
    k[2, :4] = True
    k[3, :6] = True
    return k


def _reference_per_frame(tower, px, prune_at, layers, active, bias=None):
    """Run blocks <= prune_at+1 on whole frames, then each frame's active tokens alone."""
    with torch.no_grad():
        h = tower.embeddings(px)
        for l in range(prune_at + 2):
            mask = bias[:, None, None, :] if (bias is not None and l == prune_at + 1) else None
            h = tower.encoder.layers[l](h, mask)
        out = torch.zeros_like(h)
        for f in range(h.shape[0]):
            x = h[f, active[f]][None]
            for l in range(prune_at + 2, layers):
                x = tower.encoder.layers[l](x, None)
            out[f, active[f]] = x[0]
    return out


def test_packing_equals_each_frame_alone(odd):
    tower = odd.model.model.vision_tower
    px = _pixels(4, 98, seed=1)
    keep = _keep_groups()
    with torch.no_grad():
        run = run_tower(tower, px, 4, prune_at=0, keep_groups=keep)
    p = run.packed
    assert p.num_bins == 3
    assert run.patch_keep.sum(1).tolist() == [49, 32, 14, 22]
    assert p.refill_mask.sum(1).tolist() == [0, 0, 0, 27]
    assert p.packing.bin_of.tolist() == [0, 1, 1, 2]                   # f1 and f2 share bin 1
    # VisionLoad: blocks 0 and 1 (= prune_at+1) on frames, later blocks on the 3 packed bins
    assert run.vision_load == (VisionLoad(4, 49),) * 2 + (VisionLoad(3, 49),) * 2
    ref = _reference_per_frame(tower, px, 0, 4, p.active_mask)
    act = p.active_mask
    err = (run.hidden[act] - ref[act]).abs().max().item()
    assert err < TOL, f"packed vs alone max |diff| {err}"
    assert torch.all(run.hidden[~act] == 0)
    # f1, f2 share a bin and have no refill: their surviving tokens equal running survivors alone
    assert torch.equal(act[1:3], run.patch_keep[1:3])
    # whole frames (f0 kept, f3 refilled) equal the unpruned tower (no scorer -> no bias)
    full = _hf_hidden(odd, px)
    assert (run.hidden[[0, 3]] - full[[0, 3]]).abs().max().item() < TOL


def test_scored_pruning_with_bias_equals_reference(odd):
    tower = odd.model.model.vision_tower
    px = _pixels(5, 98, seed=2)
    torch.manual_seed(0)
    scorer = TemporalTokenScorer(64, 32, 4, group=2).eval()
    with torch.no_grad():
        run = run_tower(tower, px, 4, prune_at=1, scorer=scorer, topk=0.5, group=2)
    keep = run.group_keep
    assert keep.shape == (5, 16) and bool(keep[0].all())
    assert int((~keep).sum()) == round(16 * 0.5 * 5)                      # 40 groups pruned video-wide
    assert run.vision_load[:3] == (VisionLoad(5, 49),) * 3
    bins = pack_first_fit_decreasing(run.patch_keep.sum(1), 49).num_bins
    assert run.vision_load[3] == VisionLoad(bins, 49) and bins < 5
    bias = attention_bias(run.scores, (7, 7), math.exp(-2.0), 2)
    assert torch.allclose(run.bias, bias) and float(bias.min()) >= -2.0 - 1e-6 and torch.all(bias[0] == 0)
    ref = _reference_per_frame(tower, px, 1, 4, run.packed.active_mask, bias=bias)
    act = run.packed.active_mask
    err = (run.hidden[act] - ref[act]).abs().max().item()
    assert err < TOL, f"packed (with bias) vs reference max |diff| {err}"


# ---- 2. pooled mapping and the Reduction ------------------------------------------------------------

def test_bilinear_mapping_on_odd_grid(odd):
    """7 -> 4 bilinear: pooled row/col i reads tower rows (0,1), (2,3), (3,4), (5,6); group i holds
    (0,1), (2,3), (4,5), (6). A kept token is the bilinear average over its surviving patches."""
    tower = odd.model.model.vision_tower
    px = _pixels(2, 98, seed=3)
    keep = torch.zeros(2, 16, dtype=torch.bool)
    keep[0] = True
    keep[1, 2 * 4 + 2] = True                                        # only group (2, 2) of frame 1
    with torch.no_grad():
        run = run_tower(tower, px, 4, prune_at=0, keep_groups=keep)
        feats = pool_kept(odd, run.hidden, run.patch_keep)
        proj = odd.model.model.multi_modal_projector(run.hidden)
        ref = odd.pool_like_features(odd.model.model.multi_modal_projector(_hf_hidden(odd, px)))
    # footprint {3,4}x{3,4} ∩ group {4,5}x{4,5} = patch (4,4): the token is that patch's projection
    assert torch.allclose(feats[1, 10], proj[1, 4 * 7 + 4], atol=1e-6)
    # tokens whose footprint misses the kept patches are zero; (2,3) reads patch (4,5) of the kept
    # group, so it has content, but it is not emitted (its own group (2,3) was pruned)
    assert torch.all(feats[1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13]] == 0)
    assert feats[1, 11].abs().sum() > 0
    # frame 0 fully kept: exactly HF's projector + bilinear pooling
    assert (feats[0] - ref[0]).abs().max().item() < TOL


def test_reduction_keeps_surviving_pooled_tokens_in_order(odd):
    px = _pixels(4, 98, seed=4)
    method = get_method("stts", topk=0.5, prune_at=1)
    with apply_method(odd, method):
        vt = odd.encode_video(px)
        red = method.reduce(vt)
    assert isinstance(red, Reduction) and red.positions == "contiguous"
    flat = torch.nonzero(vt.keep.flatten()).squeeze(1)
    assert torch.equal(red.source, flat) and bool((red.source[1:] > red.source[:-1]).all())
    assert red.num_tokens == 64 - 32 and bool(vt.keep[0].all())
    assert torch.equal(red.features, vt.features.reshape(-1, 128)[flat])
    assert torch.all(vt.features[~vt.keep] == 0)                     # pruned pooled tokens: zero rows
    assert red.features.abs().sum(1).min() > 0                       # every emitted token has content
    with pytest.raises(ValueError, match="in-ViT stage"):
        method.reduce(odd.encode_video(px))                           # plain VideoTokens (detached)


# ---- 4. recorded vs nominal schedule ---------------------------------------------------------------

@pytest.mark.parametrize("frames", [3, 6])
def test_recorded_schedule_matches_nominal(even, frames):
    px = _pixels(frames, 56, seed=frames)
    method = get_method("stts", topk=0.5, prune_at=1)
    with apply_method(even, method):
        g = even.run(px, "what?", max_new_tokens=1)
    rec = g.schedule
    nom = method.nominal_schedule(even, frames=frames, text_tokens=rec.text_tokens)
    assert rec.llm_visual == nom.llm_visual == (4 * frames - round(4 * 0.5 * frames),) * 2
    assert rec.llm_newline == nom.llm_newline == (1, 1)
    # the 4x4 grid is aligned: 4 patches per group, FFD over the kept counts reaches the lower bound,
    # plus (released) one bin for a frame that is the only one keeping nothing
    with torch.no_grad():
        kept = method.encode_in_vit(even, px).info["kept_per_frame"]
    lone_empty = int(kept.count(0) == 1)
    assert rec.vision[:3] == nom.vision[:3] == (VisionLoad(frames, 16),) * 3   # blocks <= prune_at+1 = 2
    assert nom.vision[3] == VisionLoad(math.ceil(16 * frames / 2 / 16), 16)      # packed block 3
    assert rec.vision[3] == VisionLoad(nom.vision[3].sequences + lone_empty, 16)
    old = get_method("stts", topk=0.5, prune_at=1, fidelity="project")
    with apply_method(even, old):
        assert even.run(px, "what?", max_new_tokens=1).schedule.vision == nom.vision


def test_odd_grid_llm_tokens_match_nominal_bins_are_ffd(odd):
    """On 7x7 (like 27x27) the nominal model counts n // per_frame = 49 // 16 = 3 patches per pruned
    group; real edge groups hold 2 or 1 patches and interior ones 4, so the nominal bin count is a
    lower bound of the recorded FFD bins, while llm_visual agrees exactly."""
    px = _pixels(6, 98, seed=5)
    method = get_method("stts", topk=0.5, prune_at=1)
    with apply_method(odd, method):
        g = odd.run(px, "what?", max_new_tokens=1)
        vt = odd.encode_video(px)
    nom = method.nominal_schedule(odd, frames=6, text_tokens=g.schedule.text_tokens)
    assert g.schedule.llm_visual == nom.llm_visual == (96 - 48,) * 2
    counts = (vt.keep.view(6, 16, 1).expand(6, 16, 4).reshape(6, 4, 4, 2, 2)
              .permute(0, 1, 3, 2, 4).reshape(6, 8, 8)[:, :7, :7].sum((1, 2)))   # kept patches per frame
    bins = pack_first_fit_decreasing(counts, 49).num_bins
    assert g.schedule.vision[3] == VisionLoad(bins, 49)
    assert bins >= math.ceil(int(counts.sum()) / 49) and nom.vision[3].sequences <= bins


# ---- 3. training signals ---------------------------------------------------------------------------

def _lm_loss(adapter, kept_features):
    """Cross-entropy of 4 text tokens after the kept visual tokens (differentiable HF LM)."""
    ids = torch.tensor([5, 6, 7, 8, 9])
    emb = adapter.lm.embed_tokens(ids)
    x = torch.cat([kept_features, emb])[None]
    h = adapter.lm(inputs_embeds=x).last_hidden_state[0]
    logits = adapter.model.lm_head(h[-5:-1])
    return torch.nn.functional.cross_entropy(logits, ids[1:])


def test_losses_reach_the_scorer_and_a_step_reduces_aux(odd):
    cfg = STTSMethodConfig(topk=0.5, prune_at=1)
    torch.manual_seed(0)
    scorer = TemporalTokenScorer(64, 32, 4, group=2)
    px = _pixels(4, 98, seed=6)
    out = stts_losses(odd, px, cfg, scorer=scorer)
    assert out["scores"].shape == (4, 16) and out["targets"].shape == (4, 16)
    assert out["kept_features"].shape == (32, 128) and out["aux_loss"].item() > 0
    params = [p for p in scorer.parameters()]
    g_aux = torch.autograd.grad(out["aux_loss"], params, allow_unused=True, retain_graph=True)
    g_lm = torch.autograd.grad(_lm_loss(odd, out["kept_features"]), params, allow_unused=True)
    norm = lambda gs: sum(float(g.abs().sum()) for g in gs if g is not None)  # noqa: E731
    assert norm(g_aux) > 0 and norm(g_lm) > 0
    # without the soft bias the LM loss cannot reach the scorer (hard top-k passes no gradient)
    nobias = stts_losses(odd, px, cfg, scorer=scorer, apply_bias=False)
    g0 = torch.autograd.grad(_lm_loss(odd, nobias["kept_features"]), params, allow_unused=True)
    assert norm(g0) == 0
    # one SGD step on L = LM + aux_coef * aux lowers the auxiliary loss
    opt = torch.optim.SGD(params, lr=0.5)
    before = out["aux_loss"].item()
    out = stts_losses(odd, px, cfg, scorer=scorer)
    loss = _lm_loss(odd, out["kept_features"]) + cfg.aux_coef * out["aux_loss"]
    odd.model.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    odd.model.zero_grad(set_to_none=True)
    after = stts_losses(odd, px, cfg, scorer=scorer)["aux_loss"].item()
    assert after < before, (before, after)


# ---- 5. end to end on the tiny adapter -------------------------------------------------------------

@pytest.mark.parametrize("setting", ["llava-onevision", "llava-video"])
def test_end_to_end_tiny_attach_detach(setting):
    ad = LlavaOnevisionAdapter.tiny(setting, seed=0, layers=2)     # SigLIP 2 layers: prune_at=0
    px = _pixels(4, 56, seed=7)
    before = ad.run(px, "What happens?", max_new_tokens=3)
    with apply_method(ad, "stts", topk=0.5, prune_at=0) as h:
        vt = ad.encode_video(px)
        red = h.method.reduce(vt)
        inputs = ad.build_inputs("What happens?", vt, red)
        logits, res = ad.prefill(inputs)
        gen = ad.generate(inputs, max_new_tokens=3)
    assert bool(vt.keep[0].all())                                    # first frame fully kept
    assert inputs.info["visual"] == 8 == 16 // 2                      # half of the 4 x 4 pooled tokens
    assert len(gen.tokens) == 3 and torch.equal(gen.prefill_logits, logits)
    assert gen.schedule.llm_visual == (8, 8) and gen.schedule.label == "stts"
    assert gen.schedule.vision == (VisionLoad(4, 16),) * 2            # no block after prune_at+1 = 1
    after = ad.run(px, "What happens?", max_new_tokens=3)
    assert after.tokens == before.tokens and torch.equal(after.prefill_logits, before.prefill_logits)
    assert after.schedule == before.schedule and ad.method is None


# ---- config, scorer checkpoint, errors ------------------------------------------------------------

def test_config_errors_and_description(odd, tmp_path):
    assert "trained scorer" in STTS.description
    with pytest.raises(ValueError, match="topk"):
        get_method("stts", topk=1.0)
    with pytest.raises(ValueError, match="mlp_dim"):
        get_method("stts", mlp_dim=0)
    px = _pixels(2, 98)
    with apply_method(odd, "stts", prune_at=3):                       # 4 layers: bias block 4 missing
        with pytest.raises(ValueError, match=r"prune_at must be an int in \[0, 2\]"):
            odd.encode_video(px)
    with apply_method(odd, "stts", group=3, prune_at=1):
        with pytest.raises(ValueError, match="group=3.*must coincide"):
            odd.encode_video(px)
    with pytest.raises(ValueError, match="does not exist"):
        STTS(topk=0.5, scorer_checkpoint=str(tmp_path / "nope.pt")).scorer(odd)
    # a saved scorer reloads bit-identically and drives the same selection
    m = STTS(topk=0.5, prune_at=1, seed=3)
    torch.save(m.scorer(odd).state_dict(), tmp_path / "scorer.pt")
    m2 = STTS(topk=0.5, prune_at=1, seed=99, scorer_checkpoint=str(tmp_path / "scorer.pt"))
    with apply_method(odd, m):
        a = odd.encode_video(_pixels(3, 98, seed=8))
    with apply_method(odd, m2):
        b = odd.encode_video(_pixels(3, 98, seed=8))
    assert torch.equal(a.keep, b.keep) and torch.equal(a.features, b.features)


def test_real_geometry_27x27_every_group_reaches_its_pooled_token():
    """so400m@384 geometry: 27x27 patches, 2x2 groups on 28x28 = 14x14 = the bilinear pooled grid.
    Keeping any single group gives its own pooled token a positive bilinear weight (so the
    normalised pooling is defined); llava-video (13x13 average pooling) is refused."""
    from methods.adapters.vision_prune import check_pooling_groups
    from methods.stts import groups_to_patch_mask

    ov = LlavaOnevisionAdapter.tiny("llava-onevision", image_size=378)
    assert check_pooling_groups(ov, 2) == (14, 14)
    one_group = groups_to_patch_mask(torch.eye(196, dtype=torch.bool), (27, 27), 2)   # (196, 729)
    weight = ov.pool_like_features(one_group.float()[..., None])[..., 0]                            # (196, 196)
    assert float(weight.diagonal().min()) > 0.2
    # aligned rows/cols (i <= 6) put all their weight in their own group
    aligned = torch.tensor([i * 14 + j for i in range(7) for j in range(7)])
    assert torch.allclose(weight.diagonal()[aligned], torch.ones(49), atol=1e-6)
    with pytest.raises(ValueError, match="must coincide"):
        check_pooling_groups(LlavaOnevisionAdapter.tiny("llava-video", image_size=378), 2)
