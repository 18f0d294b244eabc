"""Specification of the cpu tier's data and tiny model (replicate.synthvqa)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from replicate.synthvqa import data as sv
from replicate.synthvqa.evaluate import collate, evaluate, option_logits
from replicate.synthvqa.model import (build_inputs_embeds, build_model, lm_hidden, lm_logits, num_video_tokens,
                                      preprocess_video, tokens_per_frame, video_features, TinyArch)
from replicate.synthvqa.tokenizer import VIDEO, build_tokenizer, encode_prompt, letter_ids, token_id

CFG = sv.SynthConfig(frames=8)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(CFG)


@pytest.fixture(scope="module")
def model(tok):
    return build_model(tok, TinyArch(text_layers=2), seed=0)


# ------------------------------------------------------------------------------ generator
def test_same_seed_same_tensors_and_different_seeds_differ():
    a = sv.make_split("train", 6, seed=3, cfg=CFG)
    b = sv.make_split("train", 6, seed=3, cfg=CFG)
    c = sv.make_split("train", 6, seed=4, cfg=CFG)
    for x, y, z in zip(a, b, c):
        assert torch.equal(x.video, y.video) and x.answer == y.answer and x.meta == y.meta
        assert not torch.equal(x.video, z.video)
    # splits never share seeds: same index, different split -> different video
    t = sv.make_split("test", 6, seed=3, cfg=CFG)
    assert all(not torch.equal(x.video, y.video) for x, y in zip(a, t))
    # prefix property: a shorter split is a prefix of a longer one
    assert torch.equal(sv.make_split("val", 3, cfg=CFG)[2].video, sv.make_split("val", 5, cfg=CFG)[2].video)


def test_sample_fields_and_prompt_style():
    s = sv.make_split("val", 5, cfg=CFG)
    assert [x.family for x in s] == list(sv.DEFAULT_FAMILIES) + ["colour"]  # families cycle: balanced splits
    x = s[0]
    assert x.video.dtype == torch.uint8 and tuple(x.video.shape) == (8, 112, 112, 3)
    assert torch.allclose(x.timestamps, torch.arange(8) / 2.0)  # fps 2
    assert x.prompt.startswith("Question: ") and "\nOptions:\n(A) " in x.prompt
    assert x.prompt.endswith("Answer with the option's letter from the given choices directly.")
    assert x.options[x.answer_index] == x.meta["truth"]


def _pixels_of(video, yx, px, rgb):
    y, x = yx
    patch = video[:, y:y + px, x:x + px].int()
    return (patch - torch.tensor(rgb)).abs().amax(-1) <= 12  # within noise of the object's colour


@pytest.mark.parametrize("family", sv.FAMILIES)
def test_answer_recomputed_from_ground_truth(family):
    """The answer letter is what the rendered pixels say, recomputed from the metadata."""
    cfg = CFG
    for i in range(12):
        s = sv.make_sample(family, (9, 0, i), cfg)
        m, v = s.meta, s.video
        if family in ("colour", "shape"):
            hit = _pixels_of(v, m["yx"], cfg.px("small_object_px"), sv.COLOURS[m["colour"]])
            on = [f for f in range(cfg.frames) if hit[f].float().mean() > 0.2]
            assert on == m["frames_on"] and 1 <= len(on) <= 2
            truth = m["colour"] if family == "colour" else m["shape"]
        elif family == "order":
            firsts = {}
            for e in m["events"]:
                hit = _pixels_of(v, e["yx"], cfg.px("event_object_px"), sv.COLOURS[e["colour"]])
                on = [f for f in range(cfg.frames) if hit[f].float().mean() > 0.9]
                assert on == [e["frame"]]
                firsts[e["colour"]] = on[0]
            truth = min(firsts, key=firsts.get)
        elif family == "count":
            hit = _pixels_of(v, m["yx"], cfg.px("light_px"), sv.LIGHT)
            on = [f for f in range(cfg.frames) if hit[f].float().mean() > 0.9]
            assert on == m["frames_on"]
            assert all(b - a >= 2 for a, b in zip(on, on[1:]))  # separate flashes
            truth = str(len(on))
        else:  # direction: centroid of the ball's colour moves monotonically one way
            rgb = torch.tensor(sv.COLOURS[m["colour"]])
            ys, xs = [], []
            for f in range(cfg.frames):
                yy, xx = torch.nonzero((v[f].int() - rgb).abs().amax(-1) <= 12, as_tuple=True)
                ys.append(yy.float().mean().item()); xs.append(xx.float().mean().item())
            dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
            truth = (("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up"))
        assert truth == m["truth"]
        assert s.options["ABCD".index(s.answer)] == truth


def test_answers_cover_all_letters_per_family():
    s = sv.make_split("train", 200, cfg=CFG)
    for fam in sv.DEFAULT_FAMILIES:
        letters = {x.answer for x in s if x.family == fam}
        assert letters == set("ABCD"), (fam, letters)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown split"):
        sv.make_split("dev", 1)
    with pytest.raises(ValueError, match="unknown families"):
        sv.SynthConfig(families=("colour", "smell"))
    with pytest.raises(ValueError, match="unknown family"):
        sv.make_sample("smell", 0)


def test_mp4_round_trip(tmp_path):
    s = sv.make_sample("count", 1, CFG)
    path = sv.write_mp4(s, tmp_path / "v.mp4")
    frames, times = sv.read_mp4(path)
    assert tuple(frames.shape) == tuple(s.video.shape)
    assert torch.allclose(times, s.timestamps, atol=1e-3)
    # lossy but close: mean abs error of a few grey levels
    assert (frames.float() - s.video.float()).abs().mean() < 8


# ------------------------------------------------------------------------------ tokenizer + model
def test_tokenizer_round_trip_and_no_unknown_words(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    for s in sv.make_split("val", 5, cfg=CFG):
        ids = encode_prompt(tok, s, 3)  # raises on out-of-vocabulary words
        assert ids == encode_prompt(back, s, 3)
        assert ids.count(token_id(tok, VIDEO)) == 3
    assert [tok.convert_ids_to_tokens(i) for i in letter_ids(tok, 4)] == list("ABCD")


def test_placeholder_count_equals_video_feature_count(tok, model):
    assert tokens_per_frame(model.config) == 16  # 112/14 = 8x8 patches -> 2x2 pooling -> 4x4
    assert num_video_tokens(model.config, 8) == 8 * 16 + 1
    s = sv.make_split("val", 2, cfg=CFG)
    b = collate(s, tok, model.config)
    with torch.no_grad():
        feats = video_features(model, b.pixel_values_videos)
    n_placeholders = (b.input_ids == model.config.video_token_id).sum(1)
    assert feats.shape[1] == 129 and n_placeholders.tolist() == [129, 129]
    # and the HF forward accepts exactly this prompt (it raises on a count mismatch)
    with torch.no_grad():
        model(input_ids=b.input_ids, attention_mask=b.attention_mask, pixel_values_videos=b.pixel_values_videos)


def test_manual_inputs_embeds_path_equals_hf_forward(tok, model):
    s = sv.make_split("val", 3, cfg=CFG)
    b = collate(s, tok, model.config)
    with torch.no_grad():
        ref = model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                    pixel_values_videos=b.pixel_values_videos).logits
        emb = build_inputs_embeds(model, b.input_ids, video_features(model, b.pixel_values_videos))
        mine = lm_logits(model, emb, b.attention_mask)
    real = b.attention_mask.bool()
    torch.testing.assert_close(mine[real], ref[real], rtol=1e-4, atol=1e-5)


def _embeds(model, tok, sample):
    """(inputs_embeds (1, L, D), video mask (1, L), sample) of one unpadded sample."""
    b = collate([sample], tok, model.config)
    with torch.no_grad():
        e = build_inputs_embeds(model, b.input_ids, video_features(model, b.pixel_values_videos))
    return e, b.input_ids == model.config.video_token_id, sample


def test_method_path_runs_the_pipeline_and_equals_the_batched_path_unpruned(tok, model):
    from methods.registry import get_method

    s = sv.make_split("val", 4, cfg=CFG)
    base = option_logits(model, tok, s)
    same = option_logits(model, tok, s, method=get_method("vanilla"))
    torch.testing.assert_close(same, base, rtol=1e-4, atol=1e-4)
    pruned = option_logits(model, tok, s, method=get_method("random", retention=0.5))
    assert torch.isfinite(pruned).all() and not torch.allclose(pruned, base, atol=1e-4)
    r = evaluate(model, tok, s, method=get_method("random", retention=0.5))
    assert r["n"] == 4 and len(r["predictions"]) == 4


def test_position_gaps_without_mask_attend_like_masked_keys(tok, model):
    """lm_hidden with pruned inputs and their original position ids equals masking the dropped keys."""
    s = sv.make_split("val", 2, cfg=CFG)
    letters = torch.tensor(letter_ids(tok, 4))
    for x in s:
        embeds, vmask, _ = _embeds(model, tok, x)
        idx = torch.nonzero(vmask[0]).squeeze(1)
        keep = torch.ones(embeds.shape[1], dtype=torch.bool)
        keep[idx[1::2]] = False                      # 129 video tokens: odd ones dropped
        assert int(keep.sum()) == embeds.shape[1] - 64
        mask = keep.long()[None]
        with torch.no_grad():
            ref = model.lm_head(lm_hidden(model, embeds, mask)[:, -1])[0, letters]
            got = model.lm_head(lm_hidden(model, embeds[:, keep], None,
                                          torch.arange(embeds.shape[1])[keep][None])[:, -1])[0, letters]
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)


def test_preprocess_normalises_with_clip_stats():
    v = torch.full((2, 112, 112, 3), 255, dtype=torch.uint8)
    x = preprocess_video(v, 112)
    assert x.shape == (2, 3, 112, 112)
    expect = (1 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711])
    torch.testing.assert_close(x[0, :, 5, 5], expect)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_video(v.float(), 112)


# ------------------------------------------------------------------------------ training
def test_smoke_training_loss_decreases_and_checkpoint_round_trips(tmp_path):
    from transformers import LlavaOnevisionForConditionalGeneration
    from replicate.synthvqa.train import load_checkpoint, smoke_config, train

    out = tmp_path / "model"
    from dataclasses import replace

    # the test process's thread count (the CLI uses 2): oversubscribed threads stall on a busy box
    model, tok, m = train(replace(smoke_config(), threads=torch.get_num_threads()), out, log=lambda *_: None)
    losses = m["losses"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.5
    for f in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json",
              "synthvqa.json", "metrics.json"):
        assert (out / f).exists(), f
    assert not (tmp_path / "model.tmp").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "test_per_family", "train_seconds", "steps", "seed", "config"} <= set(metrics)
    # the same loader path as a real checkpoint
    loaded = LlavaOnevisionForConditionalGeneration.from_pretrained(out).eval()
    model2, tok2, data = load_checkpoint(out)
    assert data == smoke_config().data
    s = sv.make_split("test", 3, cfg=data)
    b = collate(s, tok, model.config)
    with torch.no_grad():
        kw = dict(input_ids=b.input_ids, attention_mask=b.attention_mask, pixel_values_videos=b.pixel_values_videos)
        torch.testing.assert_close(loaded(**kw).logits, model(**kw).logits, rtol=0, atol=0)
    torch.testing.assert_close(option_logits(model2, tok2, s), option_logits(model, tok, s), rtol=0, atol=0)


def test_same_seed_same_model_and_other_seed_differs():
    from dataclasses import replace
    from replicate.synthvqa.train import smoke_config, train

    cfg = replace(smoke_config(), steps=3, batch_size=4, n_val=4, n_test=4, log_every=1)
    runs = [train(replace(cfg, seed=sd), log=lambda *_: None) for sd in (0, 0, 1)]
    (m0, _, a), (m1, _, b), (m2, _, c) = runs
    assert a["losses"] == b["losses"] and a["steps"] == 3 and not a["stopped_early"]
    for (n, p), (_, q) in zip(m0.named_parameters(), m1.named_parameters()):
        assert torch.equal(p, q), n
    assert a["losses"] != c["losses"]


def test_curriculum_and_lr_schedule_hand_values():
    from dataclasses import replace
    from replicate.synthvqa.train import TrainConfig, _lr, object_scale, progress

    # scale 2.5 held for 300 steps, real size from 60 % = step 1200
    cfg = replace(TrainConfig(), steps=2000, curriculum_hold=300, curriculum_end=0.6)
    assert [object_scale(s, cfg) for s in (0, 299, 750, 1200, 5000)] == pytest.approx([2.5, 2.5, 1.75, 1.0, 1.0])
    # time-based progress: hold ended at p=0.2, real size at p=0.6 -> halfway at p=0.4
    assert object_scale(400, cfg, p=0.4, p_hold=0.2) == pytest.approx(1.75)
    assert _lr(0, cfg) == pytest.approx(cfg.lr / cfg.warmup)
    assert _lr(cfg.warmup, cfg, 0.0 + cfg.warmup / cfg.steps) == pytest.approx(cfg.lr)
    assert _lr(cfg.steps - 1, cfg, 1.0) == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    # with a time budget, progress is the larger of step and time fractions
    timed = replace(cfg, time_budget_s=100.0)
    assert progress(10, 50.0, timed) == 0.5 and progress(10, 50.0, cfg) == 10 / cfg.steps


def test_default_training_is_fixed_steps_and_keeps_nine_pooled_tokens_per_frame():
    from replicate.synthvqa.model import tiny_llava_config
    from replicate.synthvqa.train import CPU_TIER_DATA, TrainConfig

    cfg = TrainConfig()
    assert cfg.time_budget_s is None and cfg.steps > 0  # reproducible: same seed -> same model
    assert cfg.data == CPU_TIER_DATA and cfg.arch.image_size == CPU_TIER_DATA.size == 84
    conf = tiny_llava_config(build_tokenizer(cfg.data), cfg.arch)
    assert tokens_per_frame(conf) == 9 and num_video_tokens(conf, cfg.data.frames) == 8 * 9 + 1


@pytest.mark.parametrize("size,grid", [(56, 2), (84, 3)])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_direction_ball_changes_pooled_token_so_the_answer_survives_pooling(size, grid, scale):
    """The pooled token holding the ball in the first frame differs from the one in the last,
    along the motion and in its sense, for the 2x2 and 3x3 pooled grids."""
    from dataclasses import replace
    from replicate.synthvqa.train import CPU_TIER_DATA

    cfg = replace(CPU_TIER_DATA, size=size, object_scale=scale)
    cell = size // grid
    for i in range(40):
        s = sv.make_sample("direction", (5, 0, i), cfg)
        d = s.meta["truth"]
        v = s.video.float()
        mass = (v.amax(-1) - v.amin(-1)).reshape(cfg.frames, grid, cell, grid, cell).sum((2, 4))
        axis = 1 if d in ("left", "right") else 0  # token index along the motion
        token = lambda f: int(mass[f].sum(1 - axis).argmax())  # noqa: E731
        assert token(0) != token(-1), (d, s.meta["path"][0], s.meta["path"][-1])
        assert (token(-1) > token(0)) == (d in ("right", "down"))
        (y0, x0), (y1, x1) = s.meta["path"][0], s.meta["path"][-1]
        a0, a1 = (x0, x1) if axis else (y0, y1)
        assert (a1 > a0) == (d in ("right", "down"))


def test_synthconfig_round_trips_through_json(tmp_path):
    cfg = sv.SynthConfig(frames=12, size=56, small_object_px=10, event_object_px=12, light_px=12, ball_px=10)
    sv.save_config(cfg, tmp_path / "s.json", seed=3)
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["seed"] == 3
    assert sv.SynthConfig.from_dict({k: v for k, v in d.items() if k != "seed"}) == cfg
    with pytest.raises(ValueError, match="too small"):
        sv.SynthConfig(size=30)  # 16 px objects need size >= 40
