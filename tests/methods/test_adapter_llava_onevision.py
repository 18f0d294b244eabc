"""LlavaOnevisionAdapter: features, saliency, prompt layout and keep-all equivalence with HF."""
from __future__ import annotations

import json

import pytest
import torch

from methods.adapters import LlavaOnevisionAdapter
from methods.runtime import NEWLINE, TEXT, VISUAL
from methods.types import Reduction

FRAMES = 3


def _pixels(size=56, frames=FRAMES, seed=0):
    return torch.randn(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def ov():
    return LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=3)


@pytest.fixture(scope="module")
def video():
    return LlavaOnevisionAdapter.tiny("llava-video", seed=0, layers=3)


def test_dimensions_per_setting(ov, video):
    assert ov.tower_grid == (4, 4) and ov.grid == (2, 2)            # bilinear to ceil(4/2)
    assert video.grid == (2, 2) and video.newline_policy == "grid"  # avg-pool stride 2
    big = LlavaOnevisionAdapter.tiny("llava-video", image_size=378)  # 27x27 like so400m@384
    assert big.tower_grid == (27, 27) and big.grid == (13, 13) and big.tokens_per_frame == 169
    big_ov = LlavaOnevisionAdapter.tiny("llava-onevision", image_size=378)
    assert big_ov.grid == (14, 14) and big_ov.tokens_per_frame == 196


def test_features_equal_hf_video_features(ov):
    px = _pixels()
    vt = ov.encode_video(px, timestamps=[0.0, 1.0, 2.0])
    # (F*N + 1, D) with the newline last from transformers 5.18 on, (F*N, D) in 5.17
    hf = ov.model.get_video_features(px[None]).pooler_output[0]
    assert vt.features.shape == (FRAMES, 4, 128)
    assert torch.allclose(vt.features.reshape(-1, 128), hf[:FRAMES * 4], atol=1e-6)
    assert torch.equal(vt.timestamps, torch.tensor([0.0, 1.0, 2.0]))


def test_saliency_matches_eager_attention_and_pools_like_features(video):
    px = _pixels()
    vt = video.encode_video(px)
    tower = video.model.model.vision_tower
    tower.config._attn_implementation = "eager"
    try:
        out = tower(px, output_attentions=True, output_hidden_states=True)
    finally:
        tower.config._attn_implementation = "sdpa"
    received = out.attentions[-1].mean(dim=(1, 2))                      # (F, 16) heads & queries
    pooled = torch.nn.functional.avg_pool2d(received.view(FRAMES, 1, 4, 4), 2).view(FRAMES, 4)
    assert torch.allclose(vt.saliency["vit_attn_received"], pooled, atol=1e-6)
    # average pooling of a distribution over an even grid: pooled sums to 1/4
    for name in ("vit_attn_received", "map_head_attn"):
        assert torch.allclose(vt.saliency[name].sum(-1), torch.full((FRAMES,), 0.25), atol=1e-5)
    assert vt.keys.shape == (FRAMES, 4, 16) and vt.global_features.shape == (FRAMES, 64)


def test_map_head_is_separate_and_seeded(ov):
    assert not ov.model.model.vision_tower.use_head
    a = LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=3).encode_video(_pixels())
    b = ov.encode_video(_pixels())
    assert torch.equal(a.saliency["map_head_attn"], b.saliency["map_head_attn"])


def test_keep_all_prefill_and_generation_match_hf(ov):
    px = _pixels()
    inp = ov.build_inputs("What is happening?", ov.encode_video(px))
    logits, res = ov.prefill(inp, all_logits=True)
    hf = ov.model(input_ids=inp.input_ids, pixel_values_videos=px[None]).logits[0]
    diff = (logits - hf).abs().max().item()
    assert diff < 1e-5, diff
    g = ov.generate(inp, max_new_tokens=5)
    ref = ov.model.generate(input_ids=inp.input_ids, pixel_values_videos=px[None], max_new_tokens=5,
                            do_sample=False, output_scores=True, return_dict_in_generate=True)
    assert g.tokens == ref.sequences[0, inp.length:].tolist()
    step_diff = max((a - b[0]).abs().max().item() for a, b in zip(g.step_logits, ref.scores))
    assert step_diff < 1e-4, step_diff


def test_keep_all_matches_hf_with_eager_attention():
    ad = LlavaOnevisionAdapter.tiny("llava-onevision", seed=1, layers=2, attn_implementation="eager")
    px = _pixels()
    inp = ad.build_inputs("Q?", ad.encode_video(px))
    logits, _ = ad.prefill(inp, all_logits=True)
    hf = ad.model(input_ids=inp.input_ids, pixel_values_videos=px[None]).logits[0]
    assert (logits - hf).abs().max().item() < 1e-5


def test_one_token_layout_with_original_positions(ov):
    vt = ov.encode_video(_pixels())
    red = Reduction(vt.features.reshape(-1, 128)[[5, 2]], torch.tensor([5, 2]), positions="original")
    inp = ov.build_inputs("Q?", vt, red)
    P = int((inp.kinds == VISUAL).nonzero()[0])
    vis = inp.kinds[P:P + 3].tolist()
    assert vis == [VISUAL, VISUAL, NEWLINE]
    assert inp.position_ids[P:P + 3].tolist() == [P + 5, P + 2, P + 12]   # newline after F*N = 12
    assert inp.position_ids[P + 3].item() == P + 13                      # text continues unpruned
    assert torch.equal(inp.inputs_embeds[0, P], vt.features.reshape(-1, 128)[5])
    contiguous = ov.build_inputs("Q?", vt, Reduction(red.features, red.source))
    assert torch.equal(contiguous.position_ids, torch.arange(contiguous.length))


def test_grid_layout_sorts_by_source_and_adds_row_newlines(video):
    vt = video.encode_video(_pixels(frames=2))  # grid 2x2, N=4
    src = torch.tensor([6, 1, 0])               # frame1 row1 col0; frame0 row0 cols 1, 0
    red = Reduction(vt.features.reshape(-1, 128)[src], src, positions="original")
    inp = video.build_inputs("Q?", vt, red)
    P = int((inp.kinds != TEXT).nonzero()[0])
    assert inp.kinds[P:P + 5].tolist() == [VISUAL, VISUAL, NEWLINE, VISUAL, NEWLINE]
    # unpruned layout: frame f row r col c at f*h*(w+1) + r*(w+1) + c with h=w=2
    assert (inp.position_ids[P:P + 5] - P).tolist() == [0, 1, 2, 9, 11]
    assert torch.equal(inp.inputs_embeds[0, P + 3], vt.features[1, 2])
    full = video.build_inputs("Q?", vt)
    assert int((full.kinds == NEWLINE).sum()) == 2 * 2 and int((full.kinds == VISUAL).sum()) == 8


def test_llava_video_prompt_has_time_instruction(video):
    vt = video.encode_video(_pixels(), timestamps=[0.0, 0.5, 1.0])
    text = video.prompt_text("Q?", vt, duration=1.5)
    assert "The video lasts for 1.50 seconds, and 3 frames are uniformly sampled from it." in text
    assert "0.00s,0.50s,1.00s" in text and text.startswith("<|im_start|>system")


def test_bad_inputs(ov, tmp_path):
    with pytest.raises(ValueError, match="batch size 1"):
        ov.encode_video(torch.zeros(2, FRAMES, 3, 56, 56))
    with pytest.raises(ValueError, match="unknown setting 'llava'"):
        LlavaOnevisionAdapter.tiny("llava")
    vt = ov.encode_video(_pixels())
    with pytest.raises(ValueError, match=r"Reduction.source must lie in \[0, 12\)"):
        ov.build_inputs("Q", vt, Reduction(torch.zeros(1, 128), torch.tensor([12])))
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match=f"{missing}.*does not exist.*llava_onevision"):
        LlavaOnevisionAdapter.from_pretrained(missing)
    wrong = tmp_path / "qwen"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ValueError, match="model_type 'qwen2'.*expected 'llava_onevision'"):
        LlavaOnevisionAdapter.from_pretrained(wrong)
    with pytest.raises(ValueError, match="unknown architecture 'gpt-9'"):
        LlavaOnevisionAdapter.from_config("gpt-9")


def test_from_pretrained_round_trip(ov, tmp_path):
    ov.model.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.1, 0.2, 0.3], "image_std": [0.4, 0.5, 0.6]}))
    # a random-weight model has no tokenizer files: its byte tokenizer is passed explicitly
    loaded = LlavaOnevisionAdapter.from_pretrained(tmp_path / "ckpt", tokenizer=ov.tokenizer)
    assert loaded.image_mean == (0.1, 0.2, 0.3) and loaded.image_std == (0.4, 0.5, 0.6)
    px = _pixels()
    a, _ = ov.prefill(ov.build_inputs("Q", ov.encode_video(px)))
    b, _ = loaded.prefill(loaded.build_inputs("Q", loaded.encode_video(px)))
    assert torch.allclose(a, b, atol=1e-6)


def test_full_size_config_by_name_on_meta():
    from transformers import LlavaOnevisionConfig

    from methods.adapters.base import strip_private
    from methods.adapters.llava_onevision_loading import arch_config_dict

    cfg = LlavaOnevisionConfig(**strip_private(arch_config_dict("llava-onevision-7b")))
    assert cfg.text_config.num_hidden_layers == 28 and cfg.text_config.hidden_size == 3584
    assert cfg.vision_config.image_size == 384 and cfg.vision_config.num_hidden_layers == 26


def test_full_size_random_model_on_meta_matches_costmodel_arch():
    from costmodel.arch import load_arch

    big = LlavaOnevisionAdapter.from_config("llava-onevision-7b", device="meta", dtype=torch.bfloat16)
    spec, ref = big.arch_spec("llava-onevision-7b"), load_arch("llava-onevision-7b")
    assert (big.num_layers, big.grid, big.tokens_per_frame, big.tower_tokens) == (28, (14, 14), 196, 729)
    assert spec.llm == ref.llm and spec.vision == ref.vision and spec.newline == ref.newline == "one_token"
