"""The Molmo2 adapter (HF transformers ``molmo2``) and STTS placed on it as the paper's code places it.

Tiny random-weight Molmo2: 9x9 patches (3x3 pooled tokens per frame), 8 ViT blocks with the connector
reading blocks 7 and 5 (both after packing at prune_at=3), 2-layer LLM."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from methods import list_methods
from methods.adapters.base import VideoLLMAdapter
from methods.adapters.molmo2 import Molmo2VideoAdapter, tiny_molmo2_config
from methods.adapters.molmo2_tower import embed
from methods.pipeline import run
from methods.registry import get_method, method_info
from methods.stts import TemporalTokenScorer, groups_to_patch_mask

REFERENCE = Path(__file__).parent / "data" / "molmo2_request_reference.json"

FRAMES = 6
TOL = 1e-5


@pytest.fixture(scope="module")
def adapter():
    return Molmo2VideoAdapter.tiny(seed=0)


@pytest.fixture(scope="module")
def video(adapter):
    g = torch.Generator().manual_seed(0)
    s = adapter.image_size
    base = torch.randn(1, 3, s, s, generator=g)
    moving = (torch.arange(FRAMES) >= FRAMES // 2).float().view(-1, 1, 1, 1)
    return base.repeat(FRAMES, 1, 1, 1) + moving * torch.randn(FRAMES, 3, s, s, generator=g)


def _hf_logits(adapter, pixels, inputs):
    """The unmodified HF forward on the processor-layout inputs (input_ids + patches + pooling)."""
    F_ = pixels.shape[0]
    h, w = adapter.grid
    out = adapter.model(input_ids=inputs.input_ids, pixel_values_videos=adapter.patchify(pixels),
                        video_token_pooling=adapter.pooling_index(F_), video_grids=torch.tensor([[F_, h, w]]),
                        mm_token_type_ids=inputs.info["mm_token_type_ids"])
    return out.logits[0]


@torch.no_grad()
def test_vanilla_equals_the_hf_forward(adapter, video):
    inputs = adapter.build_inputs("What happens?", adapter.encode_video(video))
    ours, _ = adapter.prefill(inputs, all_logits=True)
    ref = _hf_logits(adapter, video, inputs)
    assert inputs.info["visual"] == FRAMES * adapter.tokens_per_frame
    assert torch.allclose(ours, ref.float(), atol=TOL), (ours - ref).abs().max()


@torch.no_grad()
def test_stts_topk0_equals_vanilla_logits(adapter, video):
    plain = run(adapter, None, video, "What happens?", decode_steps=2)
    zero = run(adapter, get_method("stts", topk=0.0), video, "What happens?", decode_steps=2)
    assert zero.tokens == plain.tokens
    assert torch.allclose(zero.logits, plain.logits, atol=TOL)


@torch.no_grad()
def test_packed_blocks_equal_unpacked_per_frame_attention(adapter, video):
    """Blocks after the packing, run on first-fit-decreasing bins with the block-diagonal mask, equal
    each frame run alone with its inactive patches masked out as keys."""
    G = adapter.tokens_per_frame
    keep = torch.ones(FRAMES, G, dtype=torch.bool)
    keep[1:, 3:] = False                  # frames 1.. keep 3 groups (27 of 81 patches): 3 share a bin
    keep[2, :] = True                     # one full frame: alone in its bin, nothing to refill
    run = adapter.run_tower(video, prune_at=3, topk=0.5, keep_groups=keep)
    # FFD: [0], [2], [1, 3, 4], [5] -> 4 bins; frame 5 sits alone and gets its pruned patches back
    assert run.packed.num_bins == 4
    assert run.packed.refill_mask.any(1).tolist() == [False] * 5 + [True]
    # reference: blocks 0..4 plain (no scorer, so no bias), blocks 5.. per frame with key masks
    h = embed(adapter, adapter.patchify(video))
    for l in range(5):
        h = adapter.tower.layers[l](h, None)
    active = run.packed.active_mask
    key_mask = torch.zeros(FRAMES, 1, 1, h.shape[1]).masked_fill(~active[:, None, None, :], torch.finfo(h.dtype).min)
    for l in range(5, max(adapter.feature_blocks) + 1):
        h = adapter.tower.layers[l](h, key_mask)
        if l in adapter.feature_blocks:
            diff = (run.features[l] - h)[active].abs().max()
            assert diff < 1e-4, f"block {l}: packed vs per-frame max |diff| {diff}"
            assert (run.features[l][~active] == 0).all()


@torch.no_grad()
def test_stts_prunes_video_groups_and_placeholders_match_kept_pooled_tokens(adapter, video):
    gen = run(adapter, get_method("stts", topk=0.5), video, "What happens?", decode_steps=1)
    tokens, inputs = gen.video, gen.inputs
    keep = tokens.keep
    G = adapter.tokens_per_frame
    assert keep[0].all(), "the first frame is always kept"
    assert int((~keep).sum()) == round(G * 0.5 * FRAMES)
    ids = inputs.input_ids[0]
    per_frame = []
    starts = (ids == adapter.config.frame_start_token_id).nonzero().squeeze(1).tolist()
    ends = (ids == adapter.config.frame_end_token_id).nonzero().squeeze(1).tolist()
    for s, e in zip(starts, ends):
        per_frame.append(int((ids[s + 1:e] == adapter.config.image_patch_id).sum()))
    assert per_frame == keep.sum(1).tolist()
    assert (tokens.features[~keep] == 0).all()
    # the ViT ran packed after block prune_at+1 = 4 (blocks 0..4 full, 5..7 on fewer bins)
    loads = gen.schedule.vision
    assert all(v.sequences == FRAMES for v in loads[:5]) and all(v.sequences < FRAMES for v in loads[5:])
    assert gen.schedule.llm_visual[0] == int(keep.sum())


@torch.no_grad()
def test_scorer_reads_block_prune_at_and_bias_enters_the_next_block(adapter, video):
    scorer = TemporalTokenScorer(64, 32, 4, group=3)
    run = adapter.run_tower(video, prune_at=3, topk=0.5, scorer=scorer, keep_prune_hidden=True)
    h = embed(adapter, adapter.patchify(video))
    for l in range(4):
        h = adapter.tower.layers[l](h, None)
    assert torch.allclose(run.prune_hidden, h, atol=TOL)
    assert torch.allclose(run.scores, scorer(h, adapter.tower_grid), atol=TOL)
    assert run.bias.shape == (FRAMES, adapter.tower_tokens) and (run.bias[0] == 0).all()
    assert bool((run.patch_keep == groups_to_patch_mask(run.group_keep, adapter.tower_grid, 3)).all())


@pytest.mark.parametrize("name", ["stts-random", "stts-heuristic", "stts-easy"])
@torch.no_grad()
def test_rules_prune_the_budget_and_pack_after_prune_at(adapter, video, name):
    gen = run(adapter, get_method(name, topk=0.5), video, "What happens?", decode_steps=1)
    kept = FRAMES * adapter.tokens_per_frame - round(adapter.tokens_per_frame * 0.5 * FRAMES)
    assert gen.schedule.llm_visual[0] == kept
    loads = gen.schedule.vision
    assert all(v.sequences == FRAMES for v in loads[:4]) and loads[4].sequences < FRAMES


def test_every_molmo2_method_is_registered_and_others_are_refused(adapter, video):
    molmo2 = {m for m in list_methods() if "molmo2" in method_info(m)["families"]}
    assert molmo2 == {"vanilla", "random", "uniform-pool", "stts", "stts-random", "stts-heuristic", "stts-easy", "tome"}
    with pytest.raises(ValueError, match="method 'fastv' does not run on 'molmo2' models .*supported families: "
                                         "llava-onevision, llava-video, qwen2.5-vl"):
        run(adapter, get_method("fastv", k=1, keep=0.5), video, "q")
    with pytest.raises(ValueError, match="inner-LLM plans are not supported"):
        inputs = adapter.build_inputs("q", adapter.encode_video(video))
        adapter.prefill(inputs, get_method("fastv", k=1, keep=0.5).inner_plan(adapter.num_layers))


def test_save_and_load_in_the_hf_layout(adapter, video, tmp_path):
    path = adapter.save_pretrained(tmp_path / "molmo2-tiny")
    assert json.loads((path / "config.json").read_text())["model_type"] == "molmo2"
    assert (path / "model.safetensors").is_file()
    loaded = Molmo2VideoAdapter.from_pretrained(path)
    a = run(adapter, None, video, "q", decode_steps=1)
    b = run(loaded, None, video, "q", decode_steps=1)
    assert torch.allclose(a.logits, b.logits, atol=TOL) and a.tokens == b.tokens


def test_bad_paths_and_grids_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Molmo2VideoAdapter.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        Molmo2VideoAdapter.from_pretrained(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "llava_onevision"}))
    with pytest.raises(ValueError, match="model_type 'llava_onevision'"):
        Molmo2VideoAdapter.from_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="not a multiple of the pooling window"):
        Molmo2VideoAdapter.from_config(tiny_molmo2_config(image_size=112))


def test_full_size_molmo2_builds_on_meta():
    a = Molmo2VideoAdapter.from_config("molmo2-4b", device="meta")
    assert a.tower_grid == (27, 27) and a.tokens_per_frame == 81 and a.feature_blocks == [24, 18]


@pytest.mark.parametrize("cell", ["vanilla", "stts-0.3", "stts-0.5", "stts-heuristic-0.5", "stts-random-0.5"])
def test_pipeline_reproduces_the_adapters_former_request_path(adapter, video, cell):
    """Greedy tokens and first-token logits recorded from the adapter's own ``run`` before it moved
    onto ``methods.pipeline`` (tests/methods/data/molmo2_request_reference.json says how)."""
    ref = json.loads(REFERENCE.read_text())["cells"][cell]
    options = {"stts-0.3": dict(topk=0.3, seed=7), "stts-0.5": dict(topk=0.5, seed=7),
               "stts-heuristic-0.5": dict(topk=0.5), "stts-random-0.5": dict(topk=0.5, seed=3)}
    method = None if cell == "vanilla" else get_method(cell.rsplit("-", 1)[0], **options[cell])
    r = run(adapter, method, video, "What happens?", decode_steps=3)
    assert r.tokens == ref["tokens"]
    top = torch.topk(r.logits, 16)
    assert top.indices.tolist() == ref["top_ids"]
    assert torch.allclose(top.values, torch.tensor(ref["top_logits"]), atol=TOL)
    assert abs(float(r.logits.double().sum()) - ref["logit_sum"]) < 1e-3


@torch.no_grad()
def test_cached_decode_equals_recomputing_the_prefix(adapter, video):
    method = get_method("stts", topk=0.5)
    cached = run(adapter, method, video, "What happens?", decode_steps=3)
    oracle = run(adapter, method, video, "What happens?", decode_steps=3, use_cache=False)
    assert cached.tokens == oracle.tokens
    for a, b in zip(cached.step_logits, oracle.step_logits):
        assert torch.allclose(a, b, atol=1e-4)


def test_adapter_follows_the_protocol(adapter):
    assert isinstance(adapter, VideoLLMAdapter)
