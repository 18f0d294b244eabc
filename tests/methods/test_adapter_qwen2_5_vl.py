"""Qwen2_5_VLAdapter on a tiny random-weight Qwen2.5-VL: layout, saliency, 3-D M-RoPE positions,
keep-all equivalence with HF, Tango and every registered method end to end."""
from __future__ import annotations

import json

import pytest
import torch

from methods import apply_method
from methods.adapters.qwen2_5_vl import Qwen2_5_VLAdapter
from methods.adapters.qwen2_5_vl_encoder import patchify
from methods.adapters.qwen2_5_vl_prompt import mrope_positions
from methods.pipeline import run
from methods.registry import get_method, list_methods, method_info
from methods.runtime import VISUAL
from methods.types import Reduction

#: the methods that declare Qwen2.5-VL among their families (Method.families)
QWEN2_5_VL_METHODS = [m for m in list_methods() if "qwen2.5-vl" in method_info(m)["families"]]

FRAMES = 4  # 2 temporal groups of 4x4 merged tokens


def _pixels(frames=FRAMES, seed=0, size=112):
    return torch.randn(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def ad():
    return Qwen2_5_VLAdapter.tiny(seed=0)


def _hf_inputs(ad, inp, px):
    patches, grid = patchify(px, 14, 2, 2)
    return dict(input_ids=inp.input_ids, pixel_values_videos=patches, video_grid_thw=grid,
                mm_token_type_ids=(inp.input_ids == ad.config.video_token_id).int() * 2,
                second_per_grid_ts=torch.tensor([inp.info["second_per_grid"]]),
                attention_mask=torch.ones_like(inp.input_ids))


def test_tiny_tower_has_windows_and_two_full_attention_blocks(ad):
    from transformers.vision_utils import get_vision_window_index

    vc = ad.vision_config
    assert vc.depth == 4 and list(vc.fullatt_block_indexes) == [1, 3] and ad.saliency_block == 3
    assert (vc.spatial_merge_size, vc.temporal_patch_size) == (2, 2)
    assert ad.tower_grid == (8, 8) and ad.grid == (4, 4) and ad.tokens_per_frame == 16
    wi, cu = get_vision_window_index(torch.tensor([[1, 8, 8]]), 2, vc.window_size, 14)
    assert not torch.equal(wi, torch.arange(16)) and cu.tolist() == [0, 16, 32, 48, 64]  # 4 windows


def test_patchify_matches_hf_layout():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    img = torch.randn(3, 56, 84)
    still, _ = patchify(img[None].repeat(2, 1, 1, 1), 14, 2, 2)   # a still: both frames equal
    ref, gh, gw = Qwen2VLImageProcessorPil().patchify(img.numpy(), 14, 2, 2)
    assert (gh, gw) == (4, 6) and torch.equal(still, torch.from_numpy(ref))
    # distinct frames: the tower's Conv3d over the flat patches == a Conv3d over the video, read
    # in HF's order (temporal group, 2x2 block rows/cols, position inside the block)
    ad = Qwen2_5_VLAdapter.tiny(seed=1, text_layers=1)
    video = _pixels(frames=3, size=56)                              # odd: last frame repeated
    flat, grid = patchify(video, 14, 2, 2)
    assert grid.tolist() == [[2, 4, 4]]
    emb = ad.model.model.visual.patch_embed(flat)
    padded = torch.cat([video, video[-1:]]).permute(1, 0, 2, 3)[None]   # (1, C, F, H, W)
    conv = torch.nn.functional.conv3d(padded, ad.model.model.visual.patch_embed.proj.weight, stride=(2, 14, 14))
    conv = conv[0].reshape(-1, 2, 2, 2, 2, 2).permute(1, 2, 4, 3, 5, 0).reshape(-1, conv.shape[1])
    assert torch.allclose(emb, conv, atol=1e-5)


def test_features_equal_hf_video_features(ad):
    px = _pixels()
    vt = ad.encode_video(px, timestamps=[0.0, 0.5, 1.0, 1.5])
    flat, grid = patchify(px, 14, 2, 2)
    hf = ad.model.model.get_video_features(flat, grid).pooler_output[0]
    assert vt.features.shape == (2, 16, 128) and vt.grid == (4, 4) and vt.newline_policy == "none"
    assert torch.equal(vt.features.reshape(-1, 128), hf)
    assert torch.allclose(vt.timestamps, torch.tensor([0.0, 1.5]))  # interp at linspace(0, F-1, T)


def _direct_signals(ad, px):
    """Tango's global-query saliency and the received attention computed another way: capture the
    last full-attention block's input and RoPE with a forward pre-hook, undo the window permutation
    of the patches first, then loop over groups and heads in raster (block-major) order."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision
    from transformers.vision_utils import get_vision_window_index

    tower = ad.model.model.visual
    blk = tower.blocks[ad.saliency_block]
    got = {}
    hook = blk.register_forward_pre_hook(lambda m, a, kw: got.update(x=a[0], pe=kw["position_embeddings"]),
                                         with_kwargs=True)
    try:
        flat, grid = patchify(px, 14, 2, 2)
        tower(flat, grid_thw=grid)
    finally:
        hook.remove()
    S = got["x"].shape[0]
    heads, hd = blk.attn.num_heads, blk.attn.head_dim
    q, k, _ = blk.attn.qkv(blk.norm1(got["x"])).reshape(S, 3, heads, hd).unbind(1)
    q, k = apply_rotary_pos_emb_vision(q, k, *got["pe"])
    wi, _ = get_vision_window_index(grid, 2, ad.vision_config.window_size, 14)
    inv = torch.empty(S, dtype=torch.long)   # raster patch p sits at row inv[p] in window order
    inv[(wi[:, None] * 4 + torch.arange(4)).flatten()] = torch.arange(S)
    q, k = q[inv], k[inv]                                           # block-major raster order
    T, per = 2, S // 2
    gq = torch.zeros(T, per // 4)
    rec = torch.zeros(T, per // 4)
    for t in range(T):
        qt, kt = q[t * per:(t + 1) * per], k[t * per:(t + 1) * per]
        for hh in range(heads):
            qm = qt[:, hh].mean(0)
            km = kt[:, hh].reshape(per // 4, 4, hd).mean(1)
            gq[t] += torch.softmax(km @ qm / hd ** 0.5, dim=0) / heads
            a = torch.softmax(qt[:, hh] @ kt[:, hh].T * hd ** -0.5, dim=-1)
            rec[t] += a.mean(0).reshape(per // 4, 4).mean(1) / heads
    return gq, rec


def test_saliency_equals_direct_computation(ad):
    px = _pixels(seed=3)
    vt = ad.encode_video(px)
    gq, rec = _direct_signals(ad, px)
    assert torch.allclose(vt.saliency["vit_global_query_attn"], gq, atol=1e-6)
    assert torch.allclose(vt.saliency["vit_attn_received"], rec, atol=1e-6)
    assert torch.allclose(vt.saliency["vit_global_query_attn"].sum(-1), torch.ones(2), atol=1e-5)
    assert vt.keys.shape == (2, 16, 8)


def test_keep_all_prefill_and_generation_match_hf(ad):
    px = _pixels()
    inp = ad.build_inputs("What is happening?", ad.encode_video(px, timestamps=[0.0, 0.5, 1.0, 1.5]))
    hf_in = _hf_inputs(ad, inp, px)
    pos, delta = ad.model.model.get_rope_index(hf_in["input_ids"], hf_in["mm_token_type_ids"],
                                               video_grid_thw=hf_in["video_grid_thw"],
                                               second_per_grid_ts=hf_in["second_per_grid_ts"])
    assert torch.equal(inp.position_ids, pos[:, 0])
    r = run(ad, None, px, "What is happening?", timestamps=[0.0, 0.5, 1.0, 1.5], all_logits=True)
    hf = ad.model(**hf_in).logits[0]
    assert (r.logits - hf).abs().max().item() < 1e-4
    assert r.prefill.next_position == int(pos.max()) + 1 == inp.length + int(delta)
    g = run(ad, None, px, "What is happening?", timestamps=[0.0, 0.5, 1.0, 1.5], decode_steps=4)
    ref = ad.model.generate(**hf_in, max_new_tokens=5, do_sample=False, output_scores=True,
                            return_dict_in_generate=True)
    assert g.tokens == ref.sequences[0, inp.length:].tolist()
    assert max((a - b[0]).abs().max().item() for a, b in zip(g.step_logits, ref.scores)) < 1e-4


def test_text_after_a_long_video_resumes_at_max_position_plus_one(ad):
    """8 frames = 4 groups, 2 positions apart in time: the temporal ids (P..P+6) run past the spatial
    ones (P..P+3). The released Qwen2.5-VL rule puts the next text at max + 1; the installed HF
    get_rope_index agrees on every video column and differs only there."""
    px = _pixels(frames=8)
    inp = ad.build_inputs("Q?", ad.encode_video(px))
    P = int((inp.kinds == VISUAL).nonzero()[0])
    full = mrope_positions(P, (4, 4, 4), inp.length - P - 64, 2.0)
    assert torch.equal(inp.position_ids, full)
    assert full[0, P:P + 64].unique().tolist() == [P, P + 2, P + 4, P + 6]
    assert full[:, P + 64].tolist() == [P + 7] * 3 and int(full.max()) == int(full[0, -1])
    hf_in = _hf_inputs(ad, inp, px)
    pos, _ = ad.model.model.get_rope_index(hf_in["input_ids"], hf_in["mm_token_type_ids"],
                                           video_grid_thw=hf_in["video_grid_thw"],
                                           second_per_grid_ts=hf_in["second_per_grid_ts"])
    assert torch.equal(pos[:, 0, :P + 64], full[:, :P + 64])
    assert int(pos[0, 0, P + 64]) == P + 4 != int(full[0, P + 64])   # HF 5.x: P + max(h, w)


def test_tango_at_full_retention_equals_vanilla(ad):
    px, ts = _pixels(), [0.0, 0.5, 1.0, 1.5]
    van = run(ad, None, px, "Q?", timestamps=ts, decode_steps=2)
    tan = run(ad, get_method("tango", retention=1.0), px, "Q?", timestamps=ts, decode_steps=2)
    assert tan.reduction.info["static_positions"] == [0] * len(tan.reduction.info["segments"])
    assert torch.equal(tan.reduction.source, torch.arange(32))
    assert torch.equal(tan.inputs.inputs_embeds, van.inputs.inputs_embeds)
    assert torch.equal(tan.inputs.position_ids, van.inputs.position_ids)
    assert tan.tokens == van.tokens and torch.equal(tan.logits, van.logits)


def test_tango_quarter_retention_keeps_count_and_original_positions(ad):
    px = _pixels(frames=8, seed=5)
    r = run(ad, get_method("tango", retention=0.25), px, "Q?", decode_steps=1)
    red, inp = r.reduction, r.inputs
    assert red.info["static_positions"] == [0] * len(red.info["segments"])
    assert red.num_tokens == 4 * 4 == int((inp.kinds == VISUAL).sum())   # ceil(16 * 0.25) per group
    full = ad.build_inputs("Q?", r.video)
    P = int((full.kinds == VISUAL).nonzero()[0])
    vis = (inp.kinds == VISUAL).nonzero().squeeze(1)
    assert torch.equal(inp.position_ids[:, vis], full.position_ids[:, P + red.source])
    assert torch.equal(inp.position_ids[:, vis[-1] + 1:], full.position_ids[:, P + 64:])  # text keeps its ids
    assert r.prefill.next_position == int(full.position_ids.max()) + 1
    assert r.schedule.llm_visual[0] == 16


#: options valid on the tiny model (4 LLM layers, 4 tower blocks), moderate retention
OPTIONS = {
    "vanilla": {}, "random": {"retention": 0.5}, "uniform-pool": {"retention": 0.25},
    "visionzip": {"retention": 0.5}, "dycoke": {"retention": 0.5},
    "prunevid": {"retention": 0.5, "selected_layer": 1}, "holitom-wo-m": {"retention": 0.5},
    "holitom": {"retention": 0.5, "inner_k": 2, "inner_r": 0.5}, "tango": {"retention": 0.5},
    "fastv": {"k": 2, "keep": 0.5}, "pdrop": {"lam": 0.5, "layers": (1, 2, 3)},
}


def test_every_listed_method_has_options_here():
    assert set(QWEN2_5_VL_METHODS) == set(OPTIONS)


@pytest.fixture(scope="module")
def video():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 3, 112, 112, generator=g)
    noise = torch.randn(12, 3, 112, 112, generator=g)
    px = base.repeat(12, 1, 1, 1) + (torch.arange(12) >= 6).float().view(-1, 1, 1, 1) * noise
    return px, torch.arange(12, dtype=torch.float32) * 0.5


@pytest.mark.parametrize("name", QWEN2_5_VL_METHODS)
def test_listed_method_runs_and_cached_generation_equals_recompute(ad, video, name):
    px, ts = video
    with apply_method(ad, name, **OPTIONS[name]) as handle:
        tokens = ad.encode_video(px, ts)
        reduction = handle.method.reduce(tokens) if handle.method.has_pre_llm else None
        inputs = ad.build_inputs("What happens in the video?", tokens, reduction)
        cached = ad.generate(inputs, max_new_tokens=3, use_cache=True)
        recomputed = ad.generate(inputs, max_new_tokens=3, use_cache=False)
    assert cached.tokens == recomputed.tokens
    for a, b in zip(cached.step_logits, recomputed.step_logits):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    full = 6 * ad.tokens_per_frame
    assert cached.schedule.llm_visual[0] == (full if reduction is None else reduction.num_tokens)
    if name != "vanilla":
        assert sum(cached.schedule.llm_visual) < ad.num_layers * full, f"{name} pruned nothing"
    assert ad.method is None


def test_save_and_reload_tiny_checkpoint(ad, tmp_path):
    path = ad.save_pretrained(tmp_path / "ckpt")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    loaded = Qwen2_5_VLAdapter.from_pretrained(path, image_size=112)
    assert loaded.image_mean == ad.image_mean and loaded.vision_config.fullatt_block_indexes == [1, 3]
    px = _pixels()
    a = run(ad, None, px, "Q", all_logits=True).logits
    b = run(loaded, None, px, "Q", all_logits=True).logits
    assert torch.equal(a, b)


def test_bad_inputs(ad, tmp_path):
    with pytest.raises(ValueError, match="batch size 1"):
        ad.encode_video(torch.zeros(2, FRAMES, 3, 112, 112))
    with pytest.raises(ValueError, match="multiple of patch_size \\* spatial_merge_size = 28"):
        ad.encode_video(torch.zeros(FRAMES, 3, 100, 100))
    with pytest.raises(ValueError, match="image_size must be a multiple"):
        Qwen2_5_VLAdapter(ad.model, image_size=100)
    vt = ad.encode_video(_pixels())
    with pytest.raises(ValueError, match=r"Reduction.source must lie in \[0, 32\)"):
        ad.build_inputs("Q", vt, Reduction(torch.zeros(1, 128), torch.tensor([32])))
    inp = ad.build_inputs("Q", vt)
    inp.position_ids = inp.position_ids[:2]
    with pytest.raises(ValueError, match=r"position_ids must be \(L,\) or \(3, L\) with L=\d+, got \(2, "):
        ad.prefill(inp)
    wrong = tmp_path / "llava"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps({"model_type": "llava_onevision"}))
    with pytest.raises(ValueError, match="model_type 'llava_onevision'.*expected 'qwen2_5_vl'"):
        Qwen2_5_VLAdapter.from_pretrained(wrong)
    with pytest.raises(ValueError, match="has model_type 'llava_onevision'"):
        Qwen2_5_VLAdapter.from_config("llava-onevision-7b", device="meta")
    for name, opts in (("stts-random", {"topk": 0.5}), ("fastvid", {"retention": 0.5})):
        with pytest.raises(ValueError, match=f"method {name!r} does not run on 'qwen2.5-vl' models .*supported "
                                             f"families: llava-onevision, llava-video"):
            apply_method(ad, name, **opts)            # refused when attached, before any work
        assert ad.method is None
        ad.method = get_method(name, **opts)          # set behind attach's back: refused when run
        with pytest.raises(ValueError, match="does not run on 'qwen2.5-vl'"):
            ad.encode_video(_pixels())
        ad.method = None


def test_full_size_model_on_meta_matches_costmodel_arch():
    from costmodel.arch import load_arch

    big = Qwen2_5_VLAdapter.from_config("qwen2.5-vl-7b", device="meta", dtype=torch.bfloat16)
    spec, ref = big.arch_spec("qwen2.5-vl-7b"), load_arch("qwen2.5-vl-7b")
    assert (big.num_layers, big.grid, big.tokens_per_frame, big.saliency_block) == (28, (16, 16), 256, 31)
    assert spec.llm == ref.llm and spec.vision == ref.vision and spec.projector == ref.projector


NOMINAL_CASES = [("vanilla", {}), ("fastv", {"k": 2, "keep": 0.5}), ("pdrop", {"lam": 0.6, "layers": (1, 3)}),
                 ("visionzip", {"retention": 0.3}), ("random", {"retention": 0.25}),
                 ("uniform-pool", {"retention": 0.25})]


@pytest.mark.parametrize("name,opts", NOMINAL_CASES)
def test_recorded_schedule_equals_nominal(ad, name, opts):
    """The schedule a request records (windowed tower load, merger tokens, LLM tokens per layer)
    equals the method's nominal schedule for this architecture, so costmodel FLOPs agree."""
    from costmodel.flops import exact_costs, paper_flops

    with apply_method(ad, name, **opts) as h:
        g = ad.run(_pixels(frames=6), "What is it?", max_new_tokens=3)
    rec = g.schedule
    arch = ad.arch_spec()
    nom = h.method.nominal_schedule(arch, frames=3, text_tokens=rec.text_tokens, decode_steps=rec.decode_steps)
    for field in ("frames", "vision", "projector_tokens", "llm_visual", "llm_newline", "text_tokens", "decode_steps"):
        assert getattr(rec, field) == getattr(nom, field), field
    assert paper_flops(arch, rec) == paper_flops(arch, nom)
    assert exact_costs(arch, rec).total() == exact_costs(arch, nom).total()
