"""The cpu tier's LLaVA-Video layout: a newline after every pooled row, optional time instruction.

The batched training/validation path (replicate.synthvqa.model / evaluate) must put every video
placeholder where ``methods.adapters.llava_onevision`` in the ``llava-video`` setting puts it, or the
model would be trained on one layout and evaluated on another: the unpruned logits of both paths
are held equal here, with and without the time instruction.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from replicate.synthvqa import data as sv
from replicate.synthvqa.evaluate import collate, option_logits
from replicate.synthvqa.model import Layout, TinyArch, build_model, num_video_tokens, pooled_side, video_features
from replicate.synthvqa.tokenizer import build_tokenizer, encode_prompt, prompt_texts, token_id, VIDEO

CFG = sv.SynthConfig(frames=8, size=56, small_object_px=8, event_object_px=8, light_px=8, ball_px=8)
VIDEO_LAYOUT = Layout("llava-video")


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(CFG, prompt_texts(True, CFG))  # covers the time instruction too


@pytest.fixture(scope="module")
def model(tok):
    return build_model(tok, TinyArch(image_size=56, text_layers=2), seed=0)


def test_grid_layout_puts_the_newline_after_every_row(tok, model):
    g = pooled_side(model.config)  # 56 / 14 = 4 patches -> 2x2 tokens per frame
    assert g == 2 and num_video_tokens(model.config, 8, "llava-video") == 8 * 2 * 3
    assert num_video_tokens(model.config, 8) == 8 * 4 + 1
    b = collate(list(sv.make_split("val", 2, cfg=CFG)), tok, model.config)
    with torch.no_grad():
        ov = video_features(model, b.pixel_values_videos)                  # (2, 33, D)
        grid = video_features(model, b.pixel_values_videos, "llava-video")  # (2, 48, D)
    newline = model.model.image_newline
    rows = grid.reshape(2, 8, g, g + 1, -1)
    torch.testing.assert_close(rows[:, :, :, g], newline.expand(2, 8, g, -1).to(grid.dtype))
    torch.testing.assert_close(rows[:, :, :, :g].reshape(2, 32, -1), ov[:, :32])


def test_layout_rejects_what_it_cannot_represent(tok):
    with pytest.raises(ValueError, match="unknown setting 'llava-next'.*allowed"):
        Layout("llava-next")
    with pytest.raises(ValueError, match="time instruction; setting 'llava-onevision' has none"):
        Layout("llava-onevision", time_prompt=True)
    with pytest.raises(ValueError, match=r"unknown layout key\(s\) \['newline'\]"):
        Layout.from_dict({"setting": "llava-video", "newline": "grid"})
    odd = build_model(tok, TinyArch(image_size=98, text_layers=1), seed=0)  # 7x7 patches
    pix = torch.zeros(1, 8, 3, 98, 98)
    video_features(odd, pix)  # LLaVA-OV's bilinear pooling takes any grid
    with pytest.raises(ValueError, match="even patch grid here, got 7x7"):
        video_features(odd, pix, "llava-video")


def test_time_instruction_follows_the_video_and_is_in_the_vocabulary(tok):
    s = sv.make_split("val", 1, cfg=CFG)[0]
    plain = encode_prompt(tok, s, 3)
    timed = encode_prompt(tok, s, 3, time_prompt=True)
    vid = token_id(tok, VIDEO)
    after = timed[timed.index(vid) + 3:]
    text = tok.decode(after[:12])
    assert text == "The video lasts for 3 . 50 seconds , and 8 frames"  # 8 frames at 2 fps: last at 3.5 s
    assert len(timed) > len(plain) + 30
    with pytest.raises(ValueError, match="out-of-vocabulary"):
        encode_prompt(build_tokenizer(CFG), s, 3, time_prompt=True)  # a vocabulary without it


@pytest.mark.parametrize("time_prompt", [False, True])
def test_batched_path_equals_the_adapter_pipeline_unpruned(tok, model, time_prompt):
    from methods.registry import get_method

    layout = Layout("llava-video", time_prompt)
    s = sv.make_split("val", 4, cfg=CFG)
    batched = option_logits(model, tok, s, layout=layout)
    piped = option_logits(model, tok, s, method=get_method("vanilla"), layout=layout)
    torch.testing.assert_close(piped, batched, rtol=1e-4, atol=1e-4)
    # and the layout matters: LLaVA-OV's layout gives other logits on the same weights
    assert not torch.allclose(option_logits(model, tok, s), batched, atol=1e-3)


def test_trained_video_checkpoint_runs_tango_with_its_intra_llm_stage(tmp_path):
    from replicate.harness.accuracy import load_checkpoint as load_cell_model, run_accuracy_cell
    from replicate.synthvqa.train import smoke_config, train

    out = tmp_path / "video"
    cfg = replace(smoke_config(), steps=4, batch_size=4, n_val=4, n_test=4, layout=VIDEO_LAYOUT,
                  threads=torch.get_num_threads())
    _, _, metrics = train(cfg, out, log=lambda *_: None)
    saved = json.loads((out / "synthvqa.json").read_text())
    assert saved["layout"] == {"setting": "llava-video", "time_prompt": False}
    assert metrics["config"]["layout"]["setting"] == "llava-video"
    adapter, _ = load_cell_model(out)
    assert adapter.setting == "llava-video" and adapter.newline_policy == "grid" and not adapter.time_prompt
    r = run_accuracy_cell(out, "tango", None, 0.5, n_samples=4, progress=False)
    assert r["status"] == "ok" and r["setting"] == "llava-video"
    assert r["options"]["applied"]["intra_llm"] is True   # the setting's stage, on by itself
    visual = r["schedule_first_sample"]["llm_visual"]
    k = r["options"]["applied"]["intra_k"]
    assert visual[k] < visual[k - 1] and visual[0] < r["vanilla_visual_tokens"]
    (out / "synthvqa.json").write_text(json.dumps({**saved, "layout": {"setting": "llava-next"}}))
    with pytest.raises(ValueError, match="synthvqa.json key layout: unknown setting 'llava-next'"):
        load_cell_model(out)
